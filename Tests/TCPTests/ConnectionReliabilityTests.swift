import TCP
import Testing
import Wire

@Suite struct RetransmissionTests {
    @Test func lostDataIsRetransmittedWithExponentialBackoff() throws {
        // SYN-ACK after 100 ms: SRTT 100 ms, RTTVAR 50 ms, RTO 300 ms.
        let h = try ConnectionHarness.established()
        #expect(h.connection.statistics.rttSamples == 1)
        #expect(h.connection.retransmissionTimeout == .milliseconds(300))
        h.write(testBytes(1000))
        let first = h.poll()
        #expect(first.count == 1)
        var gaps: [UInt64] = []
        for _ in 0..<3 {
            let before = h.now
            let out = h.fireNextDeadline()
            gaps.append((h.now - before).milliseconds)
            #expect(out.count == 1)
            #expect(out.first?.seq == SequenceNumber(localISS + 1))
            #expect(out.first?.payload == testBytes(1000))
        }
        #expect(gaps == [300, 600, 1200])
        #expect(h.connection.statistics.retransmissionTimeouts == 3)
        // After a timeout the window is one segment (RFC 5681 3.1).
        #expect(h.connection.congestionWindow == 1000)
        #expect(h.connection.slowStartThreshold == 2000)

        // Karn: the ACK of a retransmitted segment gives no RTT sample.
        h.advance(by: .milliseconds(50))
        _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1001))
        #expect(h.connection.statistics.rttSamples == 1)
        #expect(h.connection.unacknowledgedBytes == 0)
        #expect(h.connection.nextDeadline == .never)

        // New data is timed again.
        h.write(testBytes(500))
        _ = h.poll()
        h.advance(by: .milliseconds(80))
        _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1501))
        #expect(h.connection.statistics.rttSamples == 2)
    }

    @Test func retryLimitTimesOut() throws {
        var config = TCPConfiguration()
        config.maximumRetransmissions = 3
        let h = try ConnectionHarness.established(config)
        h.write(testBytes(100))
        _ = h.poll()
        for _ in 0..<3 { #expect(h.fireNextDeadline().count == 1) }
        #expect(h.state == .established)
        #expect(h.fireNextDeadline().isEmpty)
        #expect(h.state == .closed)
        #expect(h.connection.error == .timedOut)
        #expect(h.write(testBytes(1)) == .failed(.timedOut))
    }

    @Test func peerThatVanishesTimesOutTheSender() throws {
        let pair = try ConnectionPair()
        pair.pump()
        pair.blackhole = .b
        #expect(pair.a.write(testBytes(5000), now: pair.now) == .bytes(5000))
        pair.run(for: .seconds(3600))
        #expect(pair.a.state == .closed)
        #expect(pair.a.error == .timedOut)
        #expect(pair.a.statistics.retransmissionTimeouts == 16)
    }

    @Test func lostSegmentsBetweenRealConnectionsAreRecovered() throws {
        let pair = try ConnectionPair()
        pair.pump()
        pair.dropIndices = [5, 6, 20, 40, 41, 42, 60]
        let data = testBytes(300_000, seed: 7)
        #expect(pair.transfer(data, from: .a) == data)
        #expect(pair.a.statistics.retransmittedSegments + pair.a.statistics.retransmissionTimeouts > 0)
    }

    @Test func reorderedSegmentsBetweenRealConnectionsAreReassembled() throws {
        let pair = try ConnectionPair()
        pair.pump()
        pair.delayIndices = [4, 9, 15]
        let data = testBytes(100_000, seed: 8)
        #expect(pair.transfer(data, from: .a) == data)
        #expect(pair.b.statistics.outOfOrderSegments > 0)
    }

    @Test func outOfOrderDataIsReassembledWithImmediateDuplicateAcks() throws {
        let h = try ConnectionHarness.established()
        let data = testBytes(300)
        let second = h.deliver(seg(seq: peerISS + 101, ack: localISS + 1, payload: Array(data[100..<200])))
        #expect(second.count == 1 && second.first?.ack == SequenceNumber(peerISS + 1))
        let third = h.deliver(seg(seq: peerISS + 201, ack: localISS + 1, payload: Array(data[200..<300])))
        #expect(third.count == 1 && third.first?.ack == SequenceNumber(peerISS + 1))
        #expect(h.connection.readableBytes == 0)
        let first = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1, payload: Array(data[0..<100])))
        #expect(first.count == 1 && first.first?.ack == SequenceNumber(peerISS + 301))
        #expect(h.readAll() == data)
        #expect(h.connection.statistics.outOfOrderSegments == 2)
    }

    @Test func sackBlocksReportNewestSegmentFirst() throws {
        let h = try ConnectionHarness.established(peerOptions: synOptions(sack: true))
        #expect(h.connection.sackEnabled)
        func blocks(_ out: [Seg]) -> [[UInt32]] {
            (out.first?.options.sackBlocks ?? SACKBlockList()).map { [$0.left - peerISS, $0.right - peerISS] }
        }
        func send(_ offset: UInt32) -> [Seg] {
            h.deliver(seg(seq: peerISS + offset, ack: localISS + 1, payload: testBytes(100)))
        }
        #expect(blocks(send(101)) == [[101, 201]])
        #expect(blocks(send(301)) == [[301, 401], [101, 201]])
        #expect(blocks(send(501)) == [[501, 601], [301, 401], [101, 201]])
        #expect(blocks(send(201)) == [[101, 401], [501, 601]])
        let filled = send(1)
        #expect(filled.first?.ack == SequenceNumber(peerISS + 401))
        #expect(blocks(filled) == [[501, 601]])
        let all = send(401)
        #expect(all.first?.ack == SequenceNumber(peerISS + 601))
        #expect(blocks(all) == [])
    }

    @Test func sackBlocksLeaveRoomForTimestamps() throws {
        let h = try ConnectionHarness.established(peerOptions: synOptions(sack: true, timestamp: 1))
        #expect(h.connection.timestampsEnabled)
        var last: [Seg] = []
        for i in 0..<5 {
            let offset = UInt32(101 + 200 * i)
            last = h.deliver(
                seg(
                    seq: peerISS + offset, ack: localISS + 1, payload: testBytes(100),
                    options: TCPOptions(timestamp: TCPTimestampOption(value: 2, echoReply: 0))))
        }
        #expect(last.first?.options.sackBlocks.count == 3)
        #expect(last.first?.options.sackBlocks.first?.left == peerISS + 901)
    }
}

@Suite struct FastRecoveryTests {
    /// An established sender with ten 1000-byte segments in flight.
    func tenSegmentsInFlight(sack: Bool, algorithm: CongestionAlgorithm = .reno) throws -> ConnectionHarness {
        var config = TCPConfiguration()
        config.congestionAlgorithm = algorithm
        let h = try ConnectionHarness.established(config, peerOptions: synOptions(sack: sack))
        h.write(testBytes(10_000))
        let out = h.poll()
        try #require(out.count == 10)
        return h
    }

    func dupAck(_ blocks: [(UInt32, UInt32)] = []) -> Seg {
        var options = TCPOptions()
        for (l, r) in blocks { _ = options.sackBlocks.append(SACKBlock(left: localISS + l, right: localISS + r)) }
        return seg(seq: peerISS + 1, ack: localISS + 1, options: options)
    }

    @Test func threeDuplicateAcksTriggerNewRenoFastRetransmit() throws {
        let h = try tenSegmentsInFlight(sack: false)
        #expect(h.deliver(dupAck()).isEmpty)
        #expect(h.deliver(dupAck()).isEmpty)
        let out = h.deliver(dupAck())
        #expect(out.count == 1)
        #expect(out.first?.seq == SequenceNumber(localISS + 1))
        #expect(out.first?.payload.count == 1000)
        #expect(h.connection.statistics.fastRetransmits == 1)
        #expect(h.connection.statistics.duplicateAcks == 3)
        // ssthresh = FlightSize / 2; cwnd inflated by the three segments that left.
        #expect(h.connection.slowStartThreshold == 5000)
        #expect(h.connection.congestionWindow == 8000)
        // Further duplicates inflate the window but resend nothing.
        #expect(h.deliver(dupAck()).isEmpty)
        #expect(h.connection.congestionWindow == 9000)
    }

    @Test func partialAckRetransmitsNextHoleAndFullAckEndsRecovery() throws {
        let h = try tenSegmentsInFlight(sack: false)
        for _ in 0..<3 { _ = h.deliver(dupAck()) }
        // The peer had 1001..3000 after the retransmission, but 3001..4000 was lost too.
        let partial = h.deliver(seg(seq: peerISS + 1, ack: localISS + 2001))
        #expect(partial.count == 1)
        #expect(partial.first?.seq == SequenceNumber(localISS + 2001))
        #expect(h.connection.statistics.retransmissionTimeouts == 0)
        _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 10_001))
        #expect(h.connection.congestionWindow == 5000)
        #expect(h.connection.unacknowledgedBytes == 0)
        #expect(h.connection.nextDeadline == .never)
    }

    @Test func limitedTransmitSendsNewDataOnFirstDuplicates() throws {
        let h = try tenSegmentsInFlight(sack: false)
        h.write(testBytes(5000))
        let one = h.deliver(dupAck())
        #expect(one.count == 1)
        #expect(one.first?.seq == SequenceNumber(localISS + 10_001))
    }

    @Test func sackRecoveryRetransmitsTheHoleOnly() throws {
        let h = try tenSegmentsInFlight(sack: true)
        #expect(h.deliver(dupAck([(1001, 2001)])).isEmpty)
        #expect(h.deliver(dupAck([(1001, 3001)])).isEmpty)
        let out = h.deliver(dupAck([(1001, 4001)]))
        #expect(out.first?.seq == SequenceNumber(localISS + 1))
        #expect(out.first?.payload.count == 1000)
        // Nothing already SACKed is sent again.
        #expect(
            out.allSatisfy { !($0.seq - SequenceNumber(localISS) >= 1001 && $0.seq - SequenceNumber(localISS) < 4001) })
        #expect(h.connection.statistics.fastRetransmits == 1)
        #expect(h.connection.slowStartThreshold == 5000)
        _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 10_001))
        #expect(h.connection.unacknowledgedBytes == 0)
        #expect(h.connection.congestionWindow == 5000)
    }

    @Test func sackRecoveryRetransmitsSeveralHoles() throws {
        let h = try tenSegmentsInFlight(sack: true)
        // Segments 1 and 3 lost; 2 and 4..8 arrive.
        _ = h.deliver(dupAck([(1001, 2001)]))
        _ = h.deliver(dupAck([(3001, 4001), (1001, 2001)]))
        var retransmitted: [Int] = []
        retransmitted += h.deliver(dupAck([(3001, 5001), (1001, 2001)])).map { $0.seq - SequenceNumber(localISS) }
        retransmitted += h.deliver(dupAck([(3001, 6001), (1001, 2001)])).map { $0.seq - SequenceNumber(localISS) }
        retransmitted += h.deliver(dupAck([(3001, 7001), (1001, 2001)])).map { $0.seq - SequenceNumber(localISS) }
        #expect(retransmitted.contains(1))
        #expect(retransmitted.contains(2001))
        #expect(Set(retransmitted).count == retransmitted.count)
    }
}
