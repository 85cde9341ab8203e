import TCP

/// A packet in flight, due at `time` at node `destination` over link `link`.
struct PacketArrival {
    var time: Instant
    /// Insertion order; breaks ties so packets due at the same instant arrive first-in, first-out.
    var sequence: UInt64
    var destination: Int
    var link: Int
    var bytes: [UInt8]

    func precedes(_ other: PacketArrival) -> Bool {
        time != other.time ? time < other.time : sequence < other.sequence
    }
}

/// A binary min-heap of packet arrivals ordered by (time, sequence).
struct EventQueue {
    private var heap: [PacketArrival] = []
    private var nextSequence: UInt64 = 0

    var count: Int { heap.count }
    var isEmpty: Bool { heap.isEmpty }
    /// The earliest due time, or nil when empty.
    var earliest: Instant? { heap.first?.time }

    mutating func push(time: Instant, destination: Int, link: Int, bytes: [UInt8]) {
        heap.append(
            PacketArrival(time: time, sequence: nextSequence, destination: destination, link: link, bytes: bytes))
        nextSequence += 1
        siftUp(heap.count - 1)
    }

    /// Removes and returns the earliest arrival if it is due at or before `now`.
    mutating func popDue(at now: Instant) -> PacketArrival? {
        guard let first = heap.first, first.time <= now else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
        return first
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var smallest = left
            let right = left + 1
            if right < heap.count && heap[right].precedes(heap[left]) { smallest = right }
            guard heap[smallest].precedes(heap[parent]) else { return }
            heap.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
