/// Frames an impairment layer holds back (delayed or reordered), in preallocated slots.
final class HeldFrames {
    let slotSize: Int
    let capacity: Int
    let storage: UnsafeMutableRawPointer
    let lengths: UnsafeMutablePointer<Int>
    /// When each frame is due regardless of traffic.
    let due: UnsafeMutablePointer<UInt64>
    /// The pass count after which a reordered frame is released (UInt64.max: never by count).
    let releaseAfter: UnsafeMutablePointer<UInt64>
    let inUse: UnsafeMutablePointer<Bool>
    private(set) var count = 0

    init(slotSize: Int, capacity: Int) {
        self.slotSize = slotSize
        self.capacity = capacity
        storage = UnsafeMutableRawPointer.allocate(byteCount: slotSize * max(capacity, 1), alignment: 64)
        lengths = .allocate(capacity: max(capacity, 1))
        due = .allocate(capacity: max(capacity, 1))
        releaseAfter = .allocate(capacity: max(capacity, 1))
        inUse = .allocate(capacity: max(capacity, 1))
        inUse.initialize(repeating: false, count: max(capacity, 1))
        lengths.initialize(repeating: 0, count: max(capacity, 1))
        due.initialize(repeating: 0, count: max(capacity, 1))
        releaseAfter.initialize(repeating: 0, count: max(capacity, 1))
    }

    deinit {
        storage.deallocate()
        lengths.deallocate()
        due.deallocate()
        releaseAfter.deallocate()
        inUse.deallocate()
    }

    /// Copies a frame in; false when the pool is full or the frame is larger than a slot.
    func hold(_ frame: UnsafeRawBufferPointer, due time: UInt64, releaseAfter passes: UInt64) -> Bool {
        guard count < capacity, frame.count <= slotSize, let source = frame.baseAddress else { return false }
        var slot = 0
        while inUse[slot] { slot += 1 }
        (storage + slot * slotSize).copyMemory(from: source, byteCount: frame.count)
        lengths[slot] = frame.count
        due[slot] = time
        releaseAfter[slot] = passes
        inUse[slot] = true
        count += 1
        return true
    }

    /// The ready slot due earliest (lowest slot on ties), or nil.
    func nextReady(now: UInt64, passes: UInt64) -> Int? {
        guard count > 0 else { return nil }
        var best: Int?
        for slot in 0..<capacity where inUse[slot] && (due[slot] <= now || passes >= releaseAfter[slot]) {
            if let b = best, due[b] <= due[slot] { continue }
            best = slot
        }
        return best
    }

    /// The earliest due time of any held frame.
    var earliestDue: UInt64? {
        guard count > 0 else { return nil }
        var earliest = UInt64.max
        for slot in 0..<capacity where inUse[slot] { earliest = min(earliest, due[slot]) }
        return earliest
    }

    func frame(_ slot: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage + slot * slotSize, count: lengths[slot])
    }

    func release(_ slot: Int) {
        inUse[slot] = false
        count -= 1
    }
}
