import TCP
import Testing
import Wire

/// A listener that closes with connections its application never accepted hands them to
/// another endpoint listening on the port (an nginx worker stopping on reload), as Linux's
/// tcp_migrate_req does for SO_REUSEPORT: the client sees its request answered, not a reset.
@Suite struct HandoverTests {
    static let client = IPv4Address(10, 0, 0, 1)
    static let server = IPv4Address(10, 0, 0, 2)
    static let flow = TCPFlow(localAddress: server, localPort: 80, remoteAddress: client, remotePort: 40000)
    static let request = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)

    /// Flow owners and handovers as the kernel maps hold them.
    final class SharedMaps {
        let flows = FlowRegistryTests.SharedOwners()
        var owners: [TCPFlow: String] { flows.owners }
        var listeners: [String] = []
        /// Those that listen at all (accepting or not yet).
        var holders: [String] = ["a", "b"]
        var handovers: [TCPFlow: (to: String, handover: TCPHandover)] = [:]

        func registry(for name: String) -> TCPFlowRegistry {
            var registry = flows.registry(for: name)
            registry.handOver = { flow, handover in
                guard let target = self.listeners.first(where: { $0 != name }) else { return false }
                self.flows.owners[flow] = target
                self.handovers[flow] = (target, handover)
                return true
            }
            registry.takeHandover = { flow in
                guard let entry = self.handovers[flow], entry.to == name else { return nil }
                self.handovers[flow] = nil
                return entry.handover
            }
            registry.othersListen = { _ in self.holders.contains { $0 != name } }
            registry.pendingHandovers = {
                let mine = self.handovers.filter { $0.value.to == name }
                for flow in mine.keys { self.handovers[flow] = nil }
                return mine.map { ($0.key, $0.value.handover) }
            }
            return registry
        }
    }

    struct Sent {
        var flags: TCPFlags
        var sequence: SequenceNumber
        var ack: SequenceNumber
        var payload: [UInt8]
    }

    struct Capture: TCPEndpointSink {
        var sent: [Sent] = []
        mutating func send(_ segment: TCPSegment, flow: TCPFlow) {
            sent.append(
                Sent(
                    flags: segment.flags, sequence: segment.sequenceNumber, ack: segment.acknowledgmentNumber,
                    payload: Array(segment.payload) + Array(segment.payloadTail)))
        }
    }

    static func replies(_ endpoint: TCPEndpoint, now: Instant = .zero) -> [Sent] {
        var capture = Capture()
        endpoint.poll(now: now, into: &capture)
        return capture.sent
    }

    static func segment(
        _ sequence: SequenceNumber, ack: SequenceNumber, flags: TCPFlags = [.ack], payload: [UInt8] = [],
        _ body: (TCPSegment) -> Void
    ) {
        payload.withUnsafeBytes { bytes in
            body(
                TCPSegment(
                    sequenceNumber: sequence, acknowledgmentNumber: ack, flags: flags, window: 512, payload: bytes))
        }
    }

    /// Two listeners, the client's handshake and request completed at `a`, not accepted.
    static func completedAtA() throws -> (SharedMaps, TCPEndpoint, TCPEndpoint, iss: SequenceNumber) {
        let shared = SharedMaps()
        let a = TCPEndpoint(configuration: TCPConfiguration(), secret: (1, 2))
        let b = TCPEndpoint(configuration: TCPConfiguration(), secret: (3, 4))
        a.flowRegistry = shared.registry(for: "a")
        b.flowRegistry = shared.registry(for: "b")
        try a.listen(port: 80, backlog: 16)
        try b.listen(port: 80, backlog: 16)
        shared.listeners = ["a", "b"]
        var options = TCPOptions()
        options.maximumSegmentSize = 1460
        a.handle(
            TCPSegment(sequenceNumber: SequenceNumber(1000), flags: [.syn], window: 65535, options: options),
            flow: flow, now: .zero)
        let synAck = try #require(replies(a).first)
        #expect(synAck.flags == [.syn, .ack])
        segment(SequenceNumber(1001), ack: synAck.sequence + 1, payload: request) {
            a.handle($0, flow: flow, now: .zero)
        }
        _ = replies(a)
        #expect(a.pendingAccepts(ListenerKey(port: 80)) == 1)
        return (shared, a, b, synAck.sequence)
    }

    @Test func aClosingListenerHandsItsAcceptQueueOverAndTheRequestIsAnswered() throws {
        let (shared, a, b, iss) = try Self.completedAtA()
        a.stopListening(ListenerKey(port: 80), now: .zero)
        let probe = try #require(Self.replies(a).first)
        #expect(probe.flags == [.ack], "a probe, not a reset")
        #expect(probe.sequence == iss, "one below what the peer acknowledged: it answers at once")
        #expect(probe.ack == SequenceNumber(1001) + Self.request.count)
        #expect(a.connectionCount == 0)
        #expect(a.statistics.handoversGiven == 1)
        #expect(shared.owners[Self.flow] == "b", "the flow is b's before its next segment arrives")

        // The peer's answer to the probe reaches b, which takes the connection over.
        Self.segment(SequenceNumber(1001) + Self.request.count, ack: iss + 1) {
            b.handle($0, flow: Self.flow, now: .zero)
        }
        #expect(b.statistics.handoversTaken == 1)
        let id = try #require(b.accept(ListenerKey(port: 80)), "in b's accept queue")
        var buffer = [UInt8](repeating: 0, count: 256)
        let read = buffer.withUnsafeMutableBytes { b.read(id, into: $0, now: .zero) }
        #expect(read == .bytes(Self.request.count))
        #expect(Array(buffer.prefix(Self.request.count)) == Self.request, "the request came along")

        let response = Array("HTTP/1.1 200 OK\r\n\r\n".utf8)
        _ = response.withUnsafeBytes { b.write(id, $0, now: .zero) }
        let sent = Self.replies(b).filter { !$0.payload.isEmpty }
        #expect(sent.first?.sequence == iss + 1, "b continues a's sequence space")
        #expect(sent.first?.ack == SequenceNumber(1001) + Self.request.count)
        #expect(sent.first?.payload == response)
        #expect(Self.replies(b).allSatisfy { !$0.flags.contains(.rst) })
    }

    @Test func aHandoverIsTakenWithoutThePeersAnswerToo() throws {
        let (_, a, b, _) = try Self.completedAtA()
        a.stopListening(ListenerKey(port: 80), now: .zero)
        _ = Self.replies(a)
        b.adoptHandovers(now: .zero)
        #expect(
            b.pendingAccepts(ListenerKey(port: 80)) == 1, "taken on b's next round: the client is waiting, not sending")
    }

    @Test func segmentsStillReachingTheOldOwnerAreDroppedNotReset() throws {
        let (_, a, _, iss) = try Self.completedAtA()
        a.stopListening(ListenerKey(port: 80), now: .zero)
        _ = Self.replies(a)
        Self.segment(SequenceNumber(1001) + Self.request.count, ack: iss + 1) {
            a.handle($0, flow: Self.flow, now: .zero)
        }
        #expect(Self.replies(a).isEmpty)
        #expect(a.statistics.handedOverSegmentsDropped == 1)
    }

    @Test func withNoOtherListenerYetTheConnectionWaitsForOneThenIsReset() throws {
        let (shared, a, b, _) = try Self.completedAtA()
        shared.listeners = ["a"]
        a.stopListening(ListenerKey(port: 80), now: .zero)
        #expect(Self.replies(a).allSatisfy { !$0.flags.contains(.rst) }, "kept while nobody can take it")
        #expect(a.hasOrphans)
        // A new worker joins the port: the next round hands the connection over.
        shared.listeners = ["a", "b"]
        a.retryOrphans(now: .zero + .milliseconds(100))
        #expect(!a.hasOrphans)
        #expect(a.statistics.handoversGiven == 1)
        b.adoptHandovers(now: .zero + .milliseconds(100))
        #expect(b.pendingAccepts(ListenerKey(port: 80)) == 1)

        // Nobody accepts yet, somebody may: reset once its time is up.
        let (lonely, c, _, _) = try Self.completedAtA()
        lonely.listeners = ["a"]
        c.stopListening(ListenerKey(port: 80), now: .zero)
        c.retryOrphans(now: .zero + .milliseconds(500))
        #expect(c.hasOrphans)
        c.retryOrphans(now: .zero + TCPEndpoint.orphanLifetime)
        #expect(!c.hasOrphans)
        #expect(Self.replies(c).contains { $0.flags.contains(.rst) })

        // Nobody else listens on the port at all: reset at once, as the kernel does.
        let (alone, d, _, _) = try Self.completedAtA()
        alone.listeners = ["a"]
        alone.holders = ["a"]
        d.stopListening(ListenerKey(port: 80), now: .zero)
        #expect(!d.hasOrphans)
        #expect(Self.replies(d).contains { $0.flags.contains(.rst) })
    }

    @Test func handoversSurviveTheirEncoding() throws {
        let handover = TCPHandover(
            peerInitialSequence: 0xDEAD_BEEF, localInitialSequence: 7, peerWindow: 502, peerMSS: 1460,
            peerWindowShift: 7, sackEnabled: true, peerTimestamp: 123_456, timestampOffset: 99, peerFinished: true,
            data: Self.request)
        let bytes = handover.encoded()
        #expect(bytes.count == TCPHandover.encodedBytes)
        #expect(bytes.withUnsafeBytes { TCPHandover(encoded: $0) } == handover)
        var plain = handover
        plain.peerWindowShift = nil
        plain.peerTimestamp = nil
        plain.data = []
        #expect(plain.encoded().withUnsafeBytes { TCPHandover(encoded: $0) } == plain)
        #expect([UInt8](repeating: 0xFF, count: 30).withUnsafeBytes { TCPHandover(encoded: $0) } == nil)
    }
}
