import TCP
import Testing
import Wire

/// Endpoints that share a link record their flows in a registry (the kernel's flow map under
/// the preload library): a flow has one owner from its first segment until it is freed.
@Suite struct FlowRegistryTests {
    static let client = IPv4Address(10, 0, 0, 1)
    static let server = IPv4Address(10, 0, 0, 2)

    /// Owners by flow, as the shared map holds them (keys are the server's view).
    final class SharedOwners {
        var owners: [TCPFlow: String] = [:]

        func registry(for name: String) -> TCPFlowRegistry {
            TCPFlowRegistry(
                claim: { flow in
                    if let owner = self.owners[flow] { return owner == name }
                    self.owners[flow] = name
                    return true
                },
                release: { flow in
                    if self.owners[flow] == name { self.owners[flow] = nil }
                })
        }
    }

    /// Collects segments without their payload (handshakes and resets carry none).
    struct Capture: TCPEndpointSink {
        var sent: [(flags: TCPFlags, sequence: SequenceNumber, ack: SequenceNumber, flow: TCPFlow)] = []
        mutating func send(_ segment: TCPSegment, flow: TCPFlow) {
            sent.append((segment.flags, segment.sequenceNumber, segment.acknowledgmentNumber, flow))
        }
    }

    static func serverFlow(clientPort: UInt16) -> TCPFlow {
        TCPFlow(localAddress: server, localPort: 80, remoteAddress: client, remotePort: clientPort)
    }

    static func syn(_ sequence: UInt32) -> TCPSegment {
        var options = TCPOptions()
        options.maximumSegmentSize = 1460
        return TCPSegment(sequenceNumber: SequenceNumber(sequence), flags: [.syn], window: 65535, options: options)
    }

    static func replies(_ endpoint: TCPEndpoint, now: Instant = .zero) -> Capture {
        var capture = Capture()
        endpoint.poll(now: now, into: &capture)
        return capture
    }

    @Test func aSYNIsAnsweredOnlyByTheEndpointThatClaimedItsFlow() throws {
        let shared = SharedOwners()
        let a = TCPEndpoint(configuration: TCPConfiguration(), secret: (1, 2))
        let b = TCPEndpoint(configuration: TCPConfiguration(), secret: (3, 4))
        a.flowRegistry = shared.registry(for: "a")
        b.flowRegistry = shared.registry(for: "b")
        try a.listen(port: 80, backlog: 16)
        try b.listen(port: 80, backlog: 16)
        let flow = Self.serverFlow(clientPort: 40000)

        a.handle(Self.syn(1000), flow: flow, now: .zero)
        #expect(shared.owners[flow] == "a", "claimed before the SYN-ACK leaves")
        #expect(Self.replies(a).sent.map(\.flags) == [[.syn, .ack]])

        // The same SYN reaching b (a retransmission after the listeners changed): silence.
        b.handle(Self.syn(1000), flow: flow, now: .zero)
        #expect(Self.replies(b).sent.isEmpty)
        #expect(b.connectionCount == 0)
        #expect(b.statistics.flowsOwnedElsewhere == 1)

        // Freed with its connection: a reset from the client ends the embryo.
        a.handle(
            TCPSegment(sequenceNumber: SequenceNumber(1001), flags: [.rst], window: 0), flow: flow, now: .zero)
        _ = Self.replies(a)
        #expect(a.connectionCount == 0)
        #expect(shared.owners[flow] == nil, "released when the connection is freed")
    }

    @Test func activeOpensSkipFourTuplesOthersOwn() throws {
        let shared = SharedOwners()
        let endpoint = TCPEndpoint(configuration: TCPConfiguration(), secret: (5, 6))
        endpoint.flowRegistry = shared.registry(for: "me")
        // Another process holds every 4-tuple to the server's port 80 on the first 20 ports the
        // search will try, whatever they are: take them by opening and aborting probes.
        endpoint.startEphemeralSearch(at: 0)
        for port in TCPEndpoint.ephemeralPorts.lowerBound..<(TCPEndpoint.ephemeralPorts.lowerBound + 20) {
            shared.owners[
                TCPFlow(localAddress: Self.client, localPort: port, remoteAddress: Self.server, remotePort: 80)] =
                "other"
        }
        let id = try endpoint.connect(from: Self.client, to: Self.server, port: 80, now: .zero)
        let flow = try #require(endpoint.flow(id))
        #expect(flow.localPort == TCPEndpoint.ephemeralPorts.lowerBound + 20)
        #expect(shared.owners[flow] == "me")
        #expect(endpoint.statistics.flowsOwnedElsewhere == 20)
        // An explicit local port another process holds is EADDRINUSE.
        #expect(throws: TCPEndpointError.addressInUse) {
            try endpoint.connect(
                from: Self.client, localPort: TCPEndpoint.ephemeralPorts.lowerBound, to: Self.server, port: 80,
                now: .zero)
        }
    }

    @Test func aSYNOnTimeWaitOfAPortThisEndpointNoLongerListensOnFreesTheFlow() throws {
        let shared = SharedOwners()
        var configuration = TCPConfiguration()
        configuration.timeWaitDuration = .seconds(60)
        let server = TCPEndpoint(configuration: configuration, secret: (7, 8))
        let client = TCPEndpoint(configuration: configuration, secret: (9, 10))
        server.flowRegistry = shared.registry(for: "old worker")
        try server.listen(port: 80, backlog: 16)
        let id = try client.connect(from: Self.client, to: Self.server, port: 80, now: .zero)
        let clientFlow = try #require(client.flow(id))
        let flow = TCPFlow(
            localAddress: Self.server, localPort: 80, remoteAddress: Self.client, remotePort: clientFlow.localPort)
        // Handshake, then the server closes first and ends in TIME-WAIT.
        var lastClientSequence = SequenceNumber(0)
        func exchange(now: Instant) {
            for _ in 0..<8 {
                let fromClient = Self.replies(client, now: now).sent
                for s in fromClient {
                    lastClientSequence = s.sequence
                    server.handle(
                        TCPSegment(
                            sequenceNumber: s.sequence, acknowledgmentNumber: s.ack, flags: s.flags, window: 65535,
                            options: Self.syn(0).options), flow: flow, now: now)
                }
                let fromServer = Self.replies(server, now: now).sent
                for s in fromServer {
                    client.handle(
                        TCPSegment(
                            sequenceNumber: s.sequence, acknowledgmentNumber: s.ack, flags: s.flags, window: 65535,
                            options: Self.syn(0).options), flow: clientFlow, now: now)
                }
                if fromClient.isEmpty && fromServer.isEmpty { return }
            }
        }
        exchange(now: .zero)
        let accepted = try #require(server.accept(ListenerKey(port: 80)))
        server.close(accepted, now: .zero)
        exchange(now: .zero)
        client.close(id, now: .zero)
        exchange(now: .zero)
        #expect(server.status(accepted) == nil || server.countConnections(in: .timeWait) == 1)
        #expect(shared.owners[flow] == "old worker")

        // This endpoint stops listening (the new workers listen now); the client reuses the
        // 4-tuple with a higher sequence number.
        server.stopListening(ListenerKey(port: 80), now: .zero)
        server.handle(
            Self.syn((lastClientSequence + 100_000).rawValue), flow: flow, now: Instant.zero + .milliseconds(10))
        #expect(
            Self.replies(server, now: Instant.zero + .milliseconds(10)).sent.isEmpty,
            "no answer: another process's listener takes it")
        #expect(server.countConnections(in: .timeWait) == 0)
        #expect(shared.owners[flow] == nil)
    }
}
