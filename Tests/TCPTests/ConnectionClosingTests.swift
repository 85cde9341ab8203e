import TCP
import Testing
import Wire

@Suite struct ClosingTests {
    @Test func activeCloseGoesThroughFinWaitAndTimeWait() throws {
        let pair = try ConnectionPair()
        pair.pump()
        pair.a.close(now: pair.now)
        #expect(pair.a.state == .finWait1)
        let fin = pair.poll(.a)
        #expect(fin.count == 1)
        #expect(fin.first?.flags.contains(.fin) == true)
        pair.deliver(fin[0], to: .b)
        let ack = pair.poll(.b)
        #expect(ack.count == 1)
        #expect(ack.first?.ack == fin[0].end)
        pair.deliver(ack[0], to: .a)
        #expect(pair.a.state == .finWait2)

        pair.b.close(now: pair.now)
        let finB = pair.poll(.b)
        #expect(finB.first?.flags.contains(.fin) == true)
        pair.deliver(finB[0], to: .a)
        #expect(pair.a.state == .timeWait)
        let lastAck = pair.poll(.a)
        #expect(lastAck.count == 1)
        #expect(lastAck.first?.ack == finB[0].end)
        pair.deliver(lastAck[0], to: .b)
        #expect(pair.b.state == .closed)

        let entered = pair.now
        #expect(pair.a.nextDeadline == entered + .seconds(60))
        pair.now = entered + .seconds(59)
        pair.pump()
        #expect(pair.a.state == .timeWait)
        pair.now = entered + .seconds(60)
        pair.pump()
        #expect(pair.a.state == .closed)
        #expect(pair.a.error == nil)
        #expect(pair.a.takeEvents().contains(.closed))
    }

    @Test func passiveCloseGoesThroughCloseWaitAndLastAck() throws {
        let pair = try ConnectionPair()
        pair.pump()
        _ = pair.b.takeEvents()
        // shutdown, not close: a closed socket answers the data below with RST.
        pair.a.shutdownWrite(now: pair.now)
        pair.pump()
        #expect(pair.b.state == .closeWait)
        #expect(pair.b.takeEvents().contains(.peerClosed))
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(buffer.withUnsafeMutableBytes { pair.b.read(into: $0, now: pair.now) } == .endOfStream)
        // CLOSE-WAIT may still send.
        #expect(pair.b.write(testBytes(10), now: pair.now) == .bytes(10))
        pair.b.close(now: pair.now)
        #expect(pair.b.state == .lastAck)
        let fin = pair.poll(.b)
        #expect(fin.count == 1)
        #expect(fin.first?.payload == testBytes(10))
        #expect(fin.first?.flags.contains(.fin) == true)
        pair.log.append((pair.log.count, .b, fin[0]))
        pair.deliver(fin[0], to: .a)
        pair.pump()
        #expect(pair.b.state == .closed)
        #expect(pair.b.error == nil)
        #expect(pair.a.state == .timeWait)
    }

    @Test func simultaneousCloseGoesThroughClosing() throws {
        let pair = try ConnectionPair()
        pair.pump()
        pair.a.close(now: pair.now)
        pair.b.close(now: pair.now)
        let finA = pair.poll(.a)
        let finB = pair.poll(.b)
        #expect(finA.first?.flags.contains(.fin) == true)
        #expect(finB.first?.flags.contains(.fin) == true)
        pair.deliver(finA[0], to: .b)
        pair.deliver(finB[0], to: .a)
        #expect(pair.a.state == .closing)
        #expect(pair.b.state == .closing)
        let ackA = pair.poll(.a)
        let ackB = pair.poll(.b)
        #expect(ackA.count == 1 && ackB.count == 1)
        pair.deliver(ackA[0], to: .b)
        pair.deliver(ackB[0], to: .a)
        #expect(pair.a.state == .timeWait)
        #expect(pair.b.state == .timeWait)
        pair.run(for: .seconds(61))
        #expect(pair.a.state == .closed)
        #expect(pair.b.state == .closed)
    }

    @Test func halfCloseKeepsReceivingUntilPeerFin() throws {
        let pair = try ConnectionPair()
        pair.pump()
        pair.a.shutdownWrite(now: pair.now)
        pair.pump()
        #expect(pair.a.state == .finWait2)
        #expect(pair.b.state == .closeWait)
        #expect(pair.a.write(testBytes(1), now: pair.now) == .failed(.brokenPipe))

        let data = testBytes(100_000, seed: 1)
        #expect(pair.transfer(data, from: .b) == data)
        #expect(pair.a.state == .finWait2)
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(buffer.withUnsafeMutableBytes { pair.a.read(into: $0, now: pair.now) } == .wouldBlock)

        #expect(pair.b.write(testBytes(5), now: pair.now) == .bytes(5))
        pair.b.close(now: pair.now)
        pair.pump()
        #expect(pair.a.state == .timeWait)
        #expect(pair.b.state == .closed)
        #expect(pair.a.readAll(now: pair.now) == testBytes(5))
        #expect(buffer.withUnsafeMutableBytes { pair.a.read(into: $0, now: pair.now) } == .endOfStream)
    }

    @Test func finRetransmittedInTimeWaitIsReackedAndRestartsTimer() throws {
        let h = try ConnectionHarness.established()
        h.connection.close(now: h.now)
        let fin = h.poll()
        #expect(fin.count == 1)
        #expect(fin.first?.flags == [.ack, .fin])
        #expect(fin.first?.seq == SequenceNumber(localISS + 1))
        let peerFin = seg(seq: peerISS + 1, ack: localISS + 2, flags: [.ack, .fin])
        let ack = h.deliver(peerFin)
        #expect(h.state == .timeWait)
        #expect(ack.count == 1 && ack.first?.ack == SequenceNumber(peerISS + 2))

        h.advance(by: .seconds(30))
        let again = h.deliver(peerFin)
        #expect(again.count == 1)
        #expect(again.first?.isPureAck == true)
        #expect(again.first?.ack == SequenceNumber(peerISS + 2))
        #expect(h.connection.nextDeadline == h.now + .seconds(60))
        h.advance(by: .seconds(59))
        #expect(h.poll().isEmpty)
        #expect(h.state == .timeWait)
        _ = h.fireNextDeadline()
        #expect(h.state == .closed)
    }

    @Test func zeroTimeWaitStillAcknowledgesThePeersFin() throws {
        // mTCP's tcp_timewait = 0: the connection ends at once, but not before the last ACK,
        // or the peer retransmits its FIN into a flow that is gone and gets a reset.
        var config = TCPConfiguration()
        config.timeWaitDuration = .zero
        let h = try ConnectionHarness.established(config)
        h.connection.close(now: h.now)
        let fin = h.poll()
        #expect(fin.first?.flags == [.ack, .fin])
        let ack = h.deliver(seg(seq: peerISS + 1, ack: localISS + 2, flags: [.ack, .fin]))
        #expect(ack.count == 1 && ack.first?.isPureAck == true)
        #expect(ack.first?.ack == SequenceNumber(peerISS + 2))
        #expect(h.state == .closed)
    }

    @Test func writeAfterShutdownIsBrokenPipe() throws {
        let h = try ConnectionHarness.established()
        h.connection.shutdownWrite(now: h.now)
        #expect(h.write(testBytes(3)) == .failed(.brokenPipe))
        #expect(h.connection.writableBytes == 0)
    }

    @Test func writeBeforeFinIsSentBeforeFin() throws {
        let h = try ConnectionHarness.established()
        h.write(testBytes(300))
        h.connection.shutdownWrite(now: h.now)
        let out = h.poll()
        #expect(out.count == 1)
        #expect(out.first?.payload == testBytes(300))
        #expect(out.first?.flags.contains(.fin) == true)
        _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 302))
        #expect(h.state == .finWait2)
    }

    @Test func closeWithUnreadDataSendsReset() throws {
        let h = try ConnectionHarness.established()
        h.receive(seg(seq: peerISS + 1, ack: localISS + 1, payload: testBytes(10)))
        h.connection.close(now: h.now)
        let out = h.poll()
        #expect(out.count == 1)
        #expect(out.first?.flags == [.rst, .ack])
        #expect(out.first?.seq == SequenceNumber(localISS + 1))
        #expect(out.first?.ack == SequenceNumber(peerISS + 11))
        #expect(h.state == .closed)
    }

    @Test func dataArrivingAfterCloseSendsReset() throws {
        let h = try ConnectionHarness.established()
        h.connection.close(now: h.now)
        _ = h.poll()  // FIN
        let out = h.deliver(seg(seq: peerISS + 1, ack: localISS + 2, payload: testBytes(10)))
        #expect(out.first?.flags.contains(.rst) == true)
        #expect(h.state == .closed)
    }

    @Test func abortSendsReset() throws {
        let h = try ConnectionHarness.established()
        h.write(testBytes(100))
        _ = h.poll()
        h.connection.abort(now: h.now)
        let out = h.poll()
        #expect(out.count == 1)
        #expect(out.first?.flags == [.rst, .ack])
        #expect(out.first?.seq == SequenceNumber(localISS + 101))
        #expect(h.state == .closed)
        #expect(h.poll().isEmpty)
    }

    @Test func resetFromAbortClosesThePeerWithConnectionReset() throws {
        let pair = try ConnectionPair()
        pair.pump()
        pair.a.abort(now: pair.now)
        pair.pump()
        #expect(pair.a.state == .closed)
        #expect(pair.b.state == .closed)
        #expect(pair.b.error == .connectionReset)
    }

    @Test func orphanedFinWait2TimesOut() throws {
        var config = TCPConfiguration()
        config.finWait2Timeout = .seconds(5)
        let h = try ConnectionHarness.established(config)
        h.connection.close(now: h.now)
        _ = h.poll()
        _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 2))
        #expect(h.state == .finWait2)
        #expect(h.connection.nextDeadline == h.now + .seconds(5))
        _ = h.fireNextDeadline()
        #expect(h.state == .closed)
    }

    @Test func lostFinIsRetransmitted() throws {
        let h = try ConnectionHarness.established()
        h.connection.close(now: h.now)
        let fin = h.poll()
        let again = h.fireNextDeadline()
        #expect(again.count == 1)
        #expect(again.first == fin.first)
        _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 2, flags: [.ack, .fin]))
        #expect(h.state == .timeWait)
    }
}
