import Testing
import Wire

@Suite struct MACAddressTests {
    @Test func parsesAndPrints() {
        let mac = MACAddress("aa:BB:0c:d:ee:ff")
        #expect(mac == MACAddress(0xAA, 0xBB, 0x0C, 0x0D, 0xEE, 0xFF))
        #expect(mac?.description == "aa:bb:0c:0d:ee:ff")
        #expect(MACAddress("02-00-00-00-00-01") == MACAddress(2, 0, 0, 0, 0, 1))
        #expect(MACAddress.broadcast.description == "ff:ff:ff:ff:ff:ff")
        #expect(MACAddress.zero.description == "00:00:00:00:00:00")
        #expect(MACAddress.broadcast.isMulticast)
        #expect(!MACAddress(2, 0, 0, 0, 0, 1).isMulticast)
        #expect(MACAddress(0x01, 0x00, 0x5E, 0, 0, 1).isMulticast)
        #expect(MACAddress(1, 2, 3, 4, 5, 6)[5] == 6)
    }

    @Test func rejectsMalformedText() {
        for text in [
            "", "aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "aa:bb:cc:dd:ee:fg", "aaa:bb:cc:dd:ee:ff",
            "aa::cc:dd:ee:ff", "aa:bb-cc:dd:ee:ff", "aa:bb:cc:dd:ee:", ":aa:bb:cc:dd:ee",
        ] {
            #expect(MACAddress(text) == nil, "accepted \(text)")
        }
    }
}

@Suite struct EthernetHeaderTests {
    let header = EthernetHeader(
        destination: MACAddress(2, 0, 0, 0, 0, 2), source: MACAddress(2, 0, 0, 0, 0, 1), etherType: EtherType.ipv4)

    @Test func roundTrips() throws {
        var frame = [UInt8](repeating: 0x5A, count: 60)
        let written = frame.withUnsafeMutableBytes { header.write(to: $0) }
        #expect(written == 14)
        #expect(Array(frame[0..<14]) == [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00])
        let parsed = frame.withUnsafeBytes { raw in
            outcome { () throws(WireError) in
                let (parsed, payload) = try EthernetHeader.parse(raw)
                return (parsed, payload.count, payload.first)
            }
        }
        let (got, payloadCount, firstByte) = try #require(parsed.success)
        #expect(got == header)
        #expect(payloadCount == 46)
        #expect(firstByte == 0x5A)
    }

    @Test func refusesShortAndTaggedFrames() {
        var frame = [UInt8](repeating: 0, count: 64)
        _ = frame.withUnsafeMutableBytes { header.write(to: $0) }
        for length in 0..<14 {
            let result = frame.withUnsafeBytes { raw in
                outcome { () throws(WireError) in
                    try EthernetHeader.parse(UnsafeRawBufferPointer(rebasing: raw[0..<length])).header
                }
            }
            #expect(result.failure == .truncated)
        }
        for type: UInt16 in [0x8100, 0x88A8, 0x0000, 0x05DC] {
            put16(&frame, type, at: 12)
            let result = frame.withUnsafeBytes { raw in
                outcome { () throws(WireError) in try EthernetHeader.parse(raw).header }
            }
            #expect(result.failure == .unsupported, "type \(type)")
        }
        put16(&frame, EtherType.arp, at: 12)
        let arp = frame.withUnsafeBytes { raw in
            outcome { () throws(WireError) in try EthernetHeader.parse(raw).header }
        }
        #expect(arp.success?.etherType == EtherType.arp)
    }

    @Test func writeRefusesSmallBuffer() {
        var small = [UInt8](repeating: 0, count: 13)
        #expect(small.withUnsafeMutableBytes { header.write(to: $0) } == 0)
    }
}

@Suite struct ARPPacketTests {
    let request = ARPPacket(
        operation: ARPPacket.request, senderMAC: MACAddress(2, 0, 0, 0, 0, 1), senderIP: IPv4Address(10, 0, 0, 1),
        targetMAC: .zero, targetIP: IPv4Address(10, 0, 0, 2))

    func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 46)  // with Ethernet minimum-frame padding
        let written = bytes.withUnsafeMutableBytes { request.write(to: $0) }
        #expect(written == 28)
        return bytes
    }

    func parse(_ bytes: [UInt8]) -> Result<ARPPacket, WireError> {
        bytes.withUnsafeBytes { raw in outcome { () throws(WireError) in try ARPPacket.parse(raw) } }
    }

    @Test func roundTripsWithWireLayout() {
        let bytes = encoded()
        #expect(Array(bytes[0..<8]) == [0, 1, 8, 0, 6, 4, 0, 1])
        #expect(Array(bytes[14..<18]) == [10, 0, 0, 1])
        #expect(parse(bytes).success == request)
        var reply = request
        reply.operation = ARPPacket.reply
        var replyBytes = [UInt8](repeating: 0, count: 28)
        _ = replyBytes.withUnsafeMutableBytes { reply.write(to: $0) }
        #expect(parse(replyBytes).success == reply)
    }

    @Test func refusesWhatItCannotHandle() {
        let good = encoded()
        var bytes = good
        bytes[1] = 6  // IEEE 802 hardware type
        #expect(parse(bytes).failure == .unsupported)
        bytes = good
        bytes[2] = 0x86  // IPv6 protocol type
        bytes[3] = 0xDD
        #expect(parse(bytes).failure == .unsupported)
        bytes = good
        bytes[4] = 8
        #expect(parse(bytes).failure == .badLength)
        bytes = good
        bytes[5] = 16
        #expect(parse(bytes).failure == .badLength)
        bytes = good
        bytes[7] = 3  // RARP request
        #expect(parse(bytes).failure == .unsupported)
        for length in 0..<28 {
            #expect(parse(Array(good[0..<length])).failure == .truncated)
        }
    }

    @Test func writeRefusesSmallBuffer() {
        var small = [UInt8](repeating: 0, count: 27)
        #expect(small.withUnsafeMutableBytes { request.write(to: $0) } == 0)
    }
}
