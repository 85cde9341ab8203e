import TCP
import Wire

/// A deterministic network in simulated time: nodes exchange raw IPv4 or IPv6 packets over one-way links
/// whose delay, bandwidth, queueing and impairments follow a `LinkProfile`, all random choices
/// drawn from one seeded generator. The same seed and the same node behaviour give the same run.
public final class SimulatedNetwork {
    /// The current simulated time.
    public private(set) var now: Instant
    /// Packets whose destination address has no node, or no link from the sender to it.
    public private(set) var unroutable = 0
    /// Packets too short to carry their destination address (20 bytes for IPv4, 40 for IPv6).
    public private(set) var malformed = 0
    /// Called for every delivery with (arrival time, sending node's address, receiving node's address, size).
    public var tap: ((Instant, IPAddress, IPAddress, Int) -> Void)?

    /// How many consecutive steps may leave the clock where it is before it is pushed 1 µs forward.
    /// A node that keeps asking for a wake-up at or before `now` without making progress would
    /// otherwise spin forever at one instant; the push makes simulated time move on regardless.
    public static let maximumStepsWithoutAdvance = 100

    private var random: SeededRandom
    private var nodes: [any SimulatedNode] = []
    private var nodeAddresses: [IPAddress] = []
    private var nodeIndexByIdentity: [ObjectIdentifier: Int] = [:]
    private var nodeIndexByAddress: [IPAddress: Int] = [:]
    private var links: [Link] = []
    private var linkIndexByEnds: [LinkEnds: Int] = [:]
    private var events = EventQueue()
    /// Nodes that received a packet in the current step and so are owed a `transmit` call.
    private var receivedThisStep: [Bool] = []

    /// Creates an empty network whose clock starts at `start`.
    public init(seed: UInt64, start: Instant = .zero) {
        random = SeededRandom(seed: seed)
        now = start
    }

    /// Packets currently in flight (scheduled but not yet delivered).
    public var packetsInFlight: Int { events.count }

    /// Registers a node (idempotent). Two nodes must not share an address.
    public func add(_ node: any SimulatedNode) {
        _ = index(of: node)
    }

    /// Connects two nodes (adding them if needed) with a link in each direction.
    public func connect(_ a: any SimulatedNode, _ b: any SimulatedNode, aToB: LinkProfile, bToA: LinkProfile) {
        setProfile(from: a, to: b, aToB)
        setProfile(from: b, to: a, bToA)
    }

    /// Connects two nodes with the same profile in both directions.
    public func connect(_ a: any SimulatedNode, _ b: any SimulatedNode, profile: LinkProfile = .perfect) {
        connect(a, b, aToB: profile, bToA: profile)
    }

    /// Connects two nodes with the same profile in both directions (unlabelled spelling).
    public func connect(_ a: any SimulatedNode, _ b: any SimulatedNode, _ profile: LinkProfile) {
        connect(a, b, aToB: profile, bToA: profile)
    }

    /// Sets the profile of the link from `from` to `to`, creating the link if there is none.
    /// Packets already in flight keep their schedule; the transmitter's queue carries over.
    public func setProfile(from: any SimulatedNode, to: any SimulatedNode, _ profile: LinkProfile) {
        let ends = LinkEnds(from: index(of: from), to: index(of: to))
        if let existing = linkIndexByEnds[ends] {
            links[existing].profile = profile
        } else {
            linkIndexByEnds[ends] = links.count
            links.append(Link(ends: ends, profile: profile, lastDeparture: now))
        }
    }

    /// The profile of the link from `from` to `to`, or nil if they are not connected that way.
    public func profile(from: any SimulatedNode, to: any SimulatedNode) -> LinkProfile? {
        link(from: from, to: to).map { links[$0].profile }
    }

    /// Counters of the link from `from` to `to` (all zero if there is no such link).
    public func statistics(from: any SimulatedNode, to: any SimulatedNode) -> LinkStatistics {
        link(from: from, to: to).map { links[$0].statistics } ?? LinkStatistics()
    }

    /// Runs the event loop until `done()` holds (returns true), the deadline passes, or nothing can
    /// happen any more (returns false; `now` is then `deadline`, unless it was already later).
    ///
    /// First every node gets one `transmit` call at the current instant, so output queued between
    /// runs goes out. Then each step moves `now` to the earliest packet arrival or node wake-up
    /// (never backwards), delivers every packet due by then in (time, send order), calls `transmit`
    /// on each node that received something or whose wake-up is due (in the order nodes were added),
    /// and checks `done()`. Events at exactly `deadline` are processed.
    @discardableResult
    public func run(until deadline: Instant, stopWhen done: () -> Bool = { false }) -> Bool {
        if loop(deadline: deadline, done: done) { return true }
        if now < deadline { now = deadline }
        return false
    }

    /// Runs until no packet is in flight and no node wants a wake-up (returns true), or until the
    /// deadline passes (returns false, `now` is then `deadline`). Unlike `run`, an idle network
    /// leaves `now` at the last event.
    @discardableResult
    public func runUntilIdle(deadline: Instant) -> Bool {
        var idle = false
        _ = loop(deadline: deadline) {
            idle = self.events.isEmpty && self.earliestWakeup() == nil
            return idle
        }
        if !idle && now < deadline { now = deadline }
        return idle
    }

    // MARK: - Event loop

    /// The loop shared by `run` and `runUntilIdle`: true once `done()` holds, false when the
    /// deadline passes or nothing is left to do (in which case `now` is left at the last step).
    private func loop(deadline: Instant, done: () -> Bool) -> Bool {
        for node in 0..<nodes.count { transmit(node) }
        if done() { return true }
        var stepsWithoutAdvance = 0
        while true {
            var next = events.earliest
            if let wakeup = earliestWakeup(), next.map({ wakeup < $0 }) ?? true { next = wakeup }
            guard var target = next else { return false }
            if target <= now {
                target = now
                stepsWithoutAdvance += 1
                if stepsWithoutAdvance > Self.maximumStepsWithoutAdvance {
                    target = now + .microseconds(1)
                    stepsWithoutAdvance = 0
                }
            } else {
                stepsWithoutAdvance = 0
            }
            guard target <= deadline else { return false }
            now = target
            step()
            if done() { return true }
        }
    }

    /// Delivers everything due at `now`, then lets the nodes that have reason to do so transmit.
    private func step() {
        while let arrival = events.popDue(at: now) {
            deliver(arrival)
        }
        for node in 0..<nodes.count {
            let due = nodes[node].nextWakeup.map { $0 <= now } ?? false
            if receivedThisStep[node] || due {
                receivedThisStep[node] = false
                transmit(node)
            }
        }
    }

    private func deliver(_ arrival: PacketArrival) {
        let link = arrival.link
        links[link].statistics.delivered += 1
        links[link].statistics.bytesDelivered += arrival.bytes.count
        receivedThisStep[arrival.destination] = true
        if let tap {
            let ends = links[link].ends
            tap(now, nodeAddresses[ends.from], nodeAddresses[ends.to], arrival.bytes.count)
        }
        let node = nodes[arrival.destination]
        arrival.bytes.withUnsafeBytes { node.receive(packet: $0, now: now) }
    }

    private func transmit(_ node: Int) {
        nodes[node].transmit(now: now) { packet in self.send(packet, from: node) }
    }

    private func earliestWakeup() -> Instant? {
        var earliest: Instant?
        for node in nodes {
            if let wakeup = node.nextWakeup, earliest.map({ wakeup < $0 }) ?? true { earliest = wakeup }
        }
        return earliest
    }

    // MARK: - Links

    /// Routes a packet by its destination (IPv4: bytes 16..<20; IPv6: 24..<40) and schedules its arrival.
    private func send(_ packet: UnsafeRawBufferPointer, from sender: Int) {
        let ipv6 = packet.count > 0 && packet[0] >> 4 == 6
        guard packet.count >= (ipv6 ? 40 : 20) else {
            malformed += 1
            return
        }
        let destination =
            ipv6
            ? IPAddress.load(from: packet, at: 24)
            : IPAddress(
                IPv4Address(rawValue: UInt32(bigEndian: packet.loadUnaligned(fromByteOffset: 16, as: UInt32.self))))
        guard let receiver = nodeIndexByAddress[destination],
            let link = linkIndexByEnds[LinkEnds(from: sender, to: receiver)]
        else {
            unroutable += 1
            return
        }
        schedule(packet, on: link)
    }

    /// Applies the link's profile to one packet: oversize, loss, serialization queue, delay,
    /// jitter, reordering, corruption and duplication, in that order.
    private func schedule(_ packet: UnsafeRawBufferPointer, on link: Int) {
        let profile = links[link].profile
        links[link].statistics.sent += 1
        guard packet.count <= profile.mtu else {
            links[link].statistics.oversize += 1
            return
        }
        if random.chance(profile.lossRate) {
            links[link].statistics.dropped += 1
            return
        }
        guard let departure = links[link].depart(size: packet.count, now: now, profile: profile) else {
            links[link].statistics.queueDrops += 1
            return
        }
        var arrival = departure + profile.delay
        if profile.jitter > .zero {
            arrival = arrival + Interval(nanoseconds: random.uniform(0..<(profile.jitter.nanoseconds &+ 1)))
        }
        if random.chance(profile.reorderRate) {
            arrival = arrival + profile.reorderDelay
            links[link].statistics.reordered += 1
        }
        var bytes = Array(packet)
        if random.chance(profile.corruptRate), !bytes.isEmpty {
            let bit = Int(random.uniform(0..<UInt64(bytes.count * 8)))
            bytes[bit / 8] ^= UInt8(1) << UInt8(bit % 8)
            links[link].statistics.corrupted += 1
        }
        let destination = links[link].ends.to
        events.push(time: arrival, destination: destination, link: link, bytes: bytes)
        if random.chance(profile.duplicateRate) {
            // The copy trails the original by up to 100 µs, as a duplicate made further along the path would.
            let lag = Interval(nanoseconds: random.uniform(0..<100_001))
            events.push(time: arrival + lag, destination: destination, link: link, bytes: bytes)
            links[link].statistics.duplicated += 1
        }
    }

    // MARK: - Bookkeeping

    private func index(of node: any SimulatedNode) -> Int {
        let identity = ObjectIdentifier(node)
        if let existing = nodeIndexByIdentity[identity] { return existing }
        let address = node.address
        precondition(nodeIndexByAddress[address] == nil, "two simulated nodes share the address \(address)")
        let index = nodes.count
        nodes.append(node)
        nodeAddresses.append(address)
        receivedThisStep.append(false)
        nodeIndexByIdentity[identity] = index
        nodeIndexByAddress[address] = index
        return index
    }

    private func link(from: any SimulatedNode, to: any SimulatedNode) -> Int? {
        guard let a = nodeIndexByIdentity[ObjectIdentifier(from)], let b = nodeIndexByIdentity[ObjectIdentifier(to)]
        else { return nil }
        return linkIndexByEnds[LinkEnds(from: a, to: b)]
    }
}

/// The sending and receiving node indices of a one-way link.
struct LinkEnds: Hashable {
    var from: Int
    var to: Int
}

/// One direction of a link: its profile, its FIFO transmitter and its counters.
struct Link {
    var ends: LinkEnds
    var profile: LinkProfile
    /// When the transmitter finishes the last accepted packet.
    var lastDeparture: Instant
    /// Start-of-serialization times of accepted packets, oldest first, from `waitingHead` on.
    private var starts: [Instant] = []
    private var waitingHead = 0
    var statistics = LinkStatistics()

    init(ends: LinkEnds, profile: LinkProfile, lastDeparture: Instant) {
        self.ends = ends
        self.profile = profile
        self.lastDeparture = lastDeparture
    }

    /// Puts a packet through the transmitter: its departure time, or nil if it must be tail-dropped
    /// because `queueLimit` packets already wait behind the one being serialized.
    mutating func depart(size: Int, now: Instant, profile: LinkProfile) -> Instant? {
        guard profile.bitsPerSecond > 0 else { return now }
        // Forget packets whose serialization has begun: they no longer wait.
        while waitingHead < starts.count && starts[waitingHead] <= now { waitingHead += 1 }
        if waitingHead > 64 && waitingHead * 2 > starts.count {
            starts.removeFirst(waitingHead)
            waitingHead = 0
        }
        let start = max(now, lastDeparture)
        if start > now && starts.count - waitingHead >= profile.queueLimit { return nil }
        let bits = UInt64(size) * 8
        let serialization = (bits * 1_000_000_000 + profile.bitsPerSecond - 1) / profile.bitsPerSecond
        lastDeparture = start + Interval(nanoseconds: serialization)
        if start > now { starts.append(start) }
        return lastDeparture
    }
}
