import TCP
import Wire

/// The neighbour table of one interface: IPv4 → MAC (ARP, RFC 826) and IPv6 → MAC (neighbour
/// discovery, RFC 4861: solicitations are scheduled as ARP requests are), with entries that
/// age out and are re-resolved, and a preallocated pool where packets for an unresolved next
/// hop wait for the reply instead of being dropped (mTCP dropped the first packet; we never do).
///
/// It does no I/O itself: the stack sends the requests it asks for and transmits the frames
/// it hands back.
public final class ARPCache {
    /// Where an entry is in its life.
    public enum State: Sendable {
        /// Asked, no answer yet; packets wait in the pending pool.
        case incomplete
        /// Answered within the lifetime.
        case reachable
        /// Lifetime over while still in use: still used, being re-resolved.
        case probing
    }

    /// What `enqueue` did with a packet.
    public enum EnqueueResult: Sendable {
        /// The packet waits; `startResolution` is true when the caller must send the first request.
        case queued(startResolution: Bool)
        /// The address's queue or the whole pool is full; the packet was dropped.
        case overflow
        /// No room for another neighbour; the packet was dropped.
        case cacheFull
    }

    struct Entry {
        var address: IPAddress
        var mac = MACAddress.zero
        var state = State.incomplete
        var confirmed = Instant.zero
        var usedSinceConfirmed = false
        var requestsSent = 0
        var nextRequest = Instant.never
        var pendingHead: Int32 = -1
        var pendingTail: Int32 = -1
        var pendingCount = 0
        var live = true
    }

    public let lifetime: Interval
    public let retryInterval: Interval
    public let retries: Int
    public let pendingPerAddress: Int
    public let capacity: Int
    /// Bytes one pending frame may hold.
    public let frameCapacity: Int
    public private(set) var nextDeadline = Instant.never

    var entries: [Entry] = []
    var freeEntries: [Int32] = []
    var index: [IPAddress: Int32] = [:]
    /// The last address looked up, so back-to-back packets to one next hop skip the hash.
    var memoAddress = IPAddress.unspecified
    var memoEntry: Int32 = -1

    let pool: UnsafeMutableRawPointer
    let poolSize: Int
    var frameLengths: [Int]
    var nextFrame: [Int32]
    var freeFrames: [Int32]

    /// A cache for `capacity` neighbours with `poolSize` pending frames of `frameCapacity` bytes.
    public init(
        lifetime: Interval, retryInterval: Interval, retries: Int, pendingPerAddress: Int, poolSize: Int,
        capacity: Int, frameCapacity: Int
    ) {
        self.lifetime = lifetime
        self.retryInterval = retryInterval
        self.retries = max(retries, 1)
        self.pendingPerAddress = max(pendingPerAddress, 1)
        self.capacity = max(capacity, 1)
        self.frameCapacity = frameCapacity
        self.poolSize = max(poolSize, 1)
        pool = UnsafeMutableRawPointer.allocate(byteCount: self.poolSize * frameCapacity, alignment: 64)
        frameLengths = Array(repeating: 0, count: self.poolSize)
        nextFrame = Array(repeating: -1, count: self.poolSize)
        freeFrames = (0..<Int32(self.poolSize)).reversed()
        entries.reserveCapacity(self.capacity)
        freeEntries.reserveCapacity(self.capacity)
        index.reserveCapacity(self.capacity)
    }

    deinit { pool.deallocate() }

    /// Neighbours in the table, in any state.
    public var count: Int { index.count }

    /// Frames waiting for resolution, over all addresses.
    public var pendingFrames: Int { poolSize - freeFrames.count }

    /// The state and hardware address known for `address`, for inspection.
    public func entry(for address: IPAddress) -> (state: State, mac: MACAddress)? {
        guard let slot = find(address) else { return nil }
        return (entries[Int(slot)].state, entries[Int(slot)].mac)
    }

    /// The MAC to send to `address`, or nil when it is not resolved; marks the entry in use.
    @inline(__always)
    public func lookup(_ address: IPAddress) -> MACAddress? {
        guard let slot = find(address) else { return nil }
        let i = Int(slot)
        guard entries[i].state != .incomplete else { return nil }
        entries[i].usedSinceConfirmed = true
        return entries[i].mac
    }

    /// Queues a packet for `address` (unresolved): `write` fills a pool buffer and returns the
    /// frame length. Creates the entry, and asks for a first request, when there is none.
    public func enqueue(
        for address: IPAddress, now: Instant, write: (UnsafeMutableRawBufferPointer) -> Int
    ) -> EnqueueResult {
        var start = false
        let slot: Int32
        if let existing = find(address) {
            slot = existing
        } else {
            guard let created = insert(address) else { return .cacheFull }
            slot = created
            entries[Int(slot)].requestsSent = 1
            entries[Int(slot)].nextRequest = now + retryInterval
            nextDeadline = min(nextDeadline, entries[Int(slot)].nextRequest)
            start = true
        }
        let i = Int(slot)
        guard entries[i].pendingCount < pendingPerAddress, let frame = freeFrames.popLast() else { return .overflow }
        let length = write(
            UnsafeMutableRawBufferPointer(start: pool + Int(frame) * frameCapacity, count: frameCapacity))
        guard length > 0 else {
            freeFrames.append(frame)
            return .queued(startResolution: start)
        }
        frameLengths[Int(frame)] = length
        nextFrame[Int(frame)] = -1
        if entries[i].pendingTail >= 0 {
            nextFrame[Int(entries[i].pendingTail)] = frame
        } else {
            entries[i].pendingHead = frame
        }
        entries[i].pendingTail = frame
        entries[i].pendingCount += 1
        return .queued(startResolution: start)
    }

    /// Calls `body` with every address that has packets waiting for resolution.
    public func forEachUnresolved(_ body: (IPAddress) -> Void) {
        for entry in entries where entry.live && entry.pendingCount > 0 { body(entry.address) }
    }

    /// Records `address` at `mac` (from a reply or a request for us). With `create` false only
    /// an existing entry is updated (RFC 826's merge for packets not aimed at us). Waiting frames
    /// are handed to `flush` in order, then freed. Returns true when the address was known or added.
    @discardableResult
    public func learn(
        _ address: IPAddress, mac: MACAddress, now: Instant, create: Bool,
        flush: (UnsafeMutableRawBufferPointer) -> Void
    ) -> Bool {
        let slot: Int32
        if let existing = find(address) {
            slot = existing
        } else {
            guard create, let created = insert(address) else { return false }
            slot = created
        }
        let i = Int(slot)
        entries[i].mac = mac
        entries[i].state = .reachable
        entries[i].confirmed = now
        entries[i].usedSinceConfirmed = false
        entries[i].requestsSent = 0
        entries[i].nextRequest = .never
        nextDeadline = min(nextDeadline, now + lifetime)
        var frame = entries[i].pendingHead
        while frame >= 0 {
            flush(
                UnsafeMutableRawBufferPointer(start: pool + Int(frame) * frameCapacity, count: frameLengths[Int(frame)])
            )
            let next = nextFrame[Int(frame)]
            freeFrames.append(frame)
            frame = next
        }
        entries[i].pendingHead = -1
        entries[i].pendingTail = -1
        entries[i].pendingCount = 0
        return true
    }

    /// Runs the timers: re-sends requests (through `request`), re-resolves aged entries still in
    /// use, forgets idle aged ones, and gives up on addresses that never answered. Returns how
    /// many waiting packets were dropped.
    public func expire(now: Instant, request: (IPAddress) -> Void) -> Int {
        guard now >= nextDeadline else { return 0 }
        var dropped = 0
        var earliest = Instant.never
        for i in entries.indices where entries[i].live {
            switch entries[i].state {
            case .reachable:
                if now >= entries[i].confirmed + lifetime {
                    if entries[i].usedSinceConfirmed {
                        entries[i].state = .probing
                        entries[i].requestsSent = 1
                        entries[i].nextRequest = now + retryInterval
                        request(entries[i].address)
                    } else {
                        remove(Int32(i))
                        continue
                    }
                }
            case .incomplete, .probing:
                if now >= entries[i].nextRequest {
                    if entries[i].requestsSent >= retries {
                        dropped += entries[i].pendingCount
                        remove(Int32(i))
                        continue
                    }
                    entries[i].requestsSent += 1
                    entries[i].nextRequest = now + retryInterval
                    request(entries[i].address)
                }
            }
            earliest = min(earliest, deadline(of: i))
        }
        nextDeadline = earliest
        return dropped
    }

    func deadline(of i: Int) -> Instant {
        entries[i].state == .reachable ? entries[i].confirmed + lifetime : entries[i].nextRequest
    }

    @inline(__always)
    func find(_ address: IPAddress) -> Int32? {
        if memoEntry >= 0 && memoAddress == address && entries[Int(memoEntry)].live { return memoEntry }
        guard let slot = index[address] else { return nil }
        memoAddress = address
        memoEntry = slot
        return slot
    }

    func insert(_ address: IPAddress) -> Int32? {
        let slot: Int32
        if let free = freeEntries.popLast() {
            slot = free
            entries[Int(slot)] = Entry(address: address)
        } else {
            guard entries.count < capacity else { return nil }
            slot = Int32(entries.count)
            entries.append(Entry(address: address))
        }
        index[address] = slot
        return slot
    }

    func remove(_ slot: Int32) {
        let i = Int(slot)
        var frame = entries[i].pendingHead
        while frame >= 0 {
            let next = nextFrame[Int(frame)]
            freeFrames.append(frame)
            frame = next
        }
        entries[i].pendingHead = -1
        entries[i].pendingTail = -1
        entries[i].pendingCount = 0
        entries[i].live = false
        index.removeValue(forKey: entries[i].address)
        if memoEntry == slot { memoEntry = -1 }
        freeEntries.append(slot)
    }
}
