/// A hashed timing wheel over small integer ids (connection slots): schedule, cancel and expiry
/// are O(1) per timer, so polling cost follows the timers that fire, not the connections that
/// exist. Entries live in intrusive doubly linked lists held in arrays that grow with the
/// highest id and are reused, so steady operation allocates nothing.
///
/// An entry due beyond one rotation sits in its bucket until its round comes; expiry checks
/// each entry's exact due time, so the wheel never fires early.
public struct TimerWheel {
    /// Length of one bucket in nanoseconds.
    public let tick: UInt64
    let mask: Int
    var heads: [Int32]
    var next: [Int32] = []
    var previous: [Int32] = []
    /// The bucket an id is linked into, or -1.
    var bucketOf: [Int32] = []
    var due: [UInt64] = []
    /// Ticks before this one have been expired.
    var cursor: UInt64
    /// The earliest due time, when known (`nil`: recompute on demand).
    var cachedEarliest: UInt64?
    var scratch: [Int32] = []
    public private(set) var count = 0

    /// - Parameters:
    ///   - tick: bucket width (1 ms: finer than any TCP timer needs).
    ///   - buckets: rounded up to a power of two; tick x buckets is one rotation.
    public init(tick: Interval = .milliseconds(1), buckets: Int = 1024, start: Instant = .zero) {
        var size = 1
        while size < max(buckets, 2) { size <<= 1 }
        self.tick = max(tick.nanoseconds, 1)
        mask = size - 1
        heads = Array(repeating: -1, count: size)
        cursor = start.nanoseconds / self.tick
        cachedEarliest = UInt64.max
    }

    /// True when `id` has a timer.
    public func isScheduled(_ id: Int32) -> Bool {
        Int(id) < bucketOf.count && bucketOf[Int(id)] >= 0
    }

    /// Arms `id` for `deadline`, replacing its previous timer; `.never` only cancels.
    public mutating func schedule(_ id: Int32, at deadline: Instant) {
        cancel(id)
        guard deadline != .never else { return }
        let i = Int(id)
        if i >= due.count { grow(to: i + 1) }
        let time = deadline.nanoseconds
        let slot = Int(max(time / tick, cursor) & UInt64(mask))
        due[i] = time
        bucketOf[i] = Int32(slot)
        previous[i] = -1
        next[i] = heads[slot]
        if heads[slot] >= 0 { previous[Int(heads[slot])] = id }
        heads[slot] = id
        count += 1
        if let earliest = cachedEarliest, time < earliest { cachedEarliest = time }
    }

    /// Disarms `id`'s timer if it has one.
    public mutating func cancel(_ id: Int32) {
        let i = Int(id)
        guard i < bucketOf.count, bucketOf[i] >= 0 else { return }
        let slot = Int(bucketOf[i])
        if previous[i] >= 0 { next[Int(previous[i])] = next[i] } else { heads[slot] = next[i] }
        if next[i] >= 0 { previous[Int(next[i])] = previous[i] }
        bucketOf[i] = -1
        count -= 1
        if cachedEarliest == due[i] { cachedEarliest = nil }
    }

    /// The deadline of `id`'s timer, if it has one.
    public func deadline(of id: Int32) -> Instant? {
        isScheduled(id) ? Instant(nanoseconds: due[Int(id)]) : nil
    }

    /// Disarms every timer due at or before `now` and hands their ids to `body`, earliest
    /// bucket first. (`body` cannot reach the wheel itself, a struct being mutated; owners
    /// note the ids and schedule afterwards, as `TCPEndpoint` does through its dirty list.)
    public mutating func expire(now: Instant, _ body: (Int32) -> Void) {
        let nowTick = now.nanoseconds / tick
        guard count > 0 else {
            cursor = max(cursor, nowTick)
            return
        }
        if let earliest = cachedEarliest, earliest > now.nanoseconds { return }
        scratch.removeAll(keepingCapacity: true)
        // Visit each bucket from the cursor to now once (at most one rotation).
        let span = min(nowTick >= cursor ? nowTick - cursor : 0, UInt64(mask))
        var t = cursor
        while t <= cursor + span {
            var id = heads[Int(t & UInt64(mask))]
            while id >= 0 {
                let following = next[Int(id)]
                if due[Int(id)] <= now.nanoseconds { scratch.append(id) }
                id = following
            }
            t += 1
        }
        cursor = max(cursor, nowTick)
        cachedEarliest = nil
        for id in scratch { cancel(id) }
        for id in scratch { body(id) }
    }

    /// The earliest armed deadline, `.never` when none.
    public mutating func nextDeadline() -> Instant {
        if let earliest = cachedEarliest { return earliest == .max ? .never : Instant(nanoseconds: earliest) }
        var earliest = UInt64.max
        if count > 0 {
            // Buckets in time order from the cursor: the first entry due within this rotation
            // is the earliest; entries of later rounds only matter when there is none.
            let rotationEnd = (cursor + UInt64(mask) + 1) * tick
            var later = UInt64.max
            var t = cursor
            scan: while t <= cursor + UInt64(mask) {
                var id = heads[Int(t & UInt64(mask))]
                var found = UInt64.max
                while id >= 0 {
                    let d = due[Int(id)]
                    if d < rotationEnd { found = min(found, d) } else { later = min(later, d) }
                    id = next[Int(id)]
                }
                if found != .max {
                    earliest = found
                    break scan
                }
                t += 1
            }
            if earliest == .max { earliest = later }
        }
        cachedEarliest = earliest
        return earliest == .max ? .never : Instant(nanoseconds: earliest)
    }

    mutating func grow(to size: Int) {
        let newSize = max(size, due.count * 2, 64)
        let extra = newSize - due.count
        next.append(contentsOf: repeatElement(-1, count: extra))
        previous.append(contentsOf: repeatElement(-1, count: extra))
        bucketOf.append(contentsOf: repeatElement(-1, count: extra))
        due.append(contentsOf: repeatElement(0, count: extra))
        scratch.reserveCapacity(newSize)
    }
}
