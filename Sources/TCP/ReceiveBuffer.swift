/// A byte ring for received data: `readable` in-order bytes the application has not read,
/// followed by the receive window, where out-of-order data is stored at its offset.
///
/// Offsets given to `write` are relative to rcv.nxt, the first byte not yet received in
/// order. Memory is allocated once in `init` (or lent by the caller); the owner must call
/// `deallocate()` once.
public struct ReceiveBuffer {
    private var storage: UnsafeMutableRawPointer
    /// Ring index of the first unread byte.
    private var head: Int
    /// Absolute stream position of rcv.nxt; out-of-order ranges are kept in these units.
    private var nextPosition: UInt64
    private var ranges: ReassemblyRanges
    /// Number of bytes the ring can hold (read-pending plus window).
    public private(set) var capacity: Int
    /// In-order bytes ready for the application.
    public private(set) var readable: Int
    /// Out-of-order segments dropped because the range table was full.
    public private(set) var droppedOutOfOrderSegments: Int
    /// False while the byte storage is lent by the caller (a pool), so `deallocate` leaves it alone.
    public private(set) var ownsStorage: Bool

    /// Creates an empty buffer of `capacity` bytes tracking at most `maximumOutOfOrderRanges` holes.
    public init(capacity: Int, maximumOutOfOrderRanges: Int = 32) {
        let capacity = Swift.max(capacity, 0)
        storage = .allocate(byteCount: Swift.max(capacity, 1), alignment: 16)
        ranges = ReassemblyRanges(capacity: maximumOutOfOrderRanges)
        self.capacity = capacity
        head = 0
        nextPosition = 0
        readable = 0
        droppedOutOfOrderSegments = 0
        ownsStorage = true
    }

    /// Creates an empty buffer in caller-owned memory that must outlive it: `storage` of at
    /// least `max(capacity, 1)` bytes and `rangeStorage` of `2 * max(maximumOutOfOrderRanges, 1)`
    /// values for the hole table. `deallocate` frees neither.
    public init(
        borrowing storage: UnsafeMutableRawPointer, capacity: Int, rangeStorage: UnsafeMutablePointer<UInt64>,
        maximumOutOfOrderRanges: Int = 32
    ) {
        self.storage = storage
        ranges = ReassemblyRanges(borrowing: rangeStorage, capacity: maximumOutOfOrderRanges)
        self.capacity = Swift.max(capacity, 0)
        head = 0
        nextPosition = 0
        readable = 0
        droppedOutOfOrderSegments = 0
        ownsStorage = false
    }

    /// Frees the storage it owns; the buffer must not be used afterwards.
    public mutating func deallocate() {
        if ownsStorage { storage.deallocate() }
        ranges.deallocate()
        capacity = 0
        readable = 0
        head = 0
    }

    /// Space from rcv.nxt on that the receiver can advertise.
    public var freeWindow: Int { capacity - readable }

    /// True when out-of-order data waits beyond rcv.nxt.
    public var hasOutOfOrderData: Bool { ranges.count > 0 }

    /// Number of out-of-order ranges held.
    public var outOfOrderRangeCount: Int { ranges.count }

    /// Out-of-order range `i` relative to rcv.nxt, ascending; empty if `i` is out of bounds.
    public func outOfOrderRange(_ i: Int) -> Range<Int> {
        guard i >= 0 && i < ranges.count else { return 0..<0 }
        return Int(ranges.start(i) - nextPosition)..<Int(ranges.end(i) - nextPosition)
    }

    /// The out-of-order range (relative to rcv.nxt) that holds byte `offset`, if any.
    public func outOfOrderRange(containing offset: Int) -> Range<Int>? {
        guard offset >= 0, let i = ranges.index(containing: nextPosition + UInt64(offset)) else { return nil }
        return outOfOrderRange(i)
    }

    /// Maps a logical position (0 = first unread byte, less than 2 * capacity) to a ring index.
    @inline(__always)
    private func ringIndex(_ logical: Int) -> Int {
        let index = head + logical
        return index >= capacity ? index - capacity : index
    }

    /// Copies `n` bytes to logical position `logical`, wrapping around the ring end.
    @inline(__always)
    private func copyIn(at logical: Int, from source: UnsafeRawPointer, count n: Int) {
        let start = ringIndex(logical)
        let first = Swift.min(n, capacity - start)
        (storage + start).copyMemory(from: source, byteCount: first)
        if first < n {
            storage.copyMemory(from: source + first, byteCount: n - first)
        }
    }

    /// Stores `bytes` that begin `offset` bytes after rcv.nxt, trimmed to the window, and
    /// returns how far rcv.nxt advanced (including out-of-order data that became contiguous).
    public mutating func write(offset: Int, bytes: UnsafeRawBufferPointer) -> Int {
        guard var source = bytes.baseAddress else { return 0 }
        var offset = offset
        var length = bytes.count
        if offset < 0 {
            // The front was received before: keep only what lies from rcv.nxt on.
            // Compared before negating so that Int.min cannot overflow.
            let old = offset <= -length ? length : -offset
            source += old
            length -= old
            offset = 0
        }
        let window = freeWindow
        guard length > 0, offset < window else { return 0 }
        let n = Swift.min(length, window - offset)
        if offset > 0 {
            let start = nextPosition + UInt64(offset)
            guard ranges.insert(start: start, end: start + UInt64(n)) else {
                droppedOutOfOrderSegments += 1
                return 0
            }
            copyIn(at: readable + offset, from: source, count: n)
            return 0
        }
        copyIn(at: readable, from: source, count: n)
        let reach = ranges.removeContiguous(from: nextPosition + UInt64(n))
        let advance = Int(reach - nextPosition)
        nextPosition = reach
        readable += advance
        return advance
    }

    /// Zero-copy view of the readable bytes, in two pieces because the ring may wrap.
    public func peekReadable() -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
        guard readable > 0 else {
            return (UnsafeRawBufferPointer(start: nil, count: 0), UnsafeRawBufferPointer(start: nil, count: 0))
        }
        let first = Swift.min(readable, capacity - head)
        return (
            UnsafeRawBufferPointer(start: storage + head, count: first),
            UnsafeRawBufferPointer(start: first < readable ? storage : nil, count: readable - first)
        )
    }

    /// Marks `n` readable bytes as read (clamped to `0...readable`).
    public mutating func consume(_ n: Int) {
        let n = Swift.min(Swift.max(n, 0), readable)
        guard n > 0 else { return }
        readable -= n
        // With nothing stored, restart at index 0 so later reads are more often contiguous.
        head = readable == 0 && ranges.count == 0 ? 0 : ringIndex(n)
    }

    /// Copies readable bytes into `buffer` and consumes them; returns how many were copied.
    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = peek(into: buffer)
        consume(n)
        return n
    }

    /// Copies readable bytes into `buffer` without consuming them (MSG_PEEK).
    public func peek(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let destination = buffer.baseAddress else { return 0 }
        let n = Swift.min(buffer.count, readable)
        guard n > 0 else { return 0 }
        let (first, second) = peekReadable()
        let fromFirst = Swift.min(n, first.count)
        destination.copyMemory(from: first.baseAddress!, byteCount: fromFirst)
        if fromFirst < n, let base = second.baseAddress {
            (destination + fromFirst).copyMemory(from: base, byteCount: n - fromFirst)
        }
        return n
    }

    /// Changes the capacity; only allowed while nothing is stored (returns false otherwise).
    public mutating func resize(capacity newCapacity: Int) -> Bool {
        guard readable == 0, ranges.count == 0, newCapacity >= 0 else { return false }
        guard newCapacity != capacity else { return true }
        // Lent storage goes back with its chunk; from here on the buffer owns its bytes.
        if ownsStorage { storage.deallocate() }
        storage = .allocate(byteCount: Swift.max(newCapacity, 1), alignment: 16)
        ownsStorage = true
        capacity = newCapacity
        head = 0
        return true
    }
}
