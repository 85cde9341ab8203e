/// A fixed-capacity table of sorted, disjoint, non-adjacent byte ranges in absolute
/// stream positions: the out-of-order data a receiver holds beyond rcv.nxt.
///
/// Absolute 64-bit positions never wrap in practice, so advancing rcv.nxt needs no
/// update of the stored ranges. Storage is allocated once (or lent by the caller); call
/// `deallocate()`.
public struct ReassemblyRanges {
    /// Interleaved (start, end) pairs; entries `0..<count` are valid.
    private var bounds: UnsafeMutablePointer<UInt64>
    /// Maximum number of ranges held.
    public let capacity: Int
    /// Number of ranges held.
    public private(set) var count: Int
    /// False when the storage was lent by the caller (a pool), so `deallocate` leaves it alone.
    public let ownsStorage: Bool

    /// Creates an empty table of at most `capacity` ranges.
    public init(capacity: Int = 32) {
        self.capacity = Swift.max(capacity, 1)
        bounds = .allocate(capacity: 2 * self.capacity)
        count = 0
        ownsStorage = true
    }

    /// Creates an empty table of at most `capacity` ranges in caller-owned `storage`, which must
    /// hold `2 * max(capacity, 1)` values and outlive the table.
    public init(borrowing storage: UnsafeMutablePointer<UInt64>, capacity: Int) {
        self.capacity = Swift.max(capacity, 1)
        bounds = storage
        count = 0
        ownsStorage = false
    }

    /// Frees the storage if the table owns it; the table must not be used afterwards.
    public mutating func deallocate() {
        if ownsStorage { bounds.deallocate() }
        count = 0
    }

    /// Start (inclusive) of range `i`.
    @inline(__always)
    public func start(_ i: Int) -> UInt64 { bounds[2 * i] }

    /// End (exclusive) of range `i`.
    @inline(__always)
    public func end(_ i: Int) -> UInt64 { bounds[2 * i + 1] }

    /// Removes all ranges.
    public mutating func removeAll() { count = 0 }

    /// Adds `[start, end)`, merging with every range it overlaps or touches. Returns false,
    /// changing nothing, when the range touches no existing one and the table is full.
    public mutating func insert(start: UInt64, end: UInt64) -> Bool {
        guard start < end else { return true }
        // First range whose end reaches `start` (it may merge), then all that begin by `end`.
        var first = 0
        while first < count && self.end(first) < start { first += 1 }
        var last = first
        while last < count && self.start(last) <= end { last += 1 }
        if first == last {
            guard count < capacity else { return false }
            shift(from: first, by: 1)
            bounds[2 * first] = start
            bounds[2 * first + 1] = end
            return true
        }
        // Ranges first..<last collapse into one at `first`.
        bounds[2 * first] = Swift.min(start, self.start(first))
        bounds[2 * first + 1] = Swift.max(end, self.end(last - 1))
        shift(from: last, by: first + 1 - last)
        return true
    }

    /// Removes ranges that begin at or before `position` and returns the end of the
    /// contiguous data from `position` on (`position` itself when nothing touches it).
    public mutating func removeContiguous(from position: UInt64) -> UInt64 {
        var reach = position
        var removed = 0
        while removed < count && start(removed) <= reach {
            reach = Swift.max(reach, end(removed))
            removed += 1
        }
        if removed > 0 { shift(from: removed, by: -removed) }
        return reach
    }

    /// Index of the range containing `position`, if any.
    public func index(containing position: UInt64) -> Int? {
        for i in 0..<count where start(i) <= position && position < end(i) { return i }
        return nil
    }

    /// Moves entries `from..<count` by `delta` slots and adjusts `count`.
    private mutating func shift(from index: Int, by delta: Int) {
        let moving = count - index
        if moving > 0 {
            // copyMemory is a memmove: source and destination overlap here.
            UnsafeMutableRawPointer(bounds + 2 * (index + delta))
                .copyMemory(from: bounds + 2 * index, byteCount: 2 * moving * MemoryLayout<UInt64>.stride)
        }
        count += delta
    }
}
