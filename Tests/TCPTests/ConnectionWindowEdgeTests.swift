import TCP
import Testing
import Wire

/// Regressions found against the Linux kernel over a veth: a window rounded up to the scale
/// unit promised bytes the buffer could not hold, and the peer's ACKs sent at the window's
/// right edge were dropped; together they deadlocked a bulk transfer.
@Suite struct WindowEdgeTests {
    @Test func everyByteInsideTheAdvertisedWindowIsStored() throws {
        let h = try ConnectionHarness.established(peerOptions: synOptions(windowScale: 2))
        try #require(h.connection.windowScalingEnabled)
        let base = SequenceNumber(peerISS + 1)
        var sent = 0
        var edge = 1
        // The application never reads: the peer fills exactly the window we keep offering,
        // in odd-sized segments so the edge falls between scale units.
        for _ in 0..<2000 {
            let size = min(997, edge - sent)
            if size <= 0 { break }
            var out = h.deliver(
                seg(seq: (base + sent).rawValue, ack: localISS + 1, payload: testBytes(size, seed: sent)))
            if out.isEmpty { out = h.fireNextDeadline() }
            sent += size
            let ack = try #require(out.last)
            #expect(ack.ack == base + sent, "bytes inside the offered window were dropped")
            edge = (ack.ack - base) + (Int(ack.window) << 3)
        }
        #expect(sent == edge)
        #expect(h.connection.readableBytes == sent)
        #expect(h.connection.statistics.outOfWindowBytes == 0)
        // Beyond the edge nothing is taken.
        _ = h.deliver(seg(seq: (base + sent).rawValue, ack: localISS + 1, payload: testBytes(100)))
        #expect(h.connection.readableBytes == sent)
        #expect(h.connection.statistics.outOfWindowBytes == 100)
    }

    @Test func pureAckWithSequenceAtTheRightEdgeIsProcessed() throws {
        let h = try ConnectionHarness.established(peerOptions: synOptions(windowScale: 2))
        _ = h.write(testBytes(1000))
        let data = try #require(h.poll().first)
        let edge = SequenceNumber(peerISS + 1) + (Int(data.window) << 3)
        // A peer whose window probe used up our window sends its ACKs from the edge.
        h.receive(seg(seq: edge.rawValue, ack: localISS + 1 + 1000))
        #expect(h.connection.sendUnacknowledged == SequenceNumber(localISS + 1 + 1000))
    }
}
