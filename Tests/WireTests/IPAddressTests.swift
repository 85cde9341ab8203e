import Testing
import Wire

@Suite struct IPAddressTests {
    @Test func parsesIPv6Text() {
        #expect(IPAddress("::") == .unspecified)
        #expect(IPAddress("::1") == .loopback)
        #expect(IPAddress("fe80::1") == IPAddress(0xFE80, 0, 0, 0, 0, 0, 0, 1))
        #expect(IPAddress("2001:db8::1:0:0:1") == IPAddress(0x2001, 0xDB8, 0, 0, 1, 0, 0, 1))
        #expect(IPAddress("2001:0db8:0000:0000:0001:0000:0000:0001") == IPAddress(0x2001, 0xDB8, 0, 0, 1, 0, 0, 1))
        #expect(IPAddress("1:2:3:4:5:6:7:8") == IPAddress(1, 2, 3, 4, 5, 6, 7, 8))
        #expect(IPAddress("2001:DB8::ABCD") == IPAddress(0x2001, 0xDB8, 0, 0, 0, 0, 0, 0xABCD))
        #expect(IPAddress("1::") == IPAddress(1, 0, 0, 0, 0, 0, 0, 0))
        #expect(IPAddress("ff02::1") == .allNodes)
        #expect(IPAddress("ff02::2") == .allRouters)
    }

    @Test func v4MappedTextIsTheIPv4Address() {
        let v4 = IPAddress(IPv4Address(10, 0, 0, 1))
        #expect(IPAddress("::ffff:10.0.0.1") == v4)
        #expect(IPAddress("10.0.0.1") == v4)
        #expect(v4.isIPv4)
        #expect(v4.ipv4 == IPv4Address(10, 0, 0, 1))
        #expect(v4.description == "10.0.0.1")
        #expect(IPAddress("::1")?.isIPv4 == false)
    }

    @Test func refusesMalformedText() {
        let bad = [
            ":::", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "fe80::1%eth0", "", ":", "1:2:3:4:5:6:7:",
            "fe80::1:", ":1::2", "g::1", "1:2:3:4:5:6:7", "::ffff:10.0.0", "::ffff:10.0.0.1:1", " ::1",
        ]
        for text in bad {
            #expect(IPAddress(text) == nil, "accepted \(text)")
        }
    }

    @Test func printsRFC5952Form() {
        #expect(IPAddress(0x2001, 0xDB8, 0, 0, 1, 0, 0, 1).description == "2001:db8::1:0:0:1")
        // A single zero group is not compressed.
        #expect(IPAddress(0x2001, 0xDB8, 0, 1, 1, 1, 1, 1).description == "2001:db8:0:1:1:1:1:1")
        // The longest run wins, wherever it is.
        #expect(IPAddress(0x2001, 0, 0, 1, 0, 0, 0, 1).description == "2001:0:0:1::1")
        // On a tie the first run wins.
        #expect(IPAddress(0x2001, 0xDB8, 0, 0, 1, 0, 0, 1).description == "2001:db8::1:0:0:1")
        #expect(IPAddress(0xABCD, 0xEF01, 0, 0, 0, 0, 0, 0xA).description == "abcd:ef01::a")
        #expect(IPAddress.unspecified.description == "::")
        #expect(IPAddress.loopback.description == "::1")
        #expect(IPAddress(0xFE80, 0, 0, 0, 0, 0, 0, 0).description == "fe80::")
        #expect(IPAddress(1, 2, 3, 4, 5, 6, 7, 8).description == "1:2:3:4:5:6:7:8")
    }

    @Test func textRoundTrips() {
        for text in ["2001:db8::1", "fe80::5054:ff:fe12:3456", "::", "ff02::1:ff12:3456", "1:0:0:2::3"] {
            #expect(IPAddress(text)?.description == text)
        }
    }

    @Test func multicastGroups() throws {
        let address = try #require(IPAddress("2001:db8::5054:ff:fe12:3456"))
        #expect(address.solicitedNode == IPAddress("ff02::1:ff12:3456"))
        #expect(address.solicitedNode.isMulticast)
        #expect(!address.isMulticast)
        #expect(IPAddress.allNodes.multicastMAC == MACAddress(0x33, 0x33, 0, 0, 0, 1))
        #expect(address.solicitedNode.multicastMAC == MACAddress(0x33, 0x33, 0xFF, 0x12, 0x34, 0x56))
    }

    @Test func linkLocalFromMAC() throws {
        let mac = try #require(MACAddress("52:54:00:12:34:56"))
        let address = IPAddress.linkLocal(for: mac)
        #expect(address == IPAddress("fe80::5054:ff:fe12:3456"))
        #expect(address.isLinkLocal)
        #expect(!address.isMulticast)
        #expect(IPAddress("febf::1")?.isLinkLocal == true)
        #expect(IPAddress("fec0::1")?.isLinkLocal == false)
        #expect(IPAddress(IPv4Address(169, 254, 0, 1)).isLinkLocal == false)
    }

    @Test func prefixes() throws {
        let address = try #require(IPAddress("2001:db8:1:2::99"))
        let prefix = try #require(IPAddress("2001:db8:1::"))
        #expect(address.hasPrefix(prefix, length: 48))
        #expect(!address.hasPrefix(prefix, length: 64))
        #expect(address.hasPrefix(.unspecified, length: 0))
        #expect(address.hasPrefix(address, length: 128))
        #expect(!address.hasPrefix(try #require(IPAddress("2001:db8:1:2::98")), length: 128))
        #expect(address.hasPrefix(try #require(IPAddress("2001:db8:1:2::98")), length: 124))
        let solicited = try #require(IPAddress("ff02::1:ff00:0"))
        #expect(address.solicitedNode.hasPrefix(solicited, length: 104))
        #expect(!IPAddress.allNodes.hasPrefix(solicited, length: 104))
    }
}
