import TCP
import Testing
import Wire

@Suite struct DelayedAckTests {
    @Test func singleSegmentIsAckedAfter40Milliseconds() throws {
        let h = try ConnectionHarness.established()
        let start = h.now
        #expect(h.deliver(seg(seq: peerISS + 1, ack: localISS + 1, payload: testBytes(1000))).isEmpty)
        #expect(h.connection.nextDeadline == start + .milliseconds(40))
        h.advance(by: .milliseconds(39))
        #expect(h.poll().isEmpty)
        let ack = h.fireNextDeadline()
        #expect(h.now == start + .milliseconds(40))
        #expect(ack.count == 1)
        #expect(ack.first?.ack == SequenceNumber(peerISS + 1001))
    }

    @Test func secondFullSegmentIsAckedAtOnce() throws {
        let h = try ConnectionHarness.established()
        #expect(h.deliver(seg(seq: peerISS + 1, ack: localISS + 1, payload: testBytes(1000))).isEmpty)
        let ack = h.deliver(seg(seq: peerISS + 1001, ack: localISS + 1, payload: testBytes(1000)))
        #expect(ack.count == 1)
        #expect(ack.first?.ack == SequenceNumber(peerISS + 2001))
        #expect(h.connection.nextDeadline == .never)
    }

    @Test func outOfOrderSegmentIsAckedAtOnce() throws {
        let h = try ConnectionHarness.established()
        let ack = h.deliver(seg(seq: peerISS + 1001, ack: localISS + 1, payload: testBytes(1000)))
        #expect(ack.count == 1)
        #expect(ack.first?.ack == SequenceNumber(peerISS + 1))
    }

    @Test func withoutDelayedAcksEverySegmentIsAckedAtOnce() throws {
        var config = TCPConfiguration()
        config.delayedAcknowledgments = false
        let h = try ConnectionHarness.established(config)
        let ack = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1, payload: testBytes(10)))
        #expect(ack.count == 1)
        #expect(ack.first?.ack == SequenceNumber(peerISS + 11))
    }

    @Test func dataSentBeforeTheTimerCarriesTheAck() throws {
        let h = try ConnectionHarness.established()
        _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1, payload: testBytes(10)))
        h.advance(by: .milliseconds(5))
        h.write(testBytes(20))
        let out = h.poll()
        #expect(out.count == 1)
        #expect(out.first?.ack == SequenceNumber(peerISS + 11))
        #expect(out.first?.payload.count == 20)
        // The delayed ACK is no longer owed.
        h.advance(by: .milliseconds(50))
        #expect(h.poll().isEmpty)
    }
}

@Suite struct NagleTests {
    @Test func smallWritesAreCoalescedWhileDataIsInFlight() throws {
        let h = try ConnectionHarness.established()
        h.write(testBytes(10))
        let first = h.poll()
        #expect(first.count == 1 && first.first?.payload.count == 10)
        h.write(testBytes(10, seed: 1))
        #expect(h.poll().isEmpty)
        h.write(testBytes(10, seed: 2))
        #expect(h.poll().isEmpty)
        let out = h.deliver(seg(seq: peerISS + 1, ack: localISS + 11))
        #expect(out.count == 1)
        #expect(out.first?.seq == SequenceNumber(localISS + 11))
        #expect(out.first?.payload == testBytes(10, seed: 1) + testBytes(10, seed: 2))
    }

    @Test func fullSegmentsGoOutDespiteNagle() throws {
        let h = try ConnectionHarness.established()
        h.write(testBytes(10))
        _ = h.poll()
        h.write(testBytes(2500))
        let out = h.poll()
        // Two full segments go; the 510-byte tail waits for the ACK.
        #expect(out.map(\.payload.count) == [1000, 1000])
    }

    @Test func noDelaySendsSmallWritesAtOnce() throws {
        var config = TCPConfiguration()
        config.noDelay = true
        let h = try ConnectionHarness.established(config)
        for i in 0..<3 {
            h.write(testBytes(10, seed: i))
            let out = h.poll()
            #expect(out.count == 1)
            #expect(out.first?.payload == testBytes(10, seed: i))
        }
    }

    @Test func setNoDelayOnLiveConnection() throws {
        let h = try ConnectionHarness.established()
        h.write(testBytes(10))
        _ = h.poll()
        h.connection.setNoDelay(true)
        h.write(testBytes(10))
        #expect(h.poll().count == 1)
    }
}

@Suite struct CorkTests {
    func corked() -> TCPConfiguration {
        var config = TCPConfiguration()
        config.cork = true
        return config
    }

    @Test func onlyFullSegmentsGoWhileCorked() throws {
        let h = try ConnectionHarness.established(corked())
        h.write(testBytes(300))
        #expect(h.poll().isEmpty)
        h.write(testBytes(1200, seed: 1))
        // One full segment (MSS 1000); the 500-byte rest waits, even with nothing in flight.
        #expect(h.poll().map(\.payload.count) == [1000])
        _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1001))
        #expect(h.poll().isEmpty)
        // A FIN goes out with the remainder.
        h.connection.shutdownWrite(now: h.now)
        let out = h.poll()
        #expect(out.count == 1 && out.first?.payload.count == 500 && out.first?.flags.contains(.fin) == true)
    }

    @Test func uncorkingSendsThePartialSegmentAtOnce() throws {
        let h = try ConnectionHarness.established(corked())
        h.write(testBytes(10))
        #expect(h.poll().isEmpty)
        h.connection.setCork(false)
        #expect(h.poll().map(\.payload) == [testBytes(10)])
        // Uncorking pushes even past Nagle: a small segment is in flight and another waits.
        h.connection.setCork(true)
        h.write(testBytes(20, seed: 1))
        #expect(h.poll().isEmpty)
        h.connection.setCork(false)
        #expect(h.poll().map(\.payload) == [testBytes(20, seed: 1)])
        // Afterwards Nagle holds small writes again.
        h.write(testBytes(5, seed: 2))
        #expect(h.poll().isEmpty)
    }

    @Test func aCorkedPartialSegmentGoesAfterTwoHundredMilliseconds() throws {
        let h = try ConnectionHarness.established(corked())
        let start = h.now
        h.write(testBytes(100))
        #expect(h.poll().isEmpty)
        #expect(h.connection.nextDeadline == start + .milliseconds(200))
        h.advance(by: .milliseconds(199))
        #expect(h.poll().isEmpty)
        let out = h.fireNextDeadline()
        #expect(h.now == start + .milliseconds(200))
        #expect(out.map(\.payload) == [testBytes(100)])
        // Nothing held: the cork timer is off again (only the retransmission timer runs).
        #expect(h.connection.nextDeadline == h.now + h.connection.retransmissionTimeout)
    }
}

@Suite struct KeepAliveTests {
    func keepAliveConfig() -> TCPConfiguration {
        var config = TCPConfiguration()
        config.keepAlive = true
        config.keepAliveIdle = .seconds(10)
        config.keepAliveInterval = .seconds(1)
        config.keepAliveCount = 3
        return config
    }

    @Test func unansweredProbesTimeOut() throws {
        let h = try ConnectionHarness.established(keepAliveConfig())
        let established = h.now
        #expect(h.connection.nextDeadline == established + .seconds(10))
        for i in 0..<3 {
            let out = h.fireNextDeadline()
            #expect(h.now == established + .seconds(10 + UInt64(i)))
            #expect(out.count == 1)
            #expect(out.first?.seq == SequenceNumber(localISS))
            #expect(out.first?.ack == SequenceNumber(peerISS + 1))
            #expect(out.first?.payload.isEmpty == true)
        }
        #expect(h.state == .established)
        #expect(h.fireNextDeadline().isEmpty)
        #expect(h.state == .closed)
        #expect(h.connection.error == .timedOut)
        #expect(h.connection.statistics.keepAliveProbes == 3)
    }

    @Test func answerResetsProbeCount() throws {
        let h = try ConnectionHarness.established(keepAliveConfig())
        _ = h.fireNextDeadline()
        _ = h.fireNextDeadline()
        // The peer answers the probe with an ACK at its RCV.NXT.
        _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1))
        #expect(h.connection.nextDeadline == h.now + .seconds(10))
        for _ in 0..<3 { #expect(h.fireNextDeadline().count == 1) }
        #expect(h.state == .established)
        _ = h.fireNextDeadline()
        #expect(h.state == .closed)
    }

    @Test func trafficPostponesProbes() throws {
        let h = try ConnectionHarness.established(keepAliveConfig())
        h.advance(by: .seconds(8))
        _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1, payload: testBytes(5)))
        let received = h.now
        _ = h.fireNextDeadline()  // the delayed ACK
        #expect(h.connection.nextDeadline == received + .seconds(10))
    }

    @Test func keepAliveBetweenRealConnectionsKeepsThemUp() throws {
        let pair = try ConnectionPair(client: keepAliveConfig())
        pair.pump()
        pair.run(for: .seconds(3600))
        #expect(pair.a.state == .established)
        #expect(pair.a.statistics.keepAliveProbes > 300)
        pair.blackhole = .b
        pair.run(for: .seconds(20))
        #expect(pair.a.state == .closed)
        #expect(pair.a.error == .timedOut)
    }

    @Test func disabledByDefault() throws {
        let h = try ConnectionHarness.established()
        #expect(h.connection.nextDeadline == .never)
    }
}
