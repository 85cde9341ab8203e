import PacketIO
import Stack
import TCP
import Testing
import Wire

/// IPv6 in the stack: TCP over IPv6 between two stacks (neighbour discovery on the way),
/// dual-stack and v6-only listeners beside IPv4 ones, ICMPv6 echo, neighbour solicitations
/// and advertisements, duplicate address detection, router advertisements, malformed input,
/// and the address-family errors of the socket calls. Everything runs on simulated time.
@Suite struct IPv6StackTests {
    // MARK: Fixtures

    static let globalA = IPAddress("fd00::1")!
    static let globalB = IPAddress("fd00::2")!
    static let offLink = IPAddress("2001:db8::1")!
    static let router = IPAddress("fe80::1")!
    static let routerMAC = MACAddress(0x02, 0, 0, 0, 0, 0x0F)
    static let strangerMAC = MACAddress(0x02, 0, 0, 0, 0, 0x66)

    /// Two stacks with IPv4 (10.0.0.1 and 10.0.0.2 /24) and IPv6 (fd00::1 and fd00::2 /64).
    static func dualStackHosts() -> TwoHosts {
        var index = 0
        return TwoHosts { configuration in
            index += 1
            configuration.ipv6 = IPv6Interface(address: index == 1 ? globalA : globalB, prefixLength: 64)
        }
    }

    /// One stack on the `a` end of a link; tests play its neighbour (the `b` MAC) by
    /// injecting frames and look at what the stack sends.
    final class Host {
        let clock = FakeClock()
        let link = MemoryLink()
        let stack: NetworkStack<MemoryPort>
        var sent: [[UInt8]] = []

        init(ipv4: Bool = true, ipv6: IPv6Interface? = IPv6Interface(address: IPv6StackTests.globalA)) {
            var configuration = StackConfiguration(address: ipv4 ? addressA : .any, prefixLength: ipv4 ? 24 : 0)
            configuration.ipv6 = ipv6
            let clock = clock
            stack = NetworkStack(io: link.a, configuration: configuration, secret: (5, 6), clock: { clock.now })
            stack.log = { _ in }
            link.a.onSend = { [unowned self] frame in sent.append(Array(frame)) }
        }

        var mac: MACAddress { link.a.macAddress }
        /// The neighbour's MAC (the link's other end, never polled).
        var peerMAC: MACAddress { link.b.macAddress }
        var peerLinkLocal: IPAddress { IPAddress.linkLocal(for: peerMAC) }

        /// Delivers `frame` as if from the wire and runs one loop round.
        func inject(_ frame: [UInt8]) {
            frame.withUnsafeBytes { link.a.deliver($0) }
            stack.poll()
        }

        /// The IPv6 frames sent since the last call.
        func takeSent() -> [IPv6Frame] {
            defer { sent.removeAll() }
            return sent.compactMap(IPv6Frame.init)
        }
    }

    /// An Ethernet + IPv6 frame around `payload`.
    static func frame(
        to destinationMAC: MACAddress, from sourceMAC: MACAddress, source: IPAddress, destination: IPAddress,
        nextHeader: UInt8, hopLimit: UInt8 = 64, payload: [UInt8]
    ) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: 54 + payload.count)
        frame.withUnsafeMutableBytes { raw in
            EthernetHeader(destination: destinationMAC, source: sourceMAC, etherType: EtherType.ipv6).write(to: raw)
            IPv6Header.write(
                to: UnsafeMutableRawBufferPointer(rebasing: raw[14...]), source: source, destination: destination,
                nextHeader: nextHeader, payloadLength: payload.count, hopLimit: hopLimit)
            UnsafeMutableRawBufferPointer(rebasing: raw[54...]).copyBytes(from: payload)
        }
        return frame
    }

    /// An ICMPv6 message in a frame, hop limit 255 as neighbour discovery requires.
    static func icmpFrame(
        to destinationMAC: MACAddress, from sourceMAC: MACAddress, source: IPAddress, destination: IPAddress,
        hopLimit: UInt8 = 255, message: [UInt8]
    ) -> [UInt8] {
        frame(
            to: destinationMAC, from: sourceMAC, source: source, destination: destination,
            nextHeader: IPProtocol.icmpv6, hopLimit: hopLimit, payload: message)
    }

    /// Stores the ICMPv6 checksum of `message` for the given addresses.
    static func fillChecksum(_ message: inout [UInt8], source: IPAddress, destination: IPAddress) {
        message[2] = 0
        message[3] = 0
        var sum = InternetChecksum.pseudoHeader(
            source: source, destination: destination, protocol: IPProtocol.icmpv6, length: message.count)
        message.withUnsafeBytes { sum.add($0) }
        message[2] = UInt8(sum.value >> 8)
        message[3] = UInt8(sum.value & 0xFF)
    }

    static func echoRequest(
        identifier: UInt16, sequence: UInt16, data: [UInt8], source: IPAddress, destination: IPAddress
    ) -> [UInt8] {
        var message = [UInt8](repeating: 0, count: ICMPv6Echo.headerLength + data.count)
        data.withUnsafeBytes { payload in
            message.withUnsafeMutableBytes { raw in
                _ = ICMPv6Echo.write(
                    to: raw, type: ICMPv6Type.echoRequest, identifier: identifier, sequence: sequence,
                    payload: payload, source: source, destination: destination)
            }
        }
        return message
    }

    static func solicitation(
        target: IPAddress, sourceLinkLayer: MACAddress?, source: IPAddress, destination: IPAddress
    ) -> [UInt8] {
        var message = [UInt8](repeating: 0, count: 64)
        let length = message.withUnsafeMutableBytes { raw in
            NeighborSolicitation.write(
                to: raw, target: target, sourceLinkLayer: sourceLinkLayer, source: source, destination: destination)
        }
        return Array(message[0..<length])
    }

    static func advertisement(
        target: IPAddress, targetLinkLayer: MACAddress?, solicited: Bool, source: IPAddress, destination: IPAddress
    ) -> [UInt8] {
        var message = [UInt8](repeating: 0, count: 64)
        let length = message.withUnsafeMutableBytes { raw in
            NeighborAdvertisement.write(
                to: raw, router: false, solicited: solicited, override: true, target: target,
                targetLinkLayer: targetLinkLayer, source: source, destination: destination)
        }
        return Array(message[0..<length])
    }

    /// A router advertisement (Wire has no writer: hosts only receive them).
    static func routerAdvertisement(
        lifetime: UInt16, sourceLinkLayer: MACAddress?, source: IPAddress, destination: IPAddress = .allNodes
    ) -> [UInt8] {
        var message: [UInt8] = [
            ICMPv6Type.routerAdvertisement, 0, 0, 0, 64, 0, UInt8(lifetime >> 8), UInt8(lifetime & 0xFF),
            0, 0, 0, 0, 0, 0, 0, 0,
        ]
        if let mac = sourceLinkLayer {
            message += [NDOptionType.sourceLinkLayerAddress, 1] + (0..<6).map { mac[$0] }
        }
        fillChecksum(&message, source: source, destination: destination)
        return message
    }

    /// A TCP segment with a correct checksum over the IPv6 pseudo-header.
    static func tcpSegment(
        from source: IPAddress, port sourcePort: UInt16, to destination: IPAddress, port destinationPort: UInt16,
        flags: TCPFlags = [.syn]
    ) -> [UInt8] {
        var segment = [UInt8](repeating: 0, count: 20)
        segment.withUnsafeMutableBytes { raw in
            _ = TCPHeader.write(
                to: raw, sourcePort: sourcePort, destinationPort: destinationPort, sequenceNumber: 1000,
                acknowledgmentNumber: 0, flags: flags, window: 8192, options: TCPOptions(),
                payload: UnsafeRawBufferPointer(start: nil, count: 0), source: source, destination: destination)
        }
        return segment
    }

    /// The parsed pieces of an IPv6 frame a stack sent.
    struct IPv6Frame {
        var ethernet: EthernetHeader
        var ip: IPv6Header
        /// The upper-layer bytes.
        var payload: [UInt8]

        init?(_ bytes: [UInt8]) {
            let parsed: IPv6Frame? = bytes.withUnsafeBytes { raw in
                guard let (ethernet, packet) = try? EthernetHeader.parse(raw), ethernet.etherType == EtherType.ipv6,
                    let (ip, payload) = try? IPv6Header.parse(packet)
                else { return nil }
                return IPv6Frame(ethernet: ethernet, ip: ip, payload: Array(payload))
            }
            guard let parsed else { return nil }
            self = parsed
        }

        init(ethernet: EthernetHeader, ip: IPv6Header, payload: [UInt8]) {
            self.ethernet = ethernet
            self.ip = ip
            self.payload = payload
        }

        var icmpType: UInt8? { ip.upperProtocol == IPProtocol.icmpv6 ? payload.first : nil }

        /// The ICMPv6 checksum verifies over the pseudo-header.
        var icmpChecksumIsValid: Bool {
            payload.withUnsafeBytes {
                (try? ICMPv6Header.parse($0, source: ip.source, destination: ip.destination)) != nil
            }
        }

        var echo: (header: ICMPv6Echo, data: [UInt8])? {
            guard icmpType != nil else { return nil }
            return payload.withUnsafeBytes { raw in
                (try? ICMPv6Echo.parse(raw, source: ip.source, destination: ip.destination)).map {
                    ($0.header, Array($0.payload))
                }
            }
        }

        var solicitation: NeighborSolicitation? {
            guard icmpType == ICMPv6Type.neighborSolicitation, icmpChecksumIsValid else { return nil }
            return payload.withUnsafeBytes {
                try? NeighborSolicitation.parse(
                    $0, hopLimit: ip.hopLimit, source: ip.source, destination: ip.destination)
            }
        }

        var advertisement: NeighborAdvertisement? {
            guard icmpType == ICMPv6Type.neighborAdvertisement, icmpChecksumIsValid else { return nil }
            return payload.withUnsafeBytes {
                try? NeighborAdvertisement.parse(
                    $0, hopLimit: ip.hopLimit, source: ip.source, destination: ip.destination)
            }
        }

        /// The TCP header, when the segment's checksum verifies.
        var tcp: TCPHeader? {
            guard ip.upperProtocol == IPProtocol.tcp else { return nil }
            return payload.withUnsafeBytes {
                (try? TCPHeader.parse($0, source: ip.source, destination: ip.destination))?.header
            }
        }
    }

    /// A non-blocking connect from `client` on a to `address`:`port` on b, run until b's
    /// `listener` accepts it; returns the accepted socket (non-blocking) and the peer it saw.
    static func connect(
        _ hosts: TwoHosts, client: Int32, to address: IPAddress, port: UInt16, listener: Int32
    ) throws -> (server: Int32, peer: IPAddress, peerPort: UInt16) {
        try hosts.a.setNonBlocking(client)
        #expect(throws: Errno.EINPROGRESS) { try hosts.a.connect(client, address: address, port: port) }
        return try awaitAccept(hosts, client: client, listener: listener)
    }

    /// Runs both stacks until b's `listener` accepts the connection `client` started.
    static func awaitAccept(
        _ hosts: TwoHosts, client: Int32, listener: Int32
    ) throws -> (server: Int32, peer: IPAddress, peerPort: UInt16) {
        var accepted: (socket: Int32, address: IPAddress, port: UInt16)?
        let done = hosts.run(limit: 10_000) {
            if accepted == nil { accepted = try? hosts.b.accept(listener) }
            return accepted != nil && hosts.a.tcpState(client) == .established
        }
        try #require(done)
        let server = try #require(accepted)
        try hosts.b.setNonBlocking(server.socket)
        return (server.socket, server.address, server.port)
    }

    /// Moves `total` bytes each way between a's `client` and b's `server`; true when both
    /// directions arrived byte-exact.
    static func exchange(_ hosts: TwoHosts, client: Int32, server: Int32, total: Int, seed: UInt8) -> Bool {
        let up = pattern(total, seed: seed)
        let down = pattern(total, seed: seed &+ 1)
        var gotUp: [UInt8] = []
        var gotDown: [UInt8] = []
        var sentUp = 0
        var sentDown = 0
        var buffer = [UInt8](repeating: 0, count: 32768)
        let done = hosts.run {
            if sentUp < total { sentUp += (try? up[sentUp...].withUnsafeBytes { try hosts.a.write(client, $0) }) ?? 0 }
            if sentDown < total {
                sentDown += (try? down[sentDown...].withUnsafeBytes { try hosts.b.write(server, $0) }) ?? 0
            }
            while let n = try? buffer.withUnsafeMutableBytes({ try hosts.b.read(server, into: $0) }), n > 0 {
                gotUp.append(contentsOf: buffer[0..<n])
            }
            while let n = try? buffer.withUnsafeMutableBytes({ try hosts.a.read(client, into: $0) }), n > 0 {
                gotDown.append(contentsOf: buffer[0..<n])
            }
            return gotUp.count >= total && gotDown.count >= total
        }
        #expect(done)
        #expect(gotUp == up)
        #expect(gotDown == down)
        return done && gotUp == up && gotDown == down
    }

    // MARK: (1) TCP over IPv6

    @Test func tcpOverIPv6ThroughDualStackAndV6OnlyListeners() throws {
        let hosts = Self.dualStackHosts()
        let (a, b) = (hosts.a, hosts.b)
        #expect(a.ipv6Enabled && b.ipv6Enabled)
        let dual = try b.socket(inet6: true)
        try b.bind(dual, address: .unspecified, port: 80)
        try b.listen(dual, backlog: 16)
        try b.setNonBlocking(dual)
        let v6Only = try b.socket(inet6: true, v6Only: true)
        try b.bind(v6Only, address: .unspecified, port: 81)
        try b.listen(v6Only, backlog: 16)
        try b.setNonBlocking(v6Only)

        // The first SYN waits for neighbour resolution: only the solicitation goes out.
        let client = try a.socket(inet6: true)
        try a.setNonBlocking(client)
        #expect(throws: Errno.EINPROGRESS) { try a.connect(client, address: Self.globalB, port: 80) }
        a.poll()
        let first = hosts.sentByA.compactMap(IPv6Frame.init)
        #expect(hosts.sentByA.count == 1 && first.count == 1)
        let ns = try #require(first.first)
        let solicitation = try #require(ns.solicitation)
        #expect(solicitation.target == Self.globalB && solicitation.sourceLinkLayer == hosts.link.a.macAddress)
        #expect(ns.ip.source == Self.globalA && ns.ip.destination == Self.globalB.solicitedNode)
        #expect(ns.ip.hopLimit == 255)
        #expect(ns.ethernet.destination == Self.globalB.solicitedNode.multicastMAC)
        #expect(a.arp.pendingFrames == 1)
        #expect(a.statistics.pendingFlushed == 0)

        let (server, peer, peerPort) = try Self.awaitAccept(hosts, client: client, listener: dual)
        #expect(peer == Self.globalA && !peer.isIPv4)
        #expect(try a.getsockname(client) == (Self.globalA, peerPort))
        #expect(try a.getpeername(client) == (Self.globalB, 80))
        #expect(try b.getsockname(server).address == Self.globalB)
        #expect(try b.getpeername(server).address == Self.globalA)

        // Resolution by NS/NA; b learned a from the solicitation and needed none of its own.
        #expect(a.statistics.neighborSolicitationsSent == 1)
        #expect(b.statistics.neighborSolicitationsReceived == 1)
        #expect(b.statistics.neighborAdvertisementsSent == 1)
        #expect(a.statistics.neighborAdvertisementsReceived == 1)
        #expect(b.statistics.neighborSolicitationsSent == 0)
        #expect(a.statistics.pendingFlushed == 1)
        #expect(b.statistics.pendingFlushed == 0)
        #expect(a.statistics.arpRequestsSent == 0 && b.statistics.arpRequestsSent == 0)
        #expect(a.arp.entry(for: Self.globalB)?.mac == hosts.link.b.macAddress)
        #expect(b.arp.entry(for: Self.globalA)?.mac == hosts.link.a.macAddress)
        let na = try #require(hosts.sentByB.compactMap(IPv6Frame.init).first { $0.advertisement != nil })
        #expect(na.advertisement?.solicited == true && na.advertisement?.target == Self.globalB)
        #expect(na.advertisement?.targetLinkLayer == hosts.link.b.macAddress)
        #expect(na.ethernet.destination == hosts.link.a.macAddress && na.ip.destination == Self.globalA)
        // Exactly one SYN: the flushed one, not a retransmission.
        let syns = hosts.sentByA.compactMap(IPv6Frame.init).filter { $0.tcp?.flags.contains(.syn) == true }
        #expect(syns.count == 1)
        #expect(syns.first?.ethernet.destination == hosts.link.b.macAddress)
        #expect(syns.first?.ip.source == Self.globalA && syns.first?.ip.destination == Self.globalB)

        #expect(Self.exchange(hosts, client: client, server: server, total: 256 * 1024, seed: 1))

        // A second connection, through the v6-only listener: the neighbour is known now.
        let client2 = try a.socket(inet6: true)
        let second = try Self.connect(hosts, client: client2, to: Self.globalB, port: 81, listener: v6Only)
        #expect(second.peer == Self.globalA)
        #expect(throws: Errno.EAGAIN) { _ = try b.accept(dual) }
        #expect(Self.exchange(hosts, client: client2, server: second.server, total: 256 * 1024, seed: 3))
        #expect(a.statistics.neighborSolicitationsSent == 1)
        #expect(a.statistics.pendingFlushed == 1)

        // To b's link-local address: from a's, after a resolution of its own.
        let client3 = try a.socket(inet6: true)
        let third = try Self.connect(hosts, client: client3, to: b.linkLocalAddress, port: 81, listener: v6Only)
        #expect(third.peer == a.linkLocalAddress)
        #expect(try a.getsockname(client3).address == a.linkLocalAddress)
        #expect(try b.getsockname(third.server).address == b.linkLocalAddress)
        #expect(a.statistics.neighborSolicitationsSent == 2)
        #expect(a.statistics.pendingFlushed == 2)
        #expect(Self.exchange(hosts, client: client3, server: third.server, total: 4096, seed: 5))

        for stack in [a, b] {
            #expect(stack.statistics.tcpErrors.total == 0)
            #expect(stack.statistics.ipv6Errors.total == 0 && stack.statistics.icmpv6Errors.total == 0)
            #expect(stack.statistics.noRoute == 0 && stack.statistics.transmitRingFull == 0)
            #expect(stack.statistics.arpResolutionFailures == 0 && stack.statistics.duplicateAddresses == 0)
        }
    }

    // MARK: (2) IPv4 beside IPv6

    @Test func ipv4PeersAndListenerFamilies() throws {
        let hosts = Self.dualStackHosts()
        let (a, b) = (hosts.a, hosts.b)
        // An IPv4 client reaches a dual-stack listener, which sees it v4-mapped.
        let dual = try b.socket(inet6: true)
        try b.bind(dual, address: .unspecified, port: 80)
        try b.listen(dual, backlog: 16)
        try b.setNonBlocking(dual)
        let client = try a.socket()
        let first = try Self.connect(hosts, client: client, to: IPAddress(addressB), port: 80, listener: dual)
        #expect(first.peer == IPAddress(addressA) && first.peer.isIPv4)
        #expect(first.peer.description == "10.0.0.1")
        #expect(try b.getsockname(first.server).address == IPAddress(addressB))
        #expect(try b.getpeername(first.server).address.ipv4 == addressA)
        #expect(Self.exchange(hosts, client: client, server: first.server, total: 8192, seed: 7))
        #expect(a.statistics.arpRequestsSent == 1 && a.statistics.neighborSolicitationsSent == 0)

        // A v6-only listener does not take IPv4: with no IPv4 listener on the port, a reset.
        let v6Only = try b.socket(inet6: true, v6Only: true)
        try b.bind(v6Only, address: .unspecified, port: 81)
        try b.listen(v6Only, backlog: 16)
        try b.setNonBlocking(v6Only)
        let resetsBefore = b.endpoint.statistics.resetsSentForUnknownFlows
        hosts.sentByB.removeAll()
        let refused = try a.socket()
        try a.setNonBlocking(refused)
        #expect(throws: Errno.EINPROGRESS) { try a.connect(refused, address: addressB, port: 81) }
        hosts.run(for: .milliseconds(100))
        #expect(
            try a.getsockopt(refused, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_ERROR)
                == Errno.ECONNREFUSED.rawValue)
        #expect(b.endpoint.statistics.resetsSentForUnknownFlows == resetsBefore + 1)
        let resets = hosts.sentByB.compactMap(SentFrame.init).filter { $0.tcp?.flags.contains(.rst) == true }
        #expect(resets.count == 1)
        #expect(resets.first?.ip?.destination == addressA && resets.first?.tcp?.sourcePort == 81)
        #expect(throws: Errno.EAGAIN) { _ = try b.accept(v6Only) }

        // An IPv4 listener on 0.0.0.0 shares the port with the v6-only one; each takes its family.
        let v4 = try b.socket()
        try b.bind(v4, address: .any, port: 81)
        try b.listen(v4, backlog: 16)
        try b.setNonBlocking(v4)
        let c4 = try a.socket()
        let viaIPv4 = try Self.connect(hosts, client: c4, to: IPAddress(addressB), port: 81, listener: v4)
        #expect(viaIPv4.peer == IPAddress(addressA))
        #expect(throws: Errno.EAGAIN) { _ = try b.accept(v6Only) }
        let c6 = try a.socket(inet6: true)
        let viaIPv6 = try Self.connect(hosts, client: c6, to: Self.globalB, port: 81, listener: v6Only)
        #expect(viaIPv6.peer == Self.globalA)
        #expect(throws: Errno.EAGAIN) { _ = try b.accept(v4) }
        #expect(Self.exchange(hosts, client: c4, server: viaIPv4.server, total: 2048, seed: 9))
        #expect(Self.exchange(hosts, client: c6, server: viaIPv6.server, total: 2048, seed: 11))

        // The same sharing in the other order, on a fresh port.
        let v4First = try b.socket()
        try b.bind(v4First, address: .any, port: 85)
        let v6Second = try b.socket(inet6: true, v6Only: true)
        try b.bind(v6Second, address: .unspecified, port: 85)
        try b.listen(v4First, backlog: 4)
        try b.listen(v6Second, backlog: 4)

        // A dual-stack socket overlaps IPv4 (either order) and IPv6.
        let taken = try b.socket()
        try b.bind(taken, address: .any, port: 82)
        let dualLate = try b.socket(inet6: true)
        #expect(throws: Errno.EADDRINUSE) { try b.bind(dualLate, address: .unspecified, port: 82) }
        let dualEarly = try b.socket(inet6: true)
        try b.bind(dualEarly, address: .unspecified, port: 83)
        let v4Late = try b.socket()
        #expect(throws: Errno.EADDRINUSE) { try b.bind(v4Late, address: .any, port: 83) }
        #expect(throws: Errno.EADDRINUSE) { try b.bind(v4Late, address: addressB, port: 83) }
        let v6Late = try b.socket(inet6: true, v6Only: true)
        #expect(throws: Errno.EADDRINUSE) { try b.bind(v6Late, address: .unspecified, port: 83) }
        // The listening dual-stack socket on 80 holds its port against IPv4 too.
        #expect(throws: Errno.EADDRINUSE) { try b.bind(v4Late, address: .any, port: 80) }
        // A failed bind left the socket usable.
        try b.bind(v4Late, address: .any, port: 84)
        #expect(try b.getsockname(v4Late) == (IPAddress(IPv4Address.any), 84))
    }

    // MARK: (3) ICMPv6 echo

    @Test func echoRequestsToGlobalAndLinkLocalAddressesAreAnswered() throws {
        let host = Self.Host()
        let stack = host.stack
        let data = pattern(100, seed: 4)
        let cases: [(source: IPAddress, destination: IPAddress, mac: MACAddress, replyFrom: IPAddress)] = [
            (Self.globalB, Self.globalA, host.mac, Self.globalA),
            (host.peerLinkLocal, stack.linkLocalAddress, host.mac, stack.linkLocalAddress),
            // To all nodes: answered from our own (link-local) address, as Linux does.
            (host.peerLinkLocal, .allNodes, IPAddress.allNodes.multicastMAC, stack.linkLocalAddress),
        ]
        for (index, test) in cases.enumerated() {
            let sequence = UInt16(index + 1)
            let request = Self.echoRequest(
                identifier: 0x4242, sequence: sequence, data: data, source: test.source,
                destination: test.destination)
            host.inject(
                Self.icmpFrame(
                    to: test.mac, from: host.peerMAC, source: test.source, destination: test.destination,
                    hopLimit: 64, message: request))
            #expect(stack.statistics.icmpv6EchoRequests == index + 1)
            #expect(stack.statistics.icmpv6EchoRepliesSent == index + 1)
            let frames = host.takeSent()
            #expect(frames.count == 1)
            let reply = try #require(frames.first)
            #expect(reply.ethernet.destination == host.peerMAC && reply.ethernet.source == host.mac)
            #expect(reply.ethernet.etherType == EtherType.ipv6)
            #expect(reply.ip.source == test.replyFrom && reply.ip.destination == test.source)
            #expect(reply.ip.upperProtocol == IPProtocol.icmpv6 && reply.ip.hopLimit == 64)
            #expect(reply.icmpChecksumIsValid)
            let echo = try #require(reply.echo)
            #expect(echo.header.type == ICMPv6Type.echoReply && echo.header.code == 0)
            #expect(echo.header.identifier == 0x4242 && echo.header.sequence == sequence)
            #expect(echo.data == data)
        }
        // To an address that is not ours: dropped, unanswered.
        let stranger = IPAddress("fd00::77")!
        host.inject(
            Self.icmpFrame(
                to: host.mac, from: host.peerMAC, source: Self.globalB, destination: stranger, hopLimit: 64,
                message: Self.echoRequest(
                    identifier: 1, sequence: 9, data: data, source: Self.globalB, destination: stranger)))
        #expect(stack.statistics.notOurAddress == 1)
        #expect(stack.statistics.icmpv6EchoRepliesSent == 3)
        #expect(host.takeSent().isEmpty)
        #expect(stack.statistics.malformed == 0)
    }

    // MARK: (4) Neighbour solicitations and advertisements

    @Test func solicitationForOurAddressGetsSolicitedAdvertisementWithOurMAC() throws {
        let host = Self.Host()
        let stack = host.stack
        let cases: [(source: IPAddress, target: IPAddress)] = [
            (Self.globalB, Self.globalA), (host.peerLinkLocal, stack.linkLocalAddress),
        ]
        for (index, test) in cases.enumerated() {
            let group = test.target.solicitedNode
            host.inject(
                Self.icmpFrame(
                    to: group.multicastMAC, from: host.peerMAC, source: test.source, destination: group,
                    message: Self.solicitation(
                        target: test.target, sourceLinkLayer: host.peerMAC, source: test.source, destination: group)
                ))
            #expect(stack.statistics.neighborSolicitationsReceived == index + 1)
            #expect(stack.statistics.neighborAdvertisementsSent == index + 1)
            let frames = host.takeSent()
            #expect(frames.count == 1)
            let reply = try #require(frames.first)
            #expect(reply.ethernet.destination == host.peerMAC && reply.ethernet.source == host.mac)
            #expect(reply.ip.source == test.target && reply.ip.destination == test.source)
            #expect(reply.ip.hopLimit == 255)
            #expect(reply.icmpChecksumIsValid)
            let advertisement = try #require(reply.advertisement)
            #expect(advertisement.target == test.target && advertisement.targetLinkLayer == host.mac)
            #expect(advertisement.solicited && advertisement.override && !advertisement.router)
            // The solicitation taught us the sender.
            #expect(stack.arp.entry(for: test.source)?.mac == host.peerMAC)
        }
        // A solicitation that reaches our group but is for another address is not answered.
        let other = IPAddress("fd00::1:0:0:1")!
        #expect(other.solicitedNode == Self.globalA.solicitedNode)
        let neighbour = IPAddress("fd00::3")!
        host.inject(
            Self.icmpFrame(
                to: other.solicitedNode.multicastMAC, from: Self.strangerMAC, source: neighbour,
                destination: other.solicitedNode,
                message: Self.solicitation(
                    target: other, sourceLinkLayer: Self.strangerMAC, source: neighbour,
                    destination: other.solicitedNode)))
        #expect(stack.statistics.neighborSolicitationsReceived == 3)
        #expect(stack.statistics.neighborAdvertisementsSent == 2)
        #expect(host.takeSent().isEmpty)
        #expect(stack.arp.entry(for: neighbour) == nil)
        #expect(stack.statistics.duplicateAddresses == 0)
    }

    @Test func probeFromUnspecifiedForATentativeAddressMarksItDuplicate() throws {
        let host = Self.Host()
        let stack = host.stack
        stack.announce()
        _ = host.takeSent()
        // Another host's duplicate address detection for our global address, while ours runs.
        let group = Self.globalA.solicitedNode
        let probe = Self.icmpFrame(
            to: group.multicastMAC, from: Self.strangerMAC, source: .unspecified, destination: group,
            message: Self.solicitation(
                target: Self.globalA, sourceLinkLayer: nil, source: .unspecified, destination: group))
        host.inject(probe)
        #expect(stack.statistics.neighborSolicitationsReceived == 1)
        #expect(stack.statistics.duplicateAddresses == 1)
        #expect(stack.statistics.neighborAdvertisementsSent == 0)
        #expect(host.takeSent().isEmpty)
        // The address is no longer ours; the link-local one still is.
        #expect(!stack.owns(Self.globalA))
        #expect(stack.owns(stack.linkLocalAddress))
        let socket = try stack.socket(inet6: true)
        #expect(throws: Errno.EADDRNOTAVAIL) { try stack.bind(socket, address: Self.globalA, port: 80) }
        try stack.bind(socket, address: stack.linkLocalAddress, port: 80)
        // It is not answered for, not even after detection's wait, and counted once.
        host.inject(probe)
        host.clock.now = host.clock.now + .seconds(2)
        stack.poll()
        #expect(stack.statistics.duplicateAddresses == 1)
        #expect(!stack.owns(Self.globalA))
        host.inject(
            Self.icmpFrame(
                to: group.multicastMAC, from: host.peerMAC, source: Self.globalB, destination: group,
                message: Self.solicitation(
                    target: Self.globalA, sourceLinkLayer: host.peerMAC, source: Self.globalB, destination: group)))
        host.inject(
            Self.icmpFrame(
                to: host.mac, from: host.peerMAC, source: Self.globalB, destination: Self.globalA, hopLimit: 64,
                message: Self.echoRequest(
                    identifier: 1, sequence: 1, data: [1, 2, 3], source: Self.globalB, destination: Self.globalA)))
        #expect(stack.statistics.neighborAdvertisementsSent == 0)
        #expect(stack.statistics.icmpv6EchoRepliesSent == 0)
        #expect(host.takeSent().isEmpty)
        #expect(throws: Errno.EADDRNOTAVAIL) {
            try stack.bind(stack.socket(inet6: true), address: Self.globalA, port: 81)
        }
    }

    @Test func duplicateAddressIsNotUsedAsASource() throws {
        // RFC 4862 5.4.5: an address found duplicate must not be used, as a source either.
        // Refusing the connect (EADDRNOTAVAIL) or sending from the link-local address (as
        // Linux's source selection would) are both right; using fd00::1 is not.
        let host = Self.Host()
        let stack = host.stack
        stack.announce()
        _ = host.takeSent()
        host.inject(
            Self.icmpFrame(
                to: IPAddress.allNodes.multicastMAC, from: Self.strangerMAC, source: Self.globalA,
                destination: .allNodes,
                message: Self.advertisement(
                    target: Self.globalA, targetLinkLayer: Self.strangerMAC, solicited: false,
                    source: Self.globalA, destination: .allNodes)))
        #expect(stack.statistics.duplicateAddresses == 1)
        let socket = try stack.socket(inet6: true)
        try stack.setNonBlocking(socket)
        var result: Errno?
        do {
            try stack.connect(socket, address: Self.globalB, port: 80)
        } catch {
            result = error
        }
        stack.poll()
        let sources = host.takeSent().map(\.ip.source)
        let usedDuplicate = sources.contains(Self.globalA) || (try? stack.getsockname(socket).address) == Self.globalA
        #expect(result == .EADDRNOTAVAIL || result == .EINPROGRESS)
        #expect(!usedDuplicate)
    }

    @Test func advertisementForOurAddressFromAnotherMACMarksItDuplicate() throws {
        let host = Self.Host()
        let stack = host.stack
        stack.announce()
        _ = host.takeSent()
        func advertise(_ target: IPAddress, from mac: MACAddress) {
            host.inject(
                Self.icmpFrame(
                    to: IPAddress.allNodes.multicastMAC, from: mac, source: target, destination: .allNodes,
                    message: Self.advertisement(
                        target: target, targetLinkLayer: mac, solicited: false, source: target,
                        destination: .allNodes)))
        }
        // Our own advertisement looped back is no conflict.
        advertise(Self.globalA, from: host.mac)
        #expect(stack.statistics.neighborAdvertisementsReceived == 1)
        #expect(stack.statistics.duplicateAddresses == 0)
        #expect(stack.owns(Self.globalA))
        // Another host's is.
        advertise(Self.globalA, from: Self.strangerMAC)
        #expect(stack.statistics.neighborAdvertisementsReceived == 2)
        #expect(stack.statistics.duplicateAddresses == 1)
        #expect(!stack.owns(Self.globalA))
        #expect(stack.arp.entry(for: Self.globalA) == nil)
        let socket = try stack.socket(inet6: true)
        #expect(throws: Errno.EADDRNOTAVAIL) { try stack.bind(socket, address: Self.globalA, port: 80) }
        // The link-local address likewise.
        advertise(stack.linkLocalAddress, from: Self.strangerMAC)
        #expect(stack.statistics.duplicateAddresses == 2)
        #expect(!stack.owns(stack.linkLocalAddress))
        #expect(throws: Errno.EADDRNOTAVAIL) { try stack.bind(socket, address: stack.linkLocalAddress, port: 80) }
        // Counted once per address.
        advertise(Self.globalA, from: Self.strangerMAC)
        #expect(stack.statistics.duplicateAddresses == 2)
        #expect(host.takeSent().isEmpty)
        // IPv4 is untouched.
        try stack.bind(socket, address: IPAddress(addressA), port: 80)
    }

    // MARK: (5) Duplicate address detection at announce()

    @Test func announceProbesEachAddressAndPrefersThemAfterOneSecond() throws {
        let host = Self.Host()
        let stack = host.stack
        let start = host.clock.now
        stack.announce()
        #expect(stack.statistics.neighborSolicitationsSent == 2)
        #expect(stack.nextDeadline <= start + .seconds(1))
        // The gratuitous ARP for IPv4, and one probe per IPv6 address.
        #expect(host.sent.compactMap(SentFrame.init).filter { $0.arp != nil }.count == 1)
        let probes = host.takeSent()
        #expect(probes.count == 2)
        #expect(Set(probes.compactMap { $0.solicitation?.target }) == [stack.linkLocalAddress, Self.globalA])
        for probe in probes {
            let target = try #require(probe.solicitation?.target)
            #expect(probe.ethernet.destination == target.solicitedNode.multicastMAC)
            #expect(probe.ethernet.source == host.mac)
            #expect(probe.ip.source == .unspecified && probe.ip.destination == target.solicitedNode)
            #expect(probe.ip.hopLimit == 255)
            #expect(probe.icmpChecksumIsValid)
            // No link-layer option: 24 bytes, nothing to learn from a sender with no address.
            #expect(probe.payload.count == NeighborSolicitation.fixedLength)
            #expect(probe.solicitation?.sourceLinkLayer == nil)
        }
        func probe(_ target: IPAddress) {
            let group = target.solicitedNode
            host.inject(
                Self.icmpFrame(
                    to: group.multicastMAC, from: Self.strangerMAC, source: .unspecified, destination: group,
                    message: Self.solicitation(
                        target: target, sourceLinkLayer: nil, source: .unspecified, destination: group)))
        }
        // Just before the second: still tentative, so another host's probe wins the address.
        host.clock.now = start + .milliseconds(999)
        stack.poll()
        probe(stack.linkLocalAddress)
        #expect(stack.statistics.duplicateAddresses == 1)
        #expect(!stack.owns(stack.linkLocalAddress))
        #expect(host.takeSent().isEmpty)
        // At one second of simulated time the global address is preferred: a probe for it
        // is defended with an advertisement to all nodes.
        host.clock.now = start + .seconds(1)
        stack.poll()
        probe(Self.globalA)
        #expect(stack.statistics.duplicateAddresses == 1)
        #expect(stack.owns(Self.globalA))
        let defence = host.takeSent()
        #expect(defence.count == 1)
        let na = try #require(defence.first)
        #expect(na.ethernet.destination == IPAddress.allNodes.multicastMAC)
        #expect(na.ip.source == Self.globalA && na.ip.destination == .allNodes && na.ip.hopLimit == 255)
        let advertisement = try #require(na.advertisement)
        #expect(advertisement.target == Self.globalA && advertisement.targetLinkLayer == host.mac)
        #expect(!advertisement.solicited && advertisement.override)
        #expect(stack.statistics.neighborAdvertisementsSent == 1)
        // Nothing more is probed later.
        host.clock.now = start + .seconds(5)
        stack.poll()
        #expect(host.takeSent().isEmpty)
        #expect(stack.statistics.neighborSolicitationsSent == 2)
    }

    @Test func ipv6OnlyStackProbesWithoutARP() throws {
        let host = Self.Host(ipv4: false)
        let stack = host.stack
        stack.announce()
        #expect(host.sent.count == 2)
        #expect(host.takeSent().compactMap(\.solicitation).count == 2)
        #expect(stack.statistics.arpRequestsSent == 0)
        let socket = try stack.socket(inet6: true)
        #expect(throws: Errno.ENETUNREACH) { try stack.connect(socket, address: IPAddress(addressB), port: 80) }
        #expect(!stack.owns(IPAddress(addressA)))
    }

    // MARK: (6) Router advertisements

    @Test func routerAdvertisementGivesTheDefaultRouteUntilWithdrawn() throws {
        let host = Self.Host()
        let stack = host.stack
        #expect(throws: Errno.ENETUNREACH) { try stack.route(to: Self.offLink) }
        let early = try stack.socket(inet6: true)
        #expect(throws: Errno.ENETUNREACH) { try stack.connect(early, address: Self.offLink, port: 443) }
        func advertise(lifetime: UInt16, from source: IPAddress = Self.router) {
            host.inject(
                Self.icmpFrame(
                    to: IPAddress.allNodes.multicastMAC, from: Self.routerMAC, source: source, destination: .allNodes,
                    message: Self.routerAdvertisement(
                        lifetime: lifetime, sourceLinkLayer: Self.routerMAC, source: source)
                ))
        }
        advertise(lifetime: 1800)
        #expect(stack.statistics.routerAdvertisementsReceived == 1)
        #expect(try stack.route(to: Self.offLink) == Self.router)
        #expect(try stack.route(to: Self.globalB) == Self.globalB)
        #expect(stack.arp.entry(for: Self.router)?.mac == Self.routerMAC)

        // An off-link connect goes to the router's MAC, from our global address, at once.
        let socket = try stack.socket(inet6: true)
        try stack.setNonBlocking(socket)
        #expect(throws: Errno.EINPROGRESS) { try stack.connect(socket, address: Self.offLink, port: 443) }
        stack.poll()
        let frames = host.takeSent()
        let syn = try #require(frames.first { $0.tcp?.flags.contains(.syn) == true })
        #expect(syn.ethernet.destination == Self.routerMAC)
        #expect(syn.ip.destination == Self.offLink && syn.ip.source == Self.globalA)
        #expect(stack.statistics.neighborSolicitationsSent == 0)
        #expect(stack.statistics.pendingFlushed == 0)
        #expect(stack.statistics.noRoute == 0)

        // Another router's withdrawal does not remove this one.
        advertise(lifetime: 0, from: IPAddress("fe80::9")!)
        #expect(try stack.route(to: Self.offLink) == Self.router)

        // Router lifetime 0: no longer a default router.
        advertise(lifetime: 0)
        #expect(stack.statistics.routerAdvertisementsReceived == 3)
        #expect(throws: Errno.ENETUNREACH) { try stack.route(to: Self.offLink) }
        let late = try stack.socket(inet6: true)
        #expect(throws: Errno.ENETUNREACH) { try stack.connect(late, address: Self.offLink, port: 443) }

        // A lifetime runs out on simulated time.
        advertise(lifetime: 2)
        #expect(try stack.route(to: Self.offLink) == Self.router)
        host.clock.now = host.clock.now + .milliseconds(2_001)
        stack.poll()
        #expect(throws: Errno.ENETUNREACH) { try stack.route(to: Self.offLink) }

        // Only a link-local router counts.
        advertise(lifetime: 1800, from: Self.globalB)
        #expect(stack.statistics.icmpv6Errors.unsupported == 1)
        #expect(stack.statistics.routerAdvertisementsReceived == 4)
        #expect(throws: Errno.ENETUNREACH) { try stack.route(to: Self.offLink) }
    }

    @Test func configuredGatewayWinsOverAdvertisedRouter() throws {
        let gateway = IPAddress("fe80::2")!
        let host = Self.Host(ipv6: IPv6Interface(address: Self.globalA, prefixLength: 64, gateway: gateway))
        let stack = host.stack
        #expect(try stack.route(to: Self.offLink) == gateway)
        host.inject(
            Self.icmpFrame(
                to: IPAddress.allNodes.multicastMAC, from: Self.routerMAC, source: Self.router,
                destination: .allNodes,
                message: Self.routerAdvertisement(lifetime: 1800, sourceLinkLayer: Self.routerMAC, source: Self.router)
            ))
        #expect(stack.statistics.routerAdvertisementsReceived == 1)
        #expect(try stack.route(to: Self.offLink) == gateway)
    }

    // MARK: (7) Malformed input

    @Test func malformedIPv6InputIsCountedAndDropped() throws {
        let host = Self.Host()
        let stack = host.stack
        let listener = try stack.socket(inet6: true)
        try stack.bind(listener, address: .unspecified, port: 80)
        try stack.listen(listener, backlog: 4)
        try stack.setNonBlocking(listener)
        let peer = Self.globalB
        let echo = Self.echoRequest(
            identifier: 7, sequence: 1, data: [1, 2, 3, 4], source: peer, destination: Self.globalA)
        let goodEcho = Self.icmpFrame(
            to: host.mac, from: host.peerMAC, source: peer, destination: Self.globalA, hopLimit: 64, message: echo)

        // A truncated fixed header, and a payload length past the frame's end.
        host.inject(Array(goodEcho.prefix(14 + 20)))
        host.inject(Array(goodEcho.dropLast(2)))
        #expect(stack.statistics.ipv6Errors.truncated == 2)
        // A fragment (this stack does not reassemble).
        let fragmentHeader: [UInt8] = [IPProtocol.icmpv6, 0, 0x00, 0x01, 0, 0, 0x12, 0x34]
        host.inject(
            Self.frame(
                to: host.mac, from: host.peerMAC, source: peer, destination: Self.globalA,
                nextHeader: IPProtocol.fragment, payload: fragmentHeader + echo))
        #expect(stack.statistics.ipv6Errors.fragmented == 1)
        // A neighbour solicitation with hop limit 254: it was forwarded, so it is refused.
        let group = Self.globalA.solicitedNode
        host.inject(
            Self.icmpFrame(
                to: group.multicastMAC, from: host.peerMAC, source: peer, destination: group, hopLimit: 254,
                message: Self.solicitation(
                    target: Self.globalA, sourceLinkLayer: host.peerMAC, source: peer, destination: group)))
        #expect(stack.statistics.icmpv6Errors.unsupported == 1)
        #expect(stack.statistics.neighborSolicitationsReceived == 0)
        #expect(stack.arp.entry(for: peer) == nil)
        // A bad ICMPv6 checksum.
        var badEcho = echo
        badEcho[2] ^= 0x5A
        host.inject(
            Self.icmpFrame(
                to: host.mac, from: host.peerMAC, source: peer, destination: Self.globalA, hopLimit: 64,
                message: badEcho))
        #expect(stack.statistics.icmpv6Errors.badChecksum == 1)
        #expect(stack.statistics.icmpv6EchoRequests == 0)
        // A bad TCP checksum over IPv6: a SYN to the listening port, not answered.
        let syn = Self.tcpSegment(from: peer, port: 5555, to: Self.globalA, port: 80)
        var badSyn = syn
        badSyn[16] ^= 0x55
        host.inject(
            Self.frame(
                to: host.mac, from: host.peerMAC, source: peer, destination: Self.globalA, nextHeader: IPProtocol.tcp,
                payload: badSyn))
        #expect(stack.statistics.tcpErrors.badChecksum == 1)
        #expect(stack.statistics.tcpSegmentsReceived == 0)
        // A v4-mapped address is never valid on the wire.
        let mapped = IPAddress(addressB)
        host.inject(
            Self.frame(
                to: host.mac, from: host.peerMAC, source: mapped, destination: Self.globalA,
                nextHeader: IPProtocol.tcp,
                payload: Self.tcpSegment(from: mapped, port: 5555, to: Self.globalA, port: 80))
        )
        #expect(stack.statistics.ipv6Errors.unsupported == 1)
        // Nor is a multicast source: a solicitation from one was answered to the group (found by
        // the stack fuzz target).
        host.inject(
            Self.icmpFrame(
                to: group.multicastMAC, from: host.peerMAC, source: .allNodes, destination: group,
                message: Self.solicitation(
                    target: Self.globalA, sourceLinkLayer: host.peerMAC, source: .allNodes, destination: group)))
        #expect(stack.statistics.ipv6Errors.unsupported == 2)
        #expect(stack.statistics.neighborSolicitationsReceived == 0)

        // None of it had any effect.
        #expect(host.sent.isEmpty)
        #expect(stack.statistics.framesSent == 0)
        #expect(stack.statistics.malformed == 8)
        #expect(stack.statistics.ipv6Errors.total == 5 && stack.statistics.icmpv6Errors.total == 2)
        #expect(stack.statistics.tcpErrors.total == 1 && stack.statistics.ipv4Errors.total == 0)
        #expect(stack.arp.count == 0)
        #expect(throws: Errno.EAGAIN) { _ = try stack.accept(listener) }

        // The same input well formed is taken: the echo answered, the SYN answered (after
        // resolving the peer, whose first segment waits).
        host.inject(goodEcho)
        #expect(stack.statistics.icmpv6EchoRepliesSent == 1)
        host.inject(
            Self.frame(
                to: host.mac, from: host.peerMAC, source: peer, destination: Self.globalA, nextHeader: IPProtocol.tcp,
                payload: syn))
        #expect(stack.statistics.tcpSegmentsReceived == 1)
        #expect(stack.statistics.tcpSegmentsSent == 1)
        #expect(stack.arp.pendingFrames == 1)
        let sent = host.takeSent()
        #expect(sent.contains { $0.echo?.header.type == ICMPv6Type.echoReply })
        #expect(sent.contains { $0.solicitation?.target == peer })
        #expect(stack.statistics.malformed == 8)
    }

    @Test func ipv6FramesToAStackWithoutIPv6AreCountedAndDropped() throws {
        let host = Self.Host(ipv6: nil)
        let stack = host.stack
        #expect(!stack.ipv6Enabled)
        let local = stack.linkLocalAddress
        let echo = Self.echoRequest(
            identifier: 1, sequence: 1, data: [9], source: host.peerLinkLocal, destination: local)
        host.inject(
            Self.icmpFrame(
                to: host.mac, from: host.peerMAC, source: host.peerLinkLocal, destination: local, hopLimit: 64,
                message: echo))
        let group = local.solicitedNode
        host.inject(
            Self.icmpFrame(
                to: group.multicastMAC, from: host.peerMAC, source: host.peerLinkLocal, destination: group,
                message: Self.solicitation(
                    target: local, sourceLinkLayer: host.peerMAC, source: host.peerLinkLocal, destination: group)))
        #expect(stack.statistics.ipv6Disabled == 2)
        #expect(stack.statistics.dropped == 2 && stack.statistics.malformed == 0)
        #expect(stack.statistics.icmpv6EchoRequests == 0 && stack.statistics.neighborSolicitationsReceived == 0)
        #expect(host.sent.isEmpty && stack.statistics.framesSent == 0)
        #expect(stack.arp.count == 0)
        // Nor is IPv6 offered to sockets.
        #expect(!stack.owns(local))
        let socket = try stack.socket(inet6: true)
        #expect(throws: Errno.EADDRNOTAVAIL) { try stack.bind(socket, address: local, port: 80) }
        #expect(throws: Errno.ENETUNREACH) { try stack.connect(socket, address: Self.globalB, port: 80) }
        #expect(throws: Errno.ENETUNREACH) { try stack.route(to: Self.globalB) }
        // announce() probes nothing.
        stack.announce()
        #expect(host.takeSent().isEmpty && stack.statistics.neighborSolicitationsSent == 0)
    }

    // MARK: (8) Address families of the socket calls

    @Test func addressFamilyErrors() throws {
        let host = Self.Host()
        let stack = host.stack
        // AF_INET sockets take no IPv6 address.
        let inet = try stack.socket()
        #expect(throws: Errno.EAFNOSUPPORT) { try stack.bind(inet, address: Self.globalA, port: 80) }
        #expect(throws: Errno.EAFNOSUPPORT) { try stack.bind(inet, address: .unspecified, port: 80) }
        #expect(throws: Errno.EAFNOSUPPORT) { try stack.connect(inet, address: Self.globalB, port: 80) }
        #expect(throws: Errno.ENOPROTOOPT) { try stack.setV6Only(inet, true) }
        try stack.bind(inet, address: addressA, port: 80)

        // A v6-only socket takes no v4-mapped address.
        let v6Only = try stack.socket(inet6: true, v6Only: true)
        #expect(throws: Errno.EINVAL) { try stack.bind(v6Only, address: IPAddress(addressA), port: 81) }
        #expect(throws: Errno.EINVAL) { try stack.bind(v6Only, address: IPAddress(IPv4Address.any), port: 81) }
        #expect(throws: Errno.ENETUNREACH) { try stack.connect(v6Only, address: IPAddress(addressB), port: 80) }
        #expect(stack.statistics.framesSent == 0)
        try stack.bind(v6Only, address: Self.globalA, port: 81)
        #expect(try stack.getsockname(v6Only) == (Self.globalA, 81))
        // IPV6_V6ONLY only before bind.
        #expect(throws: Errno.EINVAL) { try stack.setV6Only(v6Only, false) }

        // IPV6_V6ONLY set by setsockopt does the same; cleared, v4-mapped addresses are taken.
        let flipped = try stack.socket(inet6: true)
        try stack.setV6Only(flipped, true)
        #expect(throws: Errno.EINVAL) { try stack.bind(flipped, address: IPAddress(addressA), port: 82) }
        #expect(throws: Errno.ENETUNREACH) { try stack.connect(flipped, address: IPAddress(addressB), port: 80) }
        let dual = try stack.socket(inet6: true, v6Only: true)
        try stack.setV6Only(dual, false)
        try stack.bind(dual, address: IPAddress(addressA), port: 82)
        #expect(try stack.getsockname(dual) == (IPAddress(addressA), 82))

        // Addresses that are not ours, in either family.
        let other = try stack.socket(inet6: true)
        #expect(throws: Errno.EADDRNOTAVAIL) { try stack.bind(other, address: IPAddress("fd00::99")!, port: 83) }
        #expect(throws: Errno.EADDRNOTAVAIL) { try stack.bind(other, address: IPAddress(addressB), port: 83) }
        try stack.bind(other, address: stack.linkLocalAddress, port: 83)
    }
}
