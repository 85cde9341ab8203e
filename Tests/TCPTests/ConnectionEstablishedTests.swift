import TCP
import Testing
import Wire

@Suite struct EstablishedTests {
    @Test func dataFlowsBothWays() throws {
        let h = try ConnectionHarness.established()
        #expect(h.write(testBytes(100)) == .bytes(100))
        let out = h.poll()
        #expect(out.count == 1)
        #expect(out.first?.seq == SequenceNumber(localISS + 1))
        #expect(out.first?.payload == testBytes(100))
        #expect(out.first?.flags == [.ack, .psh])
        #expect(h.connection.unacknowledgedBytes == 100)

        h.receive(seg(seq: peerISS + 1, ack: localISS + 101, flags: [.ack, .psh], payload: testBytes(50, seed: 9)))
        #expect(h.connection.unacknowledgedBytes == 0)
        #expect(h.connection.takeEvents().contains(.readable))
        #expect(h.connection.readableBytes == 50)
        #expect(h.readAll() == testBytes(50, seed: 9))
        #expect(h.read(max: 10).0 == .wouldBlock)
        #expect(h.connection.statistics.bytesSent == 100)
        #expect(h.connection.statistics.bytesReceived == 50)
    }

    @Test func largeTransferBetweenRealConnections() throws {
        let pair = try ConnectionPair()
        pair.pump()
        let data = testBytes(1_000_000, seed: 3)
        #expect(pair.transfer(data, from: .a) == data)
        let back = testBytes(300_000, seed: 4)
        #expect(pair.transfer(back, from: .b) == back)
        #expect(pair.a.statistics.retransmittedSegments == 0)
    }

    @Test func segmentBeyondWindowIsAckedAndDropped() throws {
        let h = try ConnectionHarness.established()
        let out = h.deliver(seg(seq: peerISS + 1 + 70000, ack: localISS + 1, payload: testBytes(10)))
        #expect(out.count == 1)
        #expect(out.first?.isPureAck == true)
        #expect(out.first?.ack == SequenceNumber(peerISS + 1))
        #expect(h.connection.readableBytes == 0)
        #expect(h.connection.statistics.unacceptableSegments == 1)
    }

    @Test func oldDuplicateSegmentIsAckedAndDropped() throws {
        let h = try ConnectionHarness.established()
        h.receive(seg(seq: peerISS + 1, ack: localISS + 1, payload: testBytes(100)))
        #expect(h.readAll() == testBytes(100))
        _ = h.fireNextDeadline()
        let out = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1, payload: testBytes(100)))
        #expect(out.count == 1)
        #expect(out.first?.ack == SequenceNumber(peerISS + 101))
        #expect(h.connection.readableBytes == 0)
    }

    @Test func overlappingSegmentKeepsOnlyNewBytes() throws {
        let h = try ConnectionHarness.established()
        let data = testBytes(200)
        h.receive(seg(seq: peerISS + 1, ack: localISS + 1, payload: Array(data[0..<100])))
        h.receive(seg(seq: peerISS + 51, ack: localISS + 1, payload: Array(data[50..<200])))
        #expect(h.readAll() == data)
    }

    @Test func outOfWindowRstIsIgnoredSilently() throws {
        let h = try ConnectionHarness.established()
        let out = h.deliver(seg(seq: peerISS + 1 + 100_000, flags: .rst, window: 0))
        #expect(out.isEmpty)
        #expect(h.state == .established)
    }

    @Test func inWindowRstNotAtRcvNxtGetsChallengeAck() throws {
        let h = try ConnectionHarness.established()
        let out = h.deliver(seg(seq: peerISS + 1 + 1000, flags: .rst, window: 0))
        #expect(h.state == .established)
        #expect(out.count == 1)
        #expect(out.first?.isPureAck == true)
        #expect(out.first?.seq == SequenceNumber(localISS + 1))
        #expect(out.first?.ack == SequenceNumber(peerISS + 1))
        #expect(h.connection.statistics.challengeAcks == 1)
    }

    @Test func rstAtRcvNxtResetsConnection() throws {
        let h = try ConnectionHarness.established()
        let out = h.deliver(seg(seq: peerISS + 1, flags: .rst, window: 0))
        #expect(out.isEmpty)
        #expect(h.state == .closed)
        #expect(h.connection.error == .connectionReset)
        let events = h.connection.takeEvents()
        #expect(events.contains(.failed) && events.contains(.closed))
        #expect(h.read(max: 10).0 == .failed(.connectionReset))
        #expect(h.write(testBytes(1)) == .failed(.connectionReset))
    }

    @Test func synInEstablishedGetsChallengeAck() throws {
        let h = try ConnectionHarness.established()
        for seq in [peerISS + 1, peerISS + 300, peerISS] {
            let out = h.deliver(seg(seq: seq, flags: .syn, options: synOptions()))
            #expect(h.state == .established)
            #expect(out.count == 1)
            #expect(out.first?.isPureAck == true)
            #expect(out.first?.ack == SequenceNumber(peerISS + 1))
        }
    }

    @Test func ackForUnsentDataIsAnsweredAndSegmentDropped() throws {
        let h = try ConnectionHarness.established()
        h.write(testBytes(10))
        _ = h.poll()
        let out = h.deliver(seg(seq: peerISS + 1, ack: localISS + 5000, payload: testBytes(20)))
        #expect(out.count == 1)
        #expect(out.first?.isPureAck == true)
        #expect(out.first?.ack == SequenceNumber(peerISS + 1))
        #expect(h.connection.readableBytes == 0)
        #expect(h.connection.unacknowledgedBytes == 10)
        #expect(h.state == .established)
    }

    @Test func challengeAcksAreRateLimited() throws {
        var config = TCPConfiguration()
        config.challengeAckLimit = 3
        let h = try ConnectionHarness.established(config)
        var acks = 0
        for i in 0..<6 {
            acks += h.deliver(seg(seq: peerISS + 100 + UInt32(i), flags: .rst, window: 0)).count
        }
        #expect(acks == 3)
        #expect(h.connection.statistics.challengeAcks == 3)
        h.advance(by: .seconds(1))
        #expect(h.deliver(seg(seq: peerISS + 100, flags: .rst, window: 0)).count == 1)
        #expect(h.state == .established)
    }

    @Test func writeBlocksWhenSendBufferIsFull() throws {
        var config = TCPConfiguration()
        config.sendBufferSize = 4000
        let h = try ConnectionHarness.established(config)
        #expect(h.write(testBytes(5000)) == .bytes(4000))
        #expect(h.write(testBytes(10)) == .wouldBlock)
        #expect(h.connection.writableBytes == 0)
        _ = h.poll()
        _ = h.connection.takeEvents()
        _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1001))
        #expect(h.connection.takeEvents().contains(.writable))
        #expect(h.connection.writableBytes == 1000)
    }
}
