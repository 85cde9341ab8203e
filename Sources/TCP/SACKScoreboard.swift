import Wire

/// A segment the SACK scoreboard proposes to retransmit (RFC 6675 NextSeg).
public struct SACKRetransmission: Hashable, Sendable {
    /// First sequence number to retransmit.
    public var start: SequenceNumber
    /// Bytes to retransmit: at most one MSS, never reaching into SACKed data or past snd.nxt.
    public var length: Int
    /// True for NextSeg rule 3: the hole is not yet deemed lost, so send it only when no
    /// new data can be sent (rule 2, the caller's job); false for rule 1 (deemed lost).
    public var rescue: Bool

    public init(start: SequenceNumber, length: Int, rescue: Bool) {
        self.start = start
        self.length = length
        self.rescue = rescue
    }
}

/// The sender's record of SACKed sequence space (RFC 6675 scoreboard): disjoint ranges
/// [left, right) above snd.una, sorted and merged, in fixed inline storage.
///
/// `highRetransmitted` arguments are exclusive ends (RFC 6675 HighRxt + 1): every byte
/// below it has been retransmitted in the current recovery.
public struct SACKScoreboard: Sendable {
    /// The most ranges remembered; when full, the range farthest above snd.una is forgotten,
    /// which only makes the sender more conservative (it may retransmit SACKed data).
    public static let capacity = 32

    private var lefts = InlineArray<32, SequenceNumber>(repeating: SequenceNumber(0))
    private var rights = InlineArray<32, SequenceNumber>(repeating: SequenceNumber(0))
    /// Number of ranges in use.
    public private(set) var count = 0
    /// Total SACKed bytes above the cumulative acknowledgment.
    public private(set) var sackedBytes = 0

    public init() {}

    /// Forgets all SACK information (e.g. after an RTO, RFC 6675 5.1).
    public mutating func reset() {
        count = 0
        sackedBytes = 0
    }

    /// True when nothing is SACKed.
    public var isEmpty: Bool { count == 0 }

    /// The right edge (exclusive) of the highest SACKed range.
    public var highestSacked: SequenceNumber? { count == 0 ? nil : rights[count - 1] }

    /// The i-th range, lowest first.
    public func range(at index: Int) -> (left: SequenceNumber, right: SequenceNumber) {
        (lefts[index], rights[index])
    }

    /// Applies an acknowledgment: drops data below `cumulativeAck` and merges the valid
    /// SACK blocks. Blocks that are empty, start below `cumulativeAck` (D-SACK) or end
    /// beyond `sendNext` are ignored. Returns true if any byte became newly SACKed.
    @discardableResult
    public mutating func update(
        cumulativeAck: SequenceNumber, blocks: SACKBlockList, sendNext: SequenceNumber
    ) -> Bool {
        trim(below: cumulativeAck)
        var changed = false
        for block in blocks {
            let left = SequenceNumber(block.left)
            let right = SequenceNumber(block.right)
            guard left < right, !(left < cumulativeAck), !(sendNext < right) else { continue }
            if insert(left: left, right: right) { changed = true }
        }
        return changed
    }

    /// True if `seq` lies in a SACKed range.
    public func isSacked(_ seq: SequenceNumber) -> Bool {
        for i in 0..<count {
            if seq < lefts[i] { return false }
            if seq < rights[i] { return true }
        }
        return false
    }

    /// RFC 6675 IsLost: more than (dupThreshold - 1) * mss bytes above `seq` are SACKed,
    /// or at least `dupThreshold` discontiguous SACKed ranges lie above it.
    public func isLost(_ seq: SequenceNumber, mss: Int, dupThreshold: Int = 3) -> Bool {
        let above = seq + 1
        var bytes = 0
        var ranges = 0
        var i = count - 1
        while i >= 0 {
            guard above < rights[i] else { break }
            bytes += rights[i] - SequenceNumber.max(lefts[i], above)
            ranges += 1
            i -= 1
        }
        return bytes > (dupThreshold - 1) * mss || ranges >= dupThreshold
    }

    /// RFC 6675 SetPipe in bytes: every unSACKed byte in [snd.una, snd.nxt) counts once if
    /// not lost and once more if retransmitted. O(ranges): IsLost is monotone (true for all
    /// unSACKed bytes below a boundary, false above), so whole spans are counted at once.
    public func pipe(
        sendUnacknowledged: SequenceNumber, sendNext: SequenceNumber, highRetransmitted: SequenceNumber,
        mss: Int, dupThreshold: Int = 3
    ) -> Int {
        guard sendUnacknowledged < sendNext else { return 0 }
        var lostBelow = sendUnacknowledged
        if let boundary = lossBoundary(mss: mss, dupThreshold: dupThreshold) {
            lostBelow = SequenceNumber.min(SequenceNumber.max(boundary, sendUnacknowledged), sendNext)
        }
        let notLost = unsackedBytes(from: lostBelow, to: sendNext)
        let retransmittedEnd = SequenceNumber.min(
            SequenceNumber.max(highRetransmitted, sendUnacknowledged), sendNext)
        let retransmitted = unsackedBytes(from: sendUnacknowledged, to: retransmittedEnd)
        return notLost + retransmitted
    }

    /// RFC 6675 NextSeg rules 1 and 3: the lowest unSACKed byte at or above
    /// `highRetransmitted` (and snd.una) that is below the highest SACKed byte, as a segment
    /// of up to `mss` bytes that stops at the next SACKed range. `rescue` is false when the
    /// byte is deemed lost (rule 1). Rule 2, new data, is the caller's choice.
    public func nextSegment(
        sendUnacknowledged: SequenceNumber, sendNext: SequenceNumber, highRetransmitted: SequenceNumber,
        mss: Int, dupThreshold: Int = 3
    ) -> SACKRetransmission? {
        guard count > 0, mss > 0 else { return nil }
        var seq = SequenceNumber.max(highRetransmitted, sendUnacknowledged)
        // Skip to the first unSACKed byte at or above seq; note where the hole ends.
        var holeEnd = sendNext
        for i in 0..<count {
            if seq < lefts[i] {
                holeEnd = lefts[i]
                break
            }
            if seq < rights[i] { seq = rights[i] }
        }
        // Rule 1 (b) and rule 3: only holes below the highest SACKed byte qualify.
        guard let highest = highestSacked, seq < highest, seq < sendNext else { return nil }
        let end = SequenceNumber.min(SequenceNumber.min(holeEnd, sendNext), seq + mss)
        let lost = lossBoundary(mss: mss, dupThreshold: dupThreshold).map { seq < $0 } ?? false
        return SACKRetransmission(start: seq, length: end - seq, rescue: !lost)
    }

    // MARK: - Internals

    /// Every unSACKed byte below the returned sequence number is lost by IsLost and none
    /// at or above it is; nil when no byte is lost.
    private func lossBoundary(mss: Int, dupThreshold: Int) -> SequenceNumber? {
        // An unSACKed byte below lefts[i] has ranges i..<count, and no others, above it.
        let threshold = (dupThreshold - 1) * mss
        var bytes = 0
        var ranges = 0
        var i = count - 1
        while i >= 0 {
            bytes += rights[i] - lefts[i]
            ranges += 1
            if bytes > threshold || ranges >= dupThreshold { return lefts[i] }
            i -= 1
        }
        return nil
    }

    /// UnSACKed bytes in [from, to).
    private func unsackedBytes(from: SequenceNumber, to: SequenceNumber) -> Int {
        guard from < to else { return 0 }
        var total = to - from
        for i in 0..<count {
            let left = SequenceNumber.max(lefts[i], from)
            let right = SequenceNumber.min(rights[i], to)
            if left < right { total -= right - left }
        }
        return total
    }

    /// Drops SACK information at or below the cumulative acknowledgment.
    private mutating func trim(below ack: SequenceNumber) {
        var drop = 0
        while drop < count, !(ack < rights[drop]) {
            sackedBytes -= rights[drop] - lefts[drop]
            drop += 1
        }
        if drop > 0 {
            for i in drop..<count {
                lefts[i - drop] = lefts[i]
                rights[i - drop] = rights[i]
            }
            count -= drop
        }
        if count > 0, lefts[0] < ack {
            sackedBytes -= ack - lefts[0]
            lefts[0] = ack
        }
    }

    /// Merges [left, right) into the sorted, disjoint ranges; true if it covered new bytes.
    private mutating func insert(left: SequenceNumber, right: SequenceNumber) -> Bool {
        // First range that ends at or after left (touching ranges merge).
        var first = 0
        while first < count, rights[first] < left { first += 1 }
        // One past the last range that starts at or before right.
        var last = first
        while last < count, !(right < lefts[last]) { last += 1 }

        if first == last {
            // Disjoint from all: open a slot at `first`, dropping the highest range if full.
            if count == Self.capacity {
                if first == count { return false }  // The new range would be the one dropped.
                count -= 1
                sackedBytes -= rights[count] - lefts[count]
            }
            var i = count
            while i > first {
                lefts[i] = lefts[i - 1]
                rights[i] = rights[i - 1]
                i -= 1
            }
            lefts[first] = left
            rights[first] = right
            count += 1
            sackedBytes += right - left
            return true
        }

        // Overlaps ranges first..<last: replace them by their union with the new range.
        var removed = 0
        for i in first..<last { removed += rights[i] - lefts[i] }
        let newLeft = SequenceNumber.min(left, lefts[first])
        let newRight = SequenceNumber.max(right, rights[last - 1])
        lefts[first] = newLeft
        rights[first] = newRight
        let added = (newRight - newLeft) - removed
        sackedBytes += added
        let shift = last - first - 1
        if shift > 0 {
            for i in last..<count {
                lefts[i - shift] = lefts[i]
                rights[i - shift] = rights[i]
            }
            count -= shift
        }
        return added > 0
    }
}
