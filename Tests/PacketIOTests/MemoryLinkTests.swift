import PacketIO
import Testing
import Wire

@Suite struct MemoryLinkTests {
    @Test func framesCrossInOrderAfterFlush() throws {
        let link = MemoryLink()
        for i in 0..<3 {
            let buffer = try #require(link.a.nextTransmitBuffer())
            buffer[0] = UInt8(i)
            link.a.commitTransmit(length: 60 + i)
        }
        #expect(link.b.pending == 0)
        link.a.flush()
        var seen: [(UInt8, Int)] = []
        let n = link.b.receive(limit: 10) { frame in seen.append((frame[0], frame.count)) }
        #expect(n == 3)
        #expect(seen.map(\.0) == [0, 1, 2])
        #expect(seen.map(\.1) == [60, 61, 62])
        #expect(link.a.statistics.framesSent == 3 && link.b.statistics.framesReceived == 3)
    }

    @Test func fullReceiveRingDropsAndCounts() {
        let link = MemoryLink(capacity: 2)
        let frame: [UInt8] = Array(repeating: 1, count: 64)
        frame.withUnsafeBytes { bytes in
            for _ in 0..<3 { link.b.deliver(bytes) }
        }
        #expect(link.b.pending == 2)
        #expect(link.b.statistics.receiveDrops == 1)
    }
}
