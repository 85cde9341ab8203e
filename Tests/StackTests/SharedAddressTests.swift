import PacketIO
import Stack
import TCP
import Testing
import Wire

/// Shared mode: the kernel has host a's address too, so a answers no ARP, echo or neighbour
/// solicitation (the kernel does) and announces nothing, but resolves its own neighbours and
/// carries its own TCP as before.
@Suite struct SharedAddressTests {
    /// a shares its address with a (pretend) kernel; b is an ordinary host.
    static func hosts() -> TwoHosts {
        TwoHosts { configuration in
            if configuration.address == addressA { configuration.kernelSharesAddress = true }
        }
    }

    static func arpRequest(for target: IPv4Address, on link: MemoryLink) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: 14 + ARPPacket.length)
        frame.withUnsafeMutableBytes { raw in
            EthernetHeader(destination: .broadcast, source: link.b.macAddress, etherType: EtherType.arp).write(to: raw)
            _ = ARPPacket(
                operation: ARPPacket.request, senderMAC: link.b.macAddress, senderIP: addressB, targetMAC: .zero,
                targetIP: target
            ).write(to: UnsafeMutableRawBufferPointer(rebasing: raw[14...]))
        }
        return frame
    }

    @Test func arpAndEchoForTheSharedAddressAreLeftToTheKernel() throws {
        let hosts = Self.hosts()
        hosts.a.announce()
        #expect(hosts.sentByA.isEmpty, "no gratuitous ARP for the kernel's address")
        Self.arpRequest(for: addressA, on: hosts.link).withUnsafeBytes { hosts.link.a.deliver($0) }
        var icmp = [UInt8](repeating: 0, count: 8)
        icmp.withUnsafeMutableBytes { raw in
            _ = ICMPEcho.write(
                to: raw, type: ICMPType.echoRequest, identifier: 1, sequence: 1,
                payload: UnsafeRawBufferPointer(start: nil, count: 0))
        }
        ipFrame(to: hosts.link, protocol: IPProtocol.icmp, payload: icmp).withUnsafeBytes { hosts.link.a.deliver($0) }
        hosts.a.poll()
        #expect(hosts.sentByA.isEmpty, "the kernel answers both")
        #expect(hosts.a.statistics.arpRepliesSent == 0 && hosts.a.statistics.icmpEchoRepliesSent == 0)
        #expect(hosts.a.statistics.leftToKernel == 2)
        // The request still taught a its sender, as the kernel's table would have.
        #expect(hosts.a.arp.entry(for: IPAddress(addressB))?.mac == hosts.link.b.macAddress)
    }

    @Test func theStackStillResolvesAndCarriesItsOwnConnections() throws {
        let hosts = Self.hosts()
        let (client, server, _) = try hosts.connectedPair()
        #expect(hosts.a.tcpState(client) == .established)
        #expect(hosts.a.statistics.arpRequestsSent == 1, "a asks for b itself")
        let data = pattern(3000, seed: 4)
        _ = try data.withUnsafeBytes { try hosts.a.write(client, $0) }
        var received = [UInt8](repeating: 0, count: 4000)
        var got = 0
        _ = hosts.run {
            if let n = try? received.withUnsafeMutableBytes({
                try hosts.b.read(server, into: UnsafeMutableRawBufferPointer(rebasing: $0[got...]))
            }) {
                got += n
            }
            return got == data.count
        }
        #expect(Array(received[0..<got]) == data)
    }

    @Test func neighboursTheKernelResolvedNeedNoRequest() throws {
        let hosts = Self.hosts()
        hosts.a.adoptKernelNeighbours([(addressB, hosts.link.b.macAddress), (IPv4Address(192, 0, 2, 1), .broadcast)])
        #expect(hosts.a.arp.entry(for: IPAddress(IPv4Address(192, 0, 2, 1))) == nil, "off-link: not taken")
        // b needs a's MAC without asking: nobody here plays the kernel that would answer.
        hosts.b.adoptKernelNeighbours([(addressA, hosts.link.a.macAddress)])
        let (client, _, _) = try hosts.connectedPair()
        #expect(hosts.a.tcpState(client) == .established)
        #expect(hosts.a.statistics.arpRequestsSent == 0)
    }
}
