import TCP
import Testing
import Wire

@Suite struct CongestionWindowTests {
    @Test func initialWindowIsTenSegments() throws {
        let h = try ConnectionHarness.established()
        h.write(testBytes(50_000))
        let out = h.poll()
        #expect(out.count == 10)
        #expect(out.allSatisfy { $0.payload.count == 1000 })
        #expect(h.connection.congestionWindow == 10_000)
    }

    @Test func initialWindowBetweenRealConnections() throws {
        let pair = try ConnectionPair()
        pair.pump()
        let handshake = pair.log.count
        #expect(pair.a.write(testBytes(100_000), now: pair.now) == .bytes(100_000))
        pair.pump()
        let beforeFirstAck = pair.log[handshake...].prefix { $0.from == .a }
        #expect(beforeFirstAck.count == 10)
        #expect(beforeFirstAck.allSatisfy { $0.segment.payload.count == pair.a.effectiveSendMSS })
    }

    @Test func slowStartGrowsOneSegmentPerAck() throws {
        let h = try ConnectionHarness.established()
        h.write(testBytes(100_000))
        var sent = h.poll().count
        #expect(sent == 10)
        for i in 1...10 {
            let out = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1 + UInt32(1000 * i)))
            #expect(out.count == 2)
            sent += out.count
        }
        #expect(h.connection.congestionWindow == 20_000)
        #expect(sent == 30)
    }

    @Test func fastRetransmitHalvesTheWindow() throws {
        let h = try ConnectionHarness.established()
        h.write(testBytes(10_000))
        _ = h.poll()
        for _ in 0..<3 { _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1)) }
        #expect(h.connection.slowStartThreshold == 5000)
        _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 10_001))
        #expect(h.connection.congestionWindow == 5000)
    }

    @Test func timeoutCollapsesWindowToOneSegment() throws {
        let h = try ConnectionHarness.established()
        h.write(testBytes(10_000))
        #expect(h.poll().count == 10)
        let out = h.fireNextDeadline()
        #expect(out.count == 1)
        #expect(out.first?.seq == SequenceNumber(localISS + 1))
        #expect(h.connection.congestionWindow == 1000)
        #expect(h.connection.slowStartThreshold == 5000)
        // The ACK of the retransmission lets two segments go (slow start from one).
        let next = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1001))
        #expect(next.count == 2)
        #expect(next.first?.seq == SequenceNumber(localISS + 1001))
    }

    @Test func cubicIsSelectableAndReducesByBeta() throws {
        var config = TCPConfiguration()
        config.congestionAlgorithm = .cubic
        let h = try ConnectionHarness.established(config)
        h.write(testBytes(10_000))
        _ = h.poll()
        for _ in 0..<3 { _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1)) }
        #expect(h.connection.statistics.fastRetransmits == 1)
        // CUBIC's beta is 0.7 where Reno halves.
        #expect(h.connection.slowStartThreshold == 7000)
    }

    @Test(arguments: CongestionAlgorithm.allCases)
    func lossyTransferCompletesWithEitherAlgorithm(algorithm: CongestionAlgorithm) throws {
        var config = TCPConfiguration()
        config.congestionAlgorithm = algorithm
        let pair = try ConnectionPair(client: config, server: config)
        pair.pump()
        pair.dropIndices = Set(stride(from: 10, to: 400, by: 37))
        let data = testBytes(400_000, seed: 9)
        #expect(pair.transfer(data, from: .a) == data)
    }
}
