import TCP
import Testing

/// A small seeded PRNG (SplitMix64) for deterministic randomized tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    /// Uniform in `0..<bound` (bound > 0).
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

extension ReceiveBuffer {
    /// Test helper: writes `bytes` at `offset`.
    mutating func write(offset: Int, _ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBytes { write(offset: offset, bytes: $0) }
    }
    /// Test helper: reads up to `n` bytes.
    mutating func read(_ n: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        let got = out.withUnsafeMutableBytes { read(into: $0) }
        return Array(out[..<got])
    }
    var ranges: [Range<Int>] { (0..<outOfOrderRangeCount).map { outOfOrderRange($0) } }
}

@Suite struct ReceiveBufferTests {
    @Test func peekCopiesAcrossTheWrapWithoutConsuming() {
        var buffer = ReceiveBuffer(capacity: 8)
        defer { buffer.deallocate() }
        #expect(buffer.write(offset: 0, [1, 2, 3, 4, 5, 6]) == 6)
        #expect(buffer.read(5) == [1, 2, 3, 4, 5])
        #expect(buffer.write(offset: 0, [7, 8, 9, 10]) == 4)
        #expect(buffer.peekReadable().1.count > 0)
        var out = [UInt8](repeating: 0, count: 4)
        #expect(out.withUnsafeMutableBytes { buffer.peek(into: $0) } == 4)
        #expect(out == [6, 7, 8, 9])
        #expect(buffer.readable == 5)
        #expect(buffer.read(8) == [6, 7, 8, 9, 10])
        #expect(out.withUnsafeMutableBytes { buffer.peek(into: $0) } == 0)
    }

    @Test func inOrderWriteAndRead() {
        var buffer = ReceiveBuffer(capacity: 16)
        defer { buffer.deallocate() }
        #expect(buffer.freeWindow == 16)
        #expect(buffer.write(offset: 0, [1, 2, 3, 4]) == 4)
        #expect(buffer.readable == 4)
        #expect(buffer.freeWindow == 12)
        #expect(!buffer.hasOutOfOrderData)
        #expect(buffer.read(3) == [1, 2, 3])
        #expect(buffer.readable == 1)
        #expect(buffer.freeWindow == 15)
        #expect(buffer.read(10) == [4])
        #expect(buffer.read(10) == [])
    }

    @Test func outOfOrderDataMergesWhenHoleFills() {
        var buffer = ReceiveBuffer(capacity: 64)
        defer { buffer.deallocate() }
        #expect(buffer.write(offset: 10, Array(10..<20)) == 0)
        #expect(buffer.write(offset: 30, Array(30..<40)) == 0)
        #expect(buffer.readable == 0)
        #expect(buffer.hasOutOfOrderData)
        #expect(buffer.ranges == [10..<20, 30..<40])
        #expect(buffer.outOfOrderRange(containing: 15) == 10..<20)
        #expect(buffer.outOfOrderRange(containing: 20) == nil)
        #expect(buffer.outOfOrderRange(containing: 39) == 30..<40)
        #expect(buffer.outOfOrderRange(containing: -1) == nil)
        // Filling the first hole advances rcv.nxt through the first range.
        #expect(buffer.write(offset: 0, Array(0..<10)) == 20)
        #expect(buffer.readable == 20)
        #expect(buffer.ranges == [10..<20])
        #expect(buffer.freeWindow == 44)
        #expect(buffer.write(offset: 0, Array(20..<30)) == 20)
        #expect(!buffer.hasOutOfOrderData)
        #expect(buffer.read(100) == Array(0..<40))
    }

    @Test func overlappingRangesCoalesce() {
        var buffer = ReceiveBuffer(capacity: 64)
        defer { buffer.deallocate() }
        _ = buffer.write(offset: 2, [2, 3])
        _ = buffer.write(offset: 6, [6, 7])
        _ = buffer.write(offset: 12, [12])
        #expect(buffer.ranges == [2..<4, 6..<8, 12..<13])
        _ = buffer.write(offset: 3, [3, 4, 5, 6, 7])
        #expect(buffer.ranges == [2..<8, 12..<13])
        // Adjacent (touching) ranges merge too.
        _ = buffer.write(offset: 8, [8])
        #expect(buffer.ranges == [2..<9, 12..<13])
        _ = buffer.write(offset: 11, [11])
        #expect(buffer.ranges == [2..<9, 11..<13])
        // Exact duplicates change nothing.
        _ = buffer.write(offset: 2, [2, 3])
        #expect(buffer.ranges == [2..<9, 11..<13])
        // A segment covering everything swallows all ranges.
        _ = buffer.write(offset: 1, Array(1..<14))
        #expect(buffer.ranges == [1..<14])
        #expect(buffer.write(offset: 0, [0, 1]) == 14)
        #expect(buffer.read(100) == Array(0..<14))
    }

    @Test func trimsToWindow() {
        var buffer = ReceiveBuffer(capacity: 16)
        defer { buffer.deallocate() }
        #expect(buffer.write(offset: 10, Array(10..<20)) == 0)
        #expect(buffer.ranges == [10..<16])
        #expect(buffer.write(offset: 16, [16]) == 0)
        #expect(buffer.write(offset: 40, [40]) == 0)
        #expect(buffer.ranges == [10..<16])
        #expect(buffer.droppedOutOfOrderSegments == 0)
        #expect(buffer.write(offset: 0, Array(0..<20)) == 16)
        #expect(buffer.freeWindow == 0)
        #expect(buffer.write(offset: 0, [16]) == 0)
        #expect(buffer.read(100) == Array(0..<16))
    }

    @Test func oldDataIsTrimmedAtTheFront() {
        var buffer = ReceiveBuffer(capacity: 16)
        defer { buffer.deallocate() }
        _ = buffer.write(offset: 0, [0, 1, 2, 3])
        // Relative to rcv.nxt (4): bytes 2 and 3 are old, 4 and 5 are new.
        #expect(buffer.write(offset: -2, [2, 3, 4, 5]) == 2)
        #expect(buffer.write(offset: -6, [0, 1, 2, 3, 4, 5]) == 0)
        #expect(buffer.write(offset: .min, [9]) == 0)
        #expect(buffer.write(offset: .max, [9]) == 0)
        #expect(buffer.read(100) == [0, 1, 2, 3, 4, 5])
    }

    @Test func fullRangeTableDropsDisjointSegments() {
        var buffer = ReceiveBuffer(capacity: 64, maximumOutOfOrderRanges: 2)
        defer { buffer.deallocate() }
        _ = buffer.write(offset: 2, [2])
        _ = buffer.write(offset: 5, [5])
        #expect(buffer.write(offset: 8, [8]) == 0)
        #expect(buffer.droppedOutOfOrderSegments == 1)
        #expect(buffer.ranges == [2..<3, 5..<6])
        // Touching an existing range is still accepted.
        _ = buffer.write(offset: 3, [3])
        #expect(buffer.droppedOutOfOrderSegments == 1)
        #expect(buffer.ranges == [2..<4, 5..<6])
        // In-order data is always accepted.
        #expect(buffer.write(offset: 0, [0, 1]) == 4)
        #expect(buffer.ranges == [1..<2])
        _ = buffer.write(offset: 4, [8])
        #expect(buffer.ranges == [1..<2, 4..<5])
        #expect(buffer.read(10) == [0, 1, 2, 3])
    }

    @Test func wrapsAroundWithOutOfOrderData() {
        var buffer = ReceiveBuffer(capacity: 10)
        defer { buffer.deallocate() }
        _ = buffer.write(offset: 0, Array(0..<7))
        #expect(buffer.read(6) == Array(0..<6))
        // Head is at ring index 6; rcv.nxt at index 7. Out-of-order bytes land across the end.
        #expect(buffer.write(offset: 3, [10, 11, 12, 13, 14, 15]) == 0)
        #expect(buffer.ranges == [3..<9])
        #expect(buffer.freeWindow == 9)
        #expect(buffer.write(offset: 0, [7, 8, 9]) == 9)
        #expect(buffer.readable == 10)
        #expect(buffer.freeWindow == 0)
        let view = buffer.peekReadable()
        #expect(view.0.count == 4)
        #expect(view.1.count == 6)
        #expect(joined(view) == [6, 7, 8, 9, 10, 11, 12, 13, 14, 15])
        buffer.consume(5)
        #expect(joined(buffer.peekReadable()) == [11, 12, 13, 14, 15])
        #expect(buffer.read(3) == [11, 12, 13])
        buffer.consume(100)
        #expect(buffer.readable == 0)
        #expect(buffer.freeWindow == 10)
    }

    @Test func resizeOnlyWhileEmpty() {
        var buffer = ReceiveBuffer(capacity: 8)
        defer { buffer.deallocate() }
        _ = buffer.write(offset: 2, [2])
        #expect(buffer.resize(capacity: 32) == false)
        _ = buffer.write(offset: 0, [0, 1])
        #expect(buffer.resize(capacity: 32) == false)
        _ = buffer.read(10)
        #expect(buffer.resize(capacity: 32) == true)
        #expect(buffer.capacity == 32)
        #expect(buffer.freeWindow == 32)
        #expect(buffer.write(offset: 0, Array(0..<40)) == 32)
    }

    /// Reassembles a 1 MiB stream cut into segments delivered in random order, with
    /// duplicates, overlapping resegmentation and window limits, reading in random chunks.
    @Test(arguments: [(UInt64(1), 32), (UInt64(2), 4), (UInt64(3), 1)])
    func randomizedReassembly(seed: UInt64, maximumRanges: Int) {
        var rng = SplitMix64(seed: seed)
        let total = 1 << 20
        let input = (0..<total).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        // Segment boundaries: consecutive cuts of 1...3000 bytes.
        var cuts = [0]
        while cuts.last! < total { cuts.append(min(total, cuts.last! + 1 + rng.below(3_000))) }

        var buffer = ReceiveBuffer(capacity: 50_000, maximumOutOfOrderRanges: maximumRanges)
        defer { buffer.deallocate() }
        var output: [UInt8] = []
        output.reserveCapacity(total)
        var received = 0  // absolute rcv.nxt as seen through the returned advances
        var firstPending = 0  // first segment not wholly below rcv.nxt
        var have = [Bool](repeating: false, count: total)  // model of what the buffer holds
        var sawWrap = false
        var mostRanges = 0
        var steps = 0
        var chunk = [UInt8](repeating: 0, count: 20_000)

        while output.count < total {
            steps += 1
            #expect(steps < 2_000_000)
            if steps >= 2_000_000 { break }
            while firstPending + 1 < cuts.count && cuts[firstPending + 1] <= received { firstPending += 1 }
            if firstPending + 1 < cuts.count {
                // Pick one of the next 24 segments; sometimes merge with its neighbour or cut a
                // piece out of the pair, so boundaries overlap earlier deliveries.
                let lastSegment = cuts.count - 2
                let i = min(lastSegment, firstPending + rng.below(24))
                var start = cuts[i]
                var end = cuts[min(lastSegment, i + (rng.below(4) == 0 ? 1 : 0)) + 1]
                if rng.below(4) == 0 {
                    let a = start + rng.below(end - start)
                    let b = a + 1 + rng.below(end - a)
                    start = a
                    end = b
                }
                let window = buffer.freeWindow
                let droppedBefore = buffer.droppedOutOfOrderSegments
                let advance = input[start..<end].withUnsafeBytes {
                    buffer.write(offset: start - received, bytes: $0)
                }
                let newStart = max(start, received)
                let newEnd = min(end, received + window)
                if newStart < newEnd {
                    let dropped = buffer.droppedOutOfOrderSegments != droppedBefore
                    #expect(!dropped || newStart > received)
                    if !dropped { for k in newStart..<newEnd { have[k] = true } }
                }
                var expectedNext = received
                while expectedNext < total && have[expectedNext] { expectedNext += 1 }
                #expect(advance == expectedNext - received)
                received += advance
                mostRanges = max(mostRanges, buffer.outOfOrderRangeCount)
            }
            if rng.below(3) == 0 {
                if buffer.peekReadable().1.count > 0 { sawWrap = true }
                if rng.below(2) == 0 {
                    let n = 1 + rng.below(chunk.count)
                    let got = chunk.withUnsafeMutableBytes {
                        buffer.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<n]))
                    }
                    output += chunk[..<got]
                } else {
                    let view = buffer.peekReadable()
                    let n = rng.below(view.0.count + view.1.count + 1)
                    output += joined(view).prefix(n)
                    buffer.consume(n)
                }
                #expect(buffer.readable == received - output.count)
            }
            if steps % 64 == 0 { checkRanges(buffer, have: have, received: received) }
        }
        #expect(output == input)
        #expect(sawWrap)
        #expect(mostRanges >= min(maximumRanges, 8))
        #expect(steps > 1_000)
        if maximumRanges == 1 { #expect(buffer.droppedOutOfOrderSegments > 0) }
    }

    /// The buffer's range table must equal the maximal runs of held bytes beyond rcv.nxt.
    func checkRanges(_ buffer: ReceiveBuffer, have: [Bool], received: Int) {
        var expected: [Range<Int>] = []
        var k = received
        let limit = min(have.count, received + buffer.freeWindow)
        while k < limit {
            if have[k] {
                let start = k
                while k < limit && have[k] { k += 1 }
                expected.append((start - received)..<(k - received))
            } else {
                k += 1
            }
        }
        #expect(buffer.ranges == expected)
        #expect(buffer.hasOutOfOrderData == !expected.isEmpty)
    }
}
