import PacketIO
import Stack
import TCP
import Testing
import Wire

/// Builds an Ethernet + IPv4 frame for host a (from b) around `payload`.
func ipFrame(
    to link: MemoryLink, protocol proto: UInt8, payload: [UInt8], source: IPv4Address = addressB,
    destination: IPv4Address = addressA
) -> [UInt8] {
    var frame = [UInt8](repeating: 0, count: 34 + payload.count)
    frame.withUnsafeMutableBytes { raw in
        EthernetHeader(destination: link.a.macAddress, source: link.b.macAddress, etherType: EtherType.ipv4).write(
            to: raw)
        IPv4Header.write(
            to: UnsafeMutableRawBufferPointer(rebasing: raw[14...]), source: source, destination: destination,
            protocol: proto, payloadLength: payload.count, identification: 7)
        UnsafeMutableRawBufferPointer(rebasing: raw[34...]).copyBytes(from: payload)
    }
    return frame
}

/// A TCP segment from b:9 to a:9 with a correct checksum.
func tcpSegment(options: [UInt8] = [], payload: [UInt8] = []) -> [UInt8] {
    var segment = [UInt8](repeating: 0, count: 20 + options.count + payload.count)
    segment.withUnsafeMutableBytes { raw in
        TCPHeader.write(
            to: raw, sourcePort: 9, destinationPort: 9, sequenceNumber: 1, acknowledgmentNumber: 0, flags: [.syn],
            window: 1000, options: TCPOptions(), payload: UnsafeRawBufferPointer(start: nil, count: 0),
            source: IPAddress(addressB), destination: IPAddress(addressA))
    }
    guard !options.isEmpty else { return segment }
    // Splice raw option bytes in and fix the data offset and checksum by hand.
    segment.replaceSubrange(20..<20, with: options)
    segment.removeLast(options.count)
    segment[12] = UInt8((20 + options.count) / 4) << 4
    segment[16] = 0
    segment[17] = 0
    var sum = InternetChecksum.pseudoHeader(
        source: addressB, destination: addressA, protocol: IPProtocol.tcp, length: segment.count)
    segment.withUnsafeBytes { sum.add($0) }
    segment[16] = UInt8(sum.value >> 8)
    segment[17] = UInt8(sum.value & 0xFF)
    return segment
}

@Suite struct FramePathTests {
    @Test func echoRequestIsAnswered() throws {
        let hosts = TwoHosts()
        let data: [UInt8] = Array("ping from a hand-made frame".utf8)
        var icmp = [UInt8](repeating: 0, count: 8 + data.count)
        data.withUnsafeBytes { payload in
            icmp.withUnsafeMutableBytes { raw in
                _ = ICMPEcho.write(
                    to: raw, type: ICMPType.echoRequest, identifier: 0x1234, sequence: 9, payload: payload)
            }
        }
        let frame = ipFrame(to: hosts.link, protocol: IPProtocol.icmp, payload: icmp)
        frame.withUnsafeBytes { hosts.link.a.deliver($0) }
        hosts.a.poll()
        #expect(hosts.a.statistics.icmpEchoRequests == 1)
        #expect(hosts.a.statistics.icmpEchoRepliesSent == 1)
        let reply = try #require(hosts.sentByA.last)
        try reply.withUnsafeBytes { raw in
            let (eth, ipBytes) = try EthernetHeader.parse(raw)
            #expect(eth.destination == hosts.link.b.macAddress)
            #expect(eth.source == hosts.link.a.macAddress)
            let (ip, message) = try IPv4Header.parse(ipBytes)
            #expect(ip.source == addressA && ip.destination == addressB && ip.protocol == IPProtocol.icmp)
            let (echo, payload) = try ICMPEcho.parse(message)
            #expect(echo.type == ICMPType.echoReply && echo.identifier == 0x1234 && echo.sequence == 9)
            #expect(Array(payload) == data)
        }
        // Other ICMP messages are counted and left alone.
        var unreachable: [UInt8] = [3, 1, 0, 0, 0, 0, 0, 0]
        let sum = unreachable.withUnsafeBytes { InternetChecksum.compute($0) }
        unreachable[2] = UInt8(sum >> 8)
        unreachable[3] = UInt8(sum & 0xFF)
        ipFrame(to: hosts.link, protocol: IPProtocol.icmp, payload: unreachable).withUnsafeBytes {
            hosts.link.a.deliver($0)
        }
        hosts.a.poll()
        #expect(hosts.a.statistics.icmpOther == 1)
        #expect(hosts.a.statistics.icmpEchoRepliesSent == 1)
    }

    @Test func garbageIsCountedByReasonWhileATransferCompletes() throws {
        let hosts = TwoHosts()
        let (client, server, _) = try hosts.connectedPair()
        let total = 256 * 1024
        let data = pattern(total, seed: 3)
        var received: [UInt8] = []
        received.reserveCapacity(total)
        var sent = 0
        var buffer = [UInt8](repeating: 0, count: 16384)
        var seed: UInt64 = 0x1234_5678
        func nextByte() -> UInt8 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: seed >> 33)
        }
        let port = hosts.link.a
        func inject(_ frame: [UInt8]) { frame.withUnsafeBytes { port.deliver($0) } }
        var goodTCP = ipFrame(to: hosts.link, protocol: IPProtocol.tcp, payload: tcpSegment())
        var badIPChecksum = goodTCP
        badIPChecksum[24] ^= 0xFF
        var badTCPChecksum = goodTCP
        badTCPChecksum[34 + 16] ^= 0x55
        let badOption = ipFrame(to: hosts.link, protocol: IPProtocol.tcp, payload: tcpSegment(options: [2, 9, 0, 0]))
        var fragment = goodTCP
        fragment[14 + 6] = 0x20  // More Fragments
        fragment[14 + 10] = 0
        fragment[14 + 11] = 0
        fragment.withUnsafeMutableBytes { raw in
            let sum = InternetChecksum.compute(UnsafeRawBufferPointer(rebasing: raw[14..<34]))
            raw[24] = UInt8(sum >> 8)
            raw[25] = UInt8(sum & 0xFF)
        }
        let unknownProtocol = ipFrame(to: hosts.link, protocol: 47, payload: [1, 2, 3, 4])
        let notForUs = ipFrame(to: hosts.link, protocol: IPProtocol.tcp, payload: tcpSegment(), destination: addressB)
        var otherMAC = goodTCP
        otherMAC[5] ^= 0x01
        var unknownType = goodTCP
        unknownType[12] = 0x88
        unknownType[13] = 0xB5
        goodTCP.removeAll()
        var rounds = 0
        let done = hosts.run {
            rounds += 1
            if received.count < total {
                inject((0..<Int(nextByte() % 120)).map { _ in nextByte() })
                inject([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
                inject(Array(badIPChecksum.prefix(30)))
                inject(badIPChecksum)
                inject(badTCPChecksum)
                inject(badOption)
                inject(fragment)
                inject(unknownProtocol)
                inject(notForUs)
                inject(otherMAC)
                inject(unknownType)
            }
            if sent < total {
                sent += (try? data[sent...].withUnsafeBytes { try hosts.b.write(server, $0) }) ?? 0
            }
            while let n = try? buffer.withUnsafeMutableBytes({ try hosts.a.read(client, into: $0) }), n > 0 {
                received.append(contentsOf: buffer[0..<n])
            }
            return received.count == total
        }
        #expect(done)
        #expect(received == data)
        let stats = hosts.a.statistics
        let injections = rounds - 1
        #expect(injections > 3)
        #expect(stats.ethernetErrors.truncated >= injections)
        #expect(stats.ipv4Errors.truncated >= injections)
        #expect(stats.ipv4Errors.badChecksum >= injections)
        #expect(stats.tcpErrors.badChecksum >= injections)
        #expect(stats.tcpErrors.badOption == injections)
        #expect(stats.ipv4Errors.fragmented == injections)
        #expect(stats.unknownIPProtocol == injections)
        #expect(stats.notOurAddress == injections)
        #expect(stats.notOurMAC >= injections)
        #expect(stats.unknownEtherType >= injections)
    }

    @Test func offLinkTrafficGoesThroughTheGateway() throws {
        let hosts = TwoHosts(gatewayA: addressB)
        let socket = try hosts.a.socket()
        try hosts.a.setNonBlocking(socket)
        let far = IPv4Address(192, 168, 7, 5)
        #expect(throws: Errno.EINPROGRESS) { try hosts.a.connect(socket, address: far, port: 443) }
        hosts.run(for: .milliseconds(100))
        // ARP asked for the gateway, and the SYN went to the gateway's MAC, addressed to `far`.
        let frames = hosts.sentByA.compactMap(SentFrame.init)
        #expect(frames.first?.arp?.targetIP == addressB)
        let syn = try #require(frames.first { $0.tcp?.flags.contains(.syn) == true })
        #expect(syn.ethernet.destination == hosts.link.b.macAddress)
        #expect(syn.ip?.destination == far)
        #expect(hosts.b.statistics.notOurAddress >= 1)
    }

    @Test func noRouteGivesUnreachableErrors() throws {
        let hosts = TwoHosts()
        let socket = try hosts.a.socket()
        #expect(throws: Errno.ENETUNREACH) { try hosts.a.connect(socket, address: IPv4Address(8, 8, 8, 8), port: 53) }
        let offLinkGateway = TwoHosts(gatewayA: IPv4Address(172, 16, 0, 1))
        let other = try offLinkGateway.a.socket()
        #expect(throws: Errno.EHOSTUNREACH) {
            try offLinkGateway.a.connect(other, address: IPv4Address(8, 8, 8, 8), port: 53)
        }
        #expect(throws: Errno.ENETUNREACH) { try hosts.a.route(to: IPv4Address(1, 1, 1, 1)) }
        #expect(try hosts.a.route(to: IPv4Address(10, 0, 0, 77)) == IPv4Address(10, 0, 0, 77))
    }
}
