import TCP
import Testing
import Wire

@Suite struct SynSentTests {
    @Test func synCarriesMSSWindowScaleSACKAndTimestampOptions() {
        let h = ConnectionHarness.active()
        #expect(h.state == .synSent)
        let out = h.poll()
        #expect(out.count == 1)
        let syn = out[0]
        #expect(syn.flags == .syn)
        #expect(syn.seq == SequenceNumber(localISS))
        #expect(syn.options.maximumSegmentSize == 1460)
        // 256 KiB receive buffer needs a shift of 3 to fit 16 bits.
        #expect(syn.options.windowScale == 3)
        #expect(syn.options.sackPermitted)
        #expect(syn.options.timestamp != nil)
        #expect(syn.options.timestamp?.echoReply == 0)
        #expect(syn.window == 65535)
    }

    @Test func synWithoutOptionsWhenDisabled() {
        var config = TCPConfiguration()
        config.windowScaling = false
        config.selectiveAcknowledgments = false
        config.timestamps = false
        let h = ConnectionHarness.active(config)
        let syn = h.poll()[0]
        #expect(syn.options.windowScale == nil)
        #expect(!syn.options.sackPermitted)
        #expect(syn.options.timestamp == nil)
        #expect(syn.options.maximumSegmentSize == 1460)
    }

    @Test func synAckMovesToEstablishedAndIsAcked() {
        let h = ConnectionHarness.active()
        _ = h.poll()
        let out = h.deliver(seg(seq: peerISS, ack: localISS + 1, flags: [.syn, .ack], options: synOptions()))
        #expect(h.state == .established)
        #expect(h.connection.takeEvents().contains(.connected))
        #expect(out.count == 1)
        #expect(out[0].isPureAck)
        #expect(out[0].seq == SequenceNumber(localISS + 1))
        #expect(out[0].ack == SequenceNumber(peerISS + 1))
        #expect(h.connection.peerMSS == 1000)
    }

    @Test func synAckWithBadAckGetsResetWithSeqOfItsAck() {
        let h = ConnectionHarness.active()
        _ = h.poll()
        for badAck in [localISS, localISS + 2, localISS &- 500] {
            let out = h.deliver(seg(seq: peerISS, ack: badAck, flags: [.syn, .ack]))
            #expect(out.count == 1)
            #expect(out.first?.flags == .rst)
            #expect(out.first?.seq == SequenceNumber(badAck))
            #expect(h.state == .synSent)
        }
    }

    @Test func rstWithAcceptableAckRefuses() {
        let h = ConnectionHarness.active()
        _ = h.poll()
        let out = h.deliver(seg(seq: 0, ack: localISS + 1, flags: [.rst, .ack], window: 0))
        #expect(out.isEmpty)
        #expect(h.state == .closed)
        #expect(h.connection.error == .connectionRefused)
        #expect(h.connection.takeEvents().contains(.failed))
        #expect(h.read(max: 10).0 == .failed(.connectionRefused))
    }

    @Test func rstWithUnacceptableAckIsIgnored() {
        let h = ConnectionHarness.active()
        _ = h.poll()
        let out = h.deliver(seg(seq: 0, ack: localISS + 7, flags: [.rst, .ack], window: 0))
        #expect(out.isEmpty)
        #expect(h.state == .synSent)
    }

    @Test func rstWithoutAckIsIgnored() {
        let h = ConnectionHarness.active()
        _ = h.poll()
        let out = h.deliver(seg(seq: peerISS, flags: .rst, window: 0))
        #expect(out.isEmpty)
        #expect(h.state == .synSent)
        #expect(h.connection.error == nil)
    }

    @Test func simultaneousOpenGoesThroughSynReceived() {
        let pair = ConnectionPair(bothActive: TCPConfiguration(), TCPConfiguration())
        let synA = pair.poll(.a)
        let synB = pair.poll(.b)
        #expect(synA.count == 1 && synB.count == 1)
        pair.deliver(synA[0], to: .b)
        pair.deliver(synB[0], to: .a)
        #expect(pair.a.state == .synReceived)
        #expect(pair.b.state == .synReceived)
        let synAckA = pair.poll(.a)
        let synAckB = pair.poll(.b)
        #expect(synAckA.count == 1 && synAckA.first?.flags == [.syn, .ack])
        #expect(synAckB.count == 1 && synAckB.first?.flags == [.syn, .ack])
        #expect(synAckA.first?.seq == SequenceNumber(1000))
        #expect(synAckA.first?.ack == SequenceNumber(90001))
        pair.deliver(synAckA[0], to: .b)
        pair.deliver(synAckB[0], to: .a)
        pair.pump()
        #expect(pair.a.state == .established)
        #expect(pair.b.state == .established)
        #expect(pair.a.takeEvents().contains(.connected))
        #expect(pair.b.takeEvents().contains(.connected))
        #expect(pair.transfer(testBytes(3000), from: .a) == testBytes(3000))
        #expect(pair.transfer(testBytes(3000, seed: 5), from: .b) == testBytes(3000, seed: 5))
    }

    @Test func synIsRetransmittedWithExponentialBackoffThenTimesOut() {
        var config = TCPConfiguration()
        config.maximumSYNRetransmissions = 4
        let h = ConnectionHarness.active(config)
        #expect(h.poll().count == 1)
        var sendTimes: [UInt64] = []
        for _ in 0..<4 {
            let out = h.fireNextDeadline()
            #expect(out.count == 1)
            #expect(out.first?.flags == .syn)
            #expect(out.first?.seq == SequenceNumber(localISS))
            sendTimes.append(h.now.nanoseconds / 1_000_000_000)
        }
        // 1 s, then 2, 4, 8 s between attempts.
        #expect(sendTimes == [1, 3, 7, 15])
        #expect(h.state == .synSent)
        #expect(h.connection.nextDeadline == Instant(nanoseconds: 31_000_000_000))
        #expect(h.fireNextDeadline().isEmpty)
        #expect(h.state == .closed)
        #expect(h.connection.error == .timedOut)
    }

    @Test func answerToRetransmittedSynGivesNoRTTSample() {
        let h = ConnectionHarness.active()
        _ = h.poll()
        _ = h.fireNextDeadline()  // SYN again at 1 s
        h.advance(by: .milliseconds(10))
        _ = h.deliver(seg(seq: peerISS, ack: localISS + 1, flags: [.syn, .ack], options: synOptions()))
        #expect(h.state == .established)
        #expect(h.connection.statistics.rttSamples == 0)
    }
}

@Suite struct SynReceivedTests {
    @Test func synAckAnswersTheSYNWithMatchingOptions() throws {
        let h = try ConnectionHarness.passive(peerOptions: synOptions(mss: 1200, windowScale: 7, sack: true))
        #expect(h.state == .synReceived)
        let out = h.poll()
        #expect(out.count == 1)
        #expect(out.first?.flags == [.syn, .ack])
        #expect(out.first?.seq == SequenceNumber(localISS))
        #expect(out.first?.ack == SequenceNumber(peerISS + 1))
        #expect(out.first?.options.windowScale == 3)
        #expect(out.first?.options.sackPermitted == true)
        // The peer sent no timestamp, so the SYN-ACK carries none.
        #expect(out.first?.options.timestamp == nil)
        #expect(h.connection.peerMSS == 1200)
    }

    @Test func ackCompletesHandshake() throws {
        let h = try ConnectionHarness.passive()
        _ = h.poll()
        let out = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1))
        #expect(out.isEmpty)
        #expect(h.state == .established)
        let events = h.connection.takeEvents()
        #expect(events.contains(.connected))
        #expect(events.contains(.writable))
    }

    @Test func ackCarryingDataCompletesHandshakeAndDeliversData() throws {
        let h = try ConnectionHarness.passive()
        _ = h.poll()
        h.receive(seg(seq: peerISS + 1, ack: localISS + 1, flags: [.ack, .psh], payload: testBytes(10)))
        #expect(h.state == .established)
        #expect(h.readAll() == testBytes(10))
    }

    @Test func duplicateSynResendsSynAck() throws {
        let h = try ConnectionHarness.passive()
        let first = h.poll()
        h.advance(by: .milliseconds(300))
        let out = h.deliver(seg(seq: peerISS, flags: .syn, options: synOptions()))
        #expect(out.count == 1)
        #expect(out.first == first.first)
        #expect(h.state == .synReceived)
    }

    @Test func rstClosesPassiveOpenWithoutError() throws {
        let h = try ConnectionHarness.passive()
        _ = h.poll()
        let out = h.deliver(seg(seq: peerISS + 1, flags: .rst, window: 0))
        #expect(out.isEmpty)
        #expect(h.state == .closed)
        #expect(h.connection.error == nil)
        #expect(h.connection.takeEvents().contains(.closed))
    }

    @Test func synAckIsRetransmittedOnTimeout() throws {
        let h = try ConnectionHarness.passive()
        #expect(h.poll().count == 1)
        let out = h.fireNextDeadline()
        #expect(h.now == Instant(nanoseconds: 1_000_000_000))
        #expect(out.count == 1)
        #expect(out.first?.flags == [.syn, .ack])
        #expect(out.first?.seq == SequenceNumber(localISS))
        let again = h.fireNextDeadline()
        #expect(h.now == Instant(nanoseconds: 3_000_000_000))
        #expect(again.first?.flags == [.syn, .ack])
    }

    @Test func synAckRetriesRunOutWithTimeout() throws {
        var config = TCPConfiguration()
        config.maximumSYNRetransmissions = 2
        let h = try ConnectionHarness.passive(config)
        _ = h.poll()
        #expect(h.fireNextDeadline().count == 1)
        #expect(h.fireNextDeadline().count == 1)
        #expect(h.fireNextDeadline().isEmpty)
        #expect(h.state == .closed)
        #expect(h.connection.error == .timedOut)
    }

    @Test(arguments: [localISS, localISS + 2, localISS + 500])
    func unacceptableAckGetsReset(ack: UInt32) throws {
        let h = try ConnectionHarness.passive()
        _ = h.poll()
        let out = h.deliver(seg(seq: peerISS + 1, ack: ack))
        #expect(out.count == 1)
        #expect(out.first?.flags == .rst)
        #expect(out.first?.seq == SequenceNumber(ack))
        #expect(h.state == .synReceived)
    }

    @Test func handshakeBetweenTwoRealConnections() throws {
        let pair = try ConnectionPair()
        pair.pump()
        #expect(pair.a.state == .established)
        #expect(pair.b.state == .established)
        #expect(pair.a.windowScalingEnabled && pair.b.windowScalingEnabled)
        #expect(pair.a.timestampsEnabled && pair.b.timestampsEnabled)
        #expect(pair.a.sackEnabled && pair.b.sackEnabled)
        #expect(pair.log.map(\.segment.flags) == [.syn, [.syn, .ack], .ack])
    }

    @Test func lostSynAckIsRecoveredByRetransmission() throws {
        let pair = try ConnectionPair()
        pair.dropIndices = [1]
        pair.run(for: .seconds(2))
        #expect(pair.a.state == .established)
        #expect(pair.b.state == .established)
    }
}
