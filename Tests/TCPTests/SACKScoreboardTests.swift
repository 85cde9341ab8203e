import TCP
import Testing
import Wire

/// A SACK block list from (left, right) raw sequence numbers.
func sackBlocks(_ pairs: (UInt32, UInt32)...) -> SACKBlockList {
    var list = SACKBlockList()
    for (left, right) in pairs { list.append(SACKBlock(left: left, right: right)) }
    return list
}

/// Small deterministic generator for property tests.
struct TestRandom {
    var state: UInt64
    mutating func next(_ bound: Int) -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(bound))
    }
}

@Suite struct SACKScoreboardTests {
    let mss = 100

    /// The scoreboard's ranges as raw (left, right) pairs.
    func ranges(_ board: SACKScoreboard) -> [[UInt32]] {
        (0..<board.count).map { [board.range(at: $0).left.rawValue, board.range(at: $0).right.rawValue] }
    }

    @Test func startsEmpty() {
        let board = SACKScoreboard()
        #expect(board.isEmpty)
        #expect(board.sackedBytes == 0)
        #expect(board.highestSacked == nil)
        #expect(!board.isSacked(SequenceNumber(5)))
    }

    @Test func mergesOverlappingAndAdjacentBlocks() {
        var board = SACKScoreboard()
        let una = SequenceNumber(1000)
        let nxt = SequenceNumber(2000)
        let changed1 = board.update(cumulativeAck: una, blocks: sackBlocks((1300, 1400), (1100, 1200)), sendNext: nxt)
        #expect(changed1)
        #expect(ranges(board) == [[1100, 1200], [1300, 1400]])
        #expect(board.sackedBytes == 200)
        // Adjacent on both sides: one range.
        let changed2 = board.update(cumulativeAck: una, blocks: sackBlocks((1200, 1300)), sendNext: nxt)
        #expect(changed2)
        #expect(ranges(board) == [[1100, 1400]])
        #expect(board.sackedBytes == 300)
        // Already known: nothing new.
        let changed3 = board.update(cumulativeAck: una, blocks: sackBlocks((1150, 1350)), sendNext: nxt)
        #expect(!changed3)
        #expect(board.sackedBytes == 300)
        // Overlapping several ranges and extending both ends.
        board.update(cumulativeAck: una, blocks: sackBlocks((1500, 1600), (1700, 1800)), sendNext: nxt)
        let changed4 = board.update(cumulativeAck: una, blocks: sackBlocks((1050, 1750)), sendNext: nxt)
        #expect(changed4)
        #expect(ranges(board) == [[1050, 1800]])
        #expect(board.sackedBytes == 750)
        #expect(board.highestSacked == SequenceNumber(1800))
        #expect(board.isSacked(SequenceNumber(1050)))
        #expect(board.isSacked(SequenceNumber(1799)))
        #expect(!board.isSacked(SequenceNumber(1800)))
        #expect(!board.isSacked(SequenceNumber(1049)))
    }

    @Test func cumulativeAckTrimsAndDiscards() {
        var board = SACKScoreboard()
        let nxt = SequenceNumber(2000)
        board.update(
            cumulativeAck: SequenceNumber(1000), blocks: sackBlocks((1100, 1200), (1300, 1400), (1500, 1600)),
            sendNext: nxt)
        // The ACK covers the first range and half of the second.
        let changed5 = board.update(cumulativeAck: SequenceNumber(1350), blocks: SACKBlockList(), sendNext: nxt)
        #expect(!changed5)
        #expect(ranges(board) == [[1350, 1400], [1500, 1600]])
        #expect(board.sackedBytes == 150)
        board.update(cumulativeAck: SequenceNumber(1600), blocks: SACKBlockList(), sendNext: nxt)
        #expect(board.isEmpty)
        #expect(board.sackedBytes == 0)
        board.update(cumulativeAck: SequenceNumber(1600), blocks: sackBlocks((1700, 1800)), sendNext: nxt)
        board.reset()
        #expect(board.isEmpty && board.sackedBytes == 0 && board.highestSacked == nil)
    }

    @Test func invalidBlocksAreIgnored() {
        var board = SACKScoreboard()
        let una = SequenceNumber(1000)
        let nxt = SequenceNumber(2000)
        let invalid = sackBlocks(
            (1200, 1200),  // empty
            (1300, 1250),  // reversed
            (900, 1000),  // D-SACK below snd.una
            (1900, 2100)  // beyond snd.nxt
        )
        let changed6 = board.update(cumulativeAck: una, blocks: invalid, sendNext: nxt)
        #expect(!changed6)
        #expect(board.isEmpty)
        let changed7 = board.update(cumulativeAck: una, blocks: sackBlocks((950, 1100)), sendNext: nxt)
        #expect(!changed7)
        // A D-SACK first block followed by a valid block: only the valid one counts.
        let changed8 = board.update(cumulativeAck: una, blocks: sackBlocks((800, 900), (1900, 2000)), sendNext: nxt)
        #expect(changed8)
        #expect(ranges(board) == [[1900, 2000]])
        // Wildly out-of-window numbers do not crash and are ignored.
        let changed9 = board.update(cumulativeAck: una, blocks: sackBlocks((0x8000_0000, 0x8000_0100)), sendNext: nxt)
        #expect(!changed9)
        #expect(board.sackedBytes == 100)
    }

    @Test func isLostThresholds() {
        var board = SACKScoreboard()
        let una = SequenceNumber(1000)
        let nxt = SequenceNumber(5000)
        // 200 bytes SACKed above 1000 = exactly (3 - 1) * MSS: not more, so not lost.
        board.update(cumulativeAck: una, blocks: sackBlocks((1100, 1300)), sendNext: nxt)
        #expect(!board.isLost(una, mss: mss))
        // One more byte makes it lost.
        board.update(cumulativeAck: una, blocks: sackBlocks((1300, 1301)), sendNext: nxt)
        #expect(board.isLost(una, mss: mss))
        #expect(!board.isLost(una, mss: mss, dupThreshold: 4))
        // Bytes inside a range above seq count only from seq + 1.
        #expect(!board.isLost(SequenceNumber(1150), mss: mss))

        // Three small discontiguous ranges: lost by count, though only 30 bytes.
        board.reset()
        board.update(cumulativeAck: una, blocks: sackBlocks((1100, 1110), (1200, 1210), (1300, 1310)), sendNext: nxt)
        #expect(board.isLost(una, mss: mss))
        #expect(!board.isLost(SequenceNumber(1110), mss: mss))
        #expect(board.isLost(SequenceNumber(1110), mss: mss, dupThreshold: 2))
        #expect(!board.isLost(SequenceNumber(1310), mss: mss, dupThreshold: 1))
    }

    /// Worked example, MSS = 100, snd.una = 1000, snd.nxt = 2000, DupThresh = 3:
    ///
    ///     1000    1100    1200    1300    1400    1500    1600 ... 2000
    ///     | hole  | SACK  | hole  | SACK  | hole  | SACK  | unSACKed  |
    ///
    /// Hole [1000, 1100) has 3 ranges (300 bytes) above: lost. Hole [1200, 1300) has 2
    /// ranges, 200 bytes (not more than 2 * MSS): not lost. [1400, 1500) and [1600, 2000)
    /// are not lost. SetPipe = 100 + 100 + 400 = 600 before any retransmission; after
    /// retransmitting [1000, 1100), HighRxt = 1100 and that hole counts once more: 700.
    /// Retransmitting the (not lost) hole [1200, 1300) too counts it twice: 800.
    @Test func pipeWorkedExample() {
        var board = SACKScoreboard()
        let una = SequenceNumber(1000)
        let nxt = SequenceNumber(2000)
        board.update(cumulativeAck: una, blocks: sackBlocks((1100, 1200), (1300, 1400), (1500, 1600)), sendNext: nxt)
        #expect(board.pipe(sendUnacknowledged: una, sendNext: nxt, highRetransmitted: una, mss: mss) == 600)
        #expect(
            board.pipe(sendUnacknowledged: una, sendNext: nxt, highRetransmitted: SequenceNumber(1100), mss: mss)
                == 700)
        #expect(
            board.pipe(sendUnacknowledged: una, sendNext: nxt, highRetransmitted: SequenceNumber(1300), mss: mss)
                == 800)
        // Without SACK information every outstanding byte is in the pipe.
        #expect(SACKScoreboard().pipe(sendUnacknowledged: una, sendNext: nxt, highRetransmitted: una, mss: mss) == 1000)
        #expect(board.pipe(sendUnacknowledged: nxt, sendNext: nxt, highRetransmitted: una, mss: mss) == 0)
    }

    @Test func nextSegmentWorkedExample() {
        var board = SACKScoreboard()
        let una = SequenceNumber(1000)
        let nxt = SequenceNumber(2000)
        board.update(cumulativeAck: una, blocks: sackBlocks((1100, 1200), (1300, 1400), (1500, 1600)), sendNext: nxt)
        // Rule 1: the lost hole at snd.una.
        #expect(
            board.nextSegment(sendUnacknowledged: una, sendNext: nxt, highRetransmitted: una, mss: mss)
                == SACKRetransmission(start: una, length: 100, rescue: false))
        // After it was retransmitted: [1200, 1300) is not lost, so rule 3.
        #expect(
            board.nextSegment(sendUnacknowledged: una, sendNext: nxt, highRetransmitted: SequenceNumber(1100), mss: mss)
                == SACKRetransmission(start: SequenceNumber(1200), length: 100, rescue: true))
        // Part of a hole retransmitted already: continue where HighRxt stopped.
        #expect(
            board.nextSegment(sendUnacknowledged: una, sendNext: nxt, highRetransmitted: SequenceNumber(1420), mss: mss)
                == SACKRetransmission(start: SequenceNumber(1420), length: 80, rescue: true))
        // Nothing below the highest SACKed byte left: new data is the caller's business.
        #expect(
            board.nextSegment(sendUnacknowledged: una, sendNext: nxt, highRetransmitted: SequenceNumber(1600), mss: mss)
                == nil)
        #expect(
            SACKScoreboard().nextSegment(sendUnacknowledged: una, sendNext: nxt, highRetransmitted: una, mss: mss)
                == nil)
        // A hole smaller than an MSS is sent alone; a bigger one in MSS pieces.
        board.update(cumulativeAck: SequenceNumber(1050), blocks: SACKBlockList(), sendNext: nxt)
        #expect(
            board.nextSegment(sendUnacknowledged: SequenceNumber(1050), sendNext: nxt, highRetransmitted: una, mss: mss)
                == SACKRetransmission(start: SequenceNumber(1050), length: 50, rescue: false))
        #expect(
            board.nextSegment(
                sendUnacknowledged: SequenceNumber(1050), sendNext: nxt, highRetransmitted: una, mss: 30)
                == SACKRetransmission(start: SequenceNumber(1050), length: 30, rescue: false))
    }

    /// Compares the O(ranges) pipe and nextSegment with byte-by-byte RFC 6675 definitions
    /// on random scoreboards.
    @Test(arguments: [UInt32(1000), 0xFFFF_FF00, 0x7FFF_FFC0])
    func matchesBytewiseDefinitions(base: UInt32) {
        var random = TestRandom(state: UInt64(base) + 17)
        let mss = 10
        for _ in 0..<200 {
            var board = SACKScoreboard()
            let una = SequenceNumber(base)
            let span = 50 + random.next(300)
            let nxt = una + span
            for _ in 0..<random.next(4) + 1 {
                var list = SACKBlockList()
                for _ in 0..<random.next(4) + 1 {
                    let left = una + random.next(span)
                    list.append(SACKBlock(left: left.rawValue, right: (left + 1 + random.next(40)).rawValue))
                }
                board.update(cumulativeAck: una, blocks: list, sendNext: nxt)
            }
            let highRxt = una + random.next(span + 1)
            var expectedPipe = 0
            var sacked = 0
            var firstCandidate: SequenceNumber?
            let highest = board.highestSacked ?? una
            for offset in 0..<span {
                let seq = una + offset
                if board.isSacked(seq) {
                    sacked += 1
                    continue
                }
                if !board.isLost(seq, mss: mss) { expectedPipe += 1 }
                if seq < highRxt { expectedPipe += 1 }
                if firstCandidate == nil, !(seq < highRxt), seq < highest { firstCandidate = seq }
            }
            #expect(board.sackedBytes == sacked)
            #expect(
                board.pipe(sendUnacknowledged: una, sendNext: nxt, highRetransmitted: highRxt, mss: mss)
                    == expectedPipe)
            let next = board.nextSegment(sendUnacknowledged: una, sendNext: nxt, highRetransmitted: highRxt, mss: mss)
            #expect(next?.start == firstCandidate)
            if let next, let start = firstCandidate {
                #expect(next.rescue == !board.isLost(start, mss: mss))
                #expect(next.length >= 1 && next.length <= mss)
                for offset in 0..<next.length { #expect(!board.isSacked(next.start + offset)) }
                #expect(next.length == mss || board.isSacked(next.start + next.length))
            }
        }
    }

    @Test func capacityOverflowKeepsTheLowestRanges() {
        var board = SACKScoreboard()
        let una = SequenceNumber(0)
        let nxt = SequenceNumber(100_000)
        // 48 disjoint ranges, highest first, 4 per ACK.
        for group in stride(from: 11, through: 0, by: -1) {
            var list = SACKBlockList()
            for i in 0..<4 {
                let left = UInt32((group * 4 + i) * 100 + 50)
                list.append(SACKBlock(left: left, right: left + 10))
            }
            board.update(cumulativeAck: una, blocks: list, sendNext: nxt)
        }
        #expect(board.count == SACKScoreboard.capacity)
        #expect(board.sackedBytes == SACKScoreboard.capacity * 10)
        #expect(board.range(at: 0).left == SequenceNumber(50))
        #expect(board.highestSacked == SequenceNumber(UInt32((SACKScoreboard.capacity - 1) * 100 + 60)))
        // A new range above everything is dropped; one below still fits (dropping the top).
        let changed10 = board.update(cumulativeAck: una, blocks: sackBlocks((90_000, 90_010)), sendNext: nxt)
        #expect(!changed10)
        let changed11 = board.update(cumulativeAck: una, blocks: sackBlocks((10, 20)), sendNext: nxt)
        #expect(changed11)
        #expect(board.count == SACKScoreboard.capacity)
        #expect(board.range(at: 0).left == SequenceNumber(10))
        #expect(board.sackedBytes == SACKScoreboard.capacity * 10)
        // Merging still works when full.
        let changed12 = board.update(cumulativeAck: una, blocks: sackBlocks((20, 50)), sendNext: nxt)
        #expect(changed12)
        #expect(board.count == SACKScoreboard.capacity - 1)
        #expect(board.range(at: 0).right == SequenceNumber(60))
    }

    @Test func wrapsAroundSequenceSpace() {
        var board = SACKScoreboard()
        let una = SequenceNumber(0xFFFF_FF00)
        let nxt = una + 0x300  // 0x200
        board.update(
            cumulativeAck: una, blocks: sackBlocks((0xFFFF_FF80, 0x0000_0010), (0x0000_0100, 0x0000_0180)),
            sendNext: nxt)
        #expect(ranges(board) == [[0xFFFF_FF80, 0x10], [0x100, 0x180]])
        #expect(board.sackedBytes == 0x90 + 0x80)
        #expect(board.isSacked(SequenceNumber(0xFFFF_FFFF)))
        #expect(board.isSacked(SequenceNumber(0)))
        #expect(!board.isSacked(SequenceNumber(0x10)))
        #expect(board.highestSacked == SequenceNumber(0x180))
        // Hole [0xFFFFFF00, 0xFFFFFF80): 0x110 = 272 bytes SACKed above, more than 200: lost.
        #expect(board.isLost(una, mss: mss))
        #expect(
            board.nextSegment(sendUnacknowledged: una, sendNext: nxt, highRetransmitted: una, mss: mss)
                == SACKRetransmission(start: una, length: 100, rescue: false))
        // Pipe: lost hole 0x80 bytes not counted; [0x10, 0x100) = 240 and [0x180, 0x200) = 128.
        #expect(board.pipe(sendUnacknowledged: una, sendNext: nxt, highRetransmitted: una, mss: mss) == 240 + 128)
        // Cumulative ACK across zero trims the first range.
        board.update(cumulativeAck: SequenceNumber(0x8), blocks: SACKBlockList(), sendNext: nxt)
        #expect(ranges(board) == [[0x8, 0x10], [0x100, 0x180]])
        #expect(board.sackedBytes == 8 + 0x80)
    }
}
