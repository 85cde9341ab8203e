/// A byte ring holding data the application wrote that the peer has not acknowledged yet.
///
/// Memory is allocated once in `init` (and again only by `resize`), or lent by the caller;
/// the owner must call `deallocate()` exactly once. Offset 0 is the oldest unacknowledged byte (snd.una).
public struct SendBuffer {
    private var storage: UnsafeMutableRawPointer
    /// Ring index of the oldest byte held.
    private var head: Int
    /// Number of bytes the ring can hold.
    public private(set) var capacity: Int
    /// Number of bytes held (written by the application, not yet acknowledged).
    public private(set) var count: Int
    /// False while the storage is lent by the caller (a pool), so `deallocate` leaves it alone.
    public private(set) var ownsStorage: Bool

    /// Creates an empty buffer of `capacity` bytes (negative capacities count as zero).
    public init(capacity: Int) {
        let capacity = Swift.max(capacity, 0)
        // At least one byte so the pointer is always valid, even for a zero-capacity buffer.
        storage = .allocate(byteCount: Swift.max(capacity, 1), alignment: 16)
        self.capacity = capacity
        head = 0
        count = 0
        ownsStorage = true
    }

    /// Creates an empty buffer in caller-owned `storage` of at least `max(capacity, 1)` bytes,
    /// which must outlive the buffer; `deallocate` does not free it.
    public init(borrowing storage: UnsafeMutableRawPointer, capacity: Int) {
        self.storage = storage
        self.capacity = Swift.max(capacity, 0)
        head = 0
        count = 0
        ownsStorage = false
    }

    /// Frees the storage if the buffer owns it; the buffer must not be used afterwards.
    public mutating func deallocate() {
        if ownsStorage { storage.deallocate() }
        capacity = 0
        count = 0
        head = 0
    }

    /// Bytes that can still be appended.
    public var freeSpace: Int { capacity - count }

    /// True when nothing is held.
    public var isEmpty: Bool { count == 0 }

    /// Maps a logical position (0 = head, less than 2 * capacity) to a ring index.
    @inline(__always)
    private func ringIndex(_ logical: Int) -> Int {
        let index = head + logical
        return index >= capacity ? index - capacity : index
    }

    /// Copies as many of `bytes` as fit at the end; returns how many were copied.
    @discardableResult
    public mutating func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        let n = Swift.min(bytes.count, freeSpace)
        guard n > 0, let source = bytes.baseAddress else { return 0 }
        let start = ringIndex(count)
        let first = Swift.min(n, capacity - start)
        (storage + start).copyMemory(from: source, byteCount: first)
        if first < n {
            storage.copyMemory(from: source + first, byteCount: n - first)
        }
        count += n
        return n
    }

    /// Drops `n` acknowledged bytes from the front (clamped to `0...count`).
    public mutating func removeFirst(_ n: Int) {
        let n = Swift.min(Swift.max(n, 0), count)
        guard n > 0 else { return }
        count -= n
        // An empty ring restarts at index 0 so later sends are more often contiguous.
        head = count == 0 ? 0 : ringIndex(n)
    }

    /// Zero-copy view of bytes `[offset, offset + length)` counted from the front, clamped to
    /// what is held; two pieces because the ring may wrap (the second is empty when contiguous).
    public func peek(offset: Int, length: Int) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
        let offset = Swift.max(offset, 0)
        let n = Swift.min(Swift.max(length, 0), count - offset)
        guard n > 0 else {
            return (UnsafeRawBufferPointer(start: nil, count: 0), UnsafeRawBufferPointer(start: nil, count: 0))
        }
        let start = ringIndex(offset)
        let first = Swift.min(n, capacity - start)
        return (
            UnsafeRawBufferPointer(start: storage + start, count: first),
            UnsafeRawBufferPointer(start: first < n ? storage : nil, count: n - first)
        )
    }

    /// Changes the capacity, keeping the content; returns false (and changes nothing)
    /// if `capacity` is smaller than `count`.
    public mutating func resize(capacity newCapacity: Int) -> Bool {
        guard newCapacity >= count else { return false }
        guard newCapacity != capacity else { return true }
        let newStorage = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(newCapacity, 1), alignment: 16)
        let (first, second) = peek(offset: 0, length: count)
        if let base = first.baseAddress { newStorage.copyMemory(from: base, byteCount: first.count) }
        if let base = second.baseAddress { (newStorage + first.count).copyMemory(from: base, byteCount: second.count) }
        // Lent storage goes back with its chunk; from here on the buffer owns its memory.
        if ownsStorage { storage.deallocate() }
        storage = newStorage
        ownsStorage = true
        capacity = newCapacity
        head = 0
        return true
    }
}
