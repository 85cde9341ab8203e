import PacketIO
import TCP
import Telemetry
import Wire

/// One per-core TCP/IP stack instance over one `PacketIO` queue: ARP, routes, ICMP echo, the
/// TCP flow table, and the socket and epoll API. Only its owning thread may touch it.
///
/// Each `poll(now:)` runs one loop round: a receive burst, every frame processed, TCP output
/// built straight into transmit buffers, ARP timers, one flush.
public final class NetworkStack<IO: PacketIO> {
    public let io: IO
    /// The link fills in TCP checksums (DPDK ports that offer it): frames leave without one.
    let transmitChecksumOffload: Bool
    public let configuration: StackConfiguration
    public let endpoint: TCPEndpoint
    public let arp: ARPCache
    public internal(set) var statistics = StackStatistics()
    /// The injected clock (CLOCK_MONOTONIC by default; tests drive simulated time).
    public let clock: () -> Instant
    /// When set, blocking calls call this instead of sleeping in poll(2), with the instant
    /// they would sleep until; tests use it to run the peer and advance simulated time.
    public var waitHook: ((Instant) -> Void)?
    /// Where the stack writes its rare diagnostic lines (one per unknown socket option).
    public var log: (String) -> Void = { print("mtcp-stack: \($0)") }

    /// The time of the current loop round.
    var now = Instant.zero
    /// The link vouches for the checksum of the frame being received (`PacketIO`); false for
    /// frames from anywhere else (parked SYNs, handovers).
    var checksumVerified = false
    var identification: UInt16 = 0
    let macAddress: MACAddress
    /// fe80:: with the MAC's interface identifier, ours whenever IPv6 is configured.
    public let linkLocalAddress: IPAddress
    /// IPv6 is on: an address was configured.
    public let ipv6Enabled: Bool
    /// Duplicate address detection of each of our IPv6 addresses (RFC 4862 5.4).
    var addressStates: [IPAddress: AddressState] = [:]
    /// The router learned from an advertisement (used when no IPv6 gateway is configured),
    /// and until when its advertisement holds.
    var advertisedRouter: (address: IPAddress, until: Instant)?
    /// When the running duplicate address detection ends (`.never`: none runs).
    var addressDetectionDeadline = Instant.never

    var sockets = SocketTable()
    var listenerByKey: [ListenerKey: Int32] = [:]
    /// Bound sockets per local port, for EADDRINUSE.
    var boundPorts: [UInt16: Int] = [:]
    /// The socket holding each endpoint slot's connection, -1 for none.
    var ownerBySlot: [Int32] = []
    var nextEphemeralPort: UInt16 = 61000
    var epolls: [EventPollSet?] = []
    var freeEpolls: [Int32] = []
    var loggedOptions: Set<Int64> = []
    /// Neighbours shared with the process's other instances (nil: this instance is alone).
    public var sharedNeighbours: SharedNeighbours?
    var sharedNeighboursSeen: UInt64 = 0
    /// Port ownership shared with forked processes (nil: this process is alone on the link).
    public var portClaims: PortClaims?
    /// This instance's place among instances that share a link (a port-sum fanout group or
    /// RSS queues): active opens pick local ports whose replies come back here, as mTCP picked
    /// ports by RSS hash. nil: any port.
    public var activeOpenSteering: ActiveOpenSteering?
    /// Kernel steering of this instance's flows (nil: alone on the link, or port claims).
    public internal(set) var flowSteering: FlowSteering?
    /// Parked SYNs handed to this instance, for the next round; when the primary's duties are next due.
    var parkedArrivals: [[UInt8]] = []
    var nextSteeringDuty = Instant.zero
    /// Sockets holding each claimed port, so that the claim goes back with the last of them.
    var claimUsers: [UInt16: Int] = [:]
    /// Where every frame received and sent is copied for a capture file (nil: no capture).
    public internal(set) var capture: CaptureRing?
    /// CLOCK_REALTIME minus the clock's time, for capture timestamps.
    var realtimeOffset: UInt64 = 0
    /// This instance's block of the process's statistics region (nil: none).
    public internal(set) var statisticsSlot: StatsInstanceSlot?
    /// What the region last saw (`publishStatistics`).
    var publishedActivity = -1
    var nextCountersPublication = Instant.zero
    /// Per-connection counters of released and live connections, added up with each socket
    /// table publication (one pass over the connections, not one per counter publication).
    var connectionTotals = TCPConnectionStatistics()
    var nextSocketsPublication = Instant.zero

    /// A stack on `io` with `configuration`; `secret` keys ISNs and SYN cookies (random when nil).
    public init(
        io: IO, configuration: StackConfiguration, secret: (UInt64, UInt64)? = nil,
        clock: @escaping () -> Instant = MonotonicClock.now
    ) {
        self.io = io
        transmitChecksumOffload = io.transmitChecksumOffload
        var configuration = configuration
        // A segment plus IPv4 and TCP headers (with timestamps) must fit in one frame.
        configuration.tcp.maximumSegmentSize = min(configuration.tcp.maximumSegmentSize, io.mtu - 40)
        self.configuration = configuration
        macAddress = io.macAddress
        linkLocalAddress = IPAddress.linkLocal(for: io.macAddress)
        ipv6Enabled = configuration.ipv6 != nil
        let key = secret ?? (UInt64.random(in: 0...UInt64.max), UInt64.random(in: 0...UInt64.max))
        endpoint = TCPEndpoint(configuration: configuration.tcp, secret: key)
        arp = ARPCache(
            lifetime: configuration.arpEntryLifetime, retryInterval: configuration.arpRetryInterval,
            retries: configuration.arpRetries, pendingPerAddress: configuration.pendingPacketsPerAddress,
            poolSize: configuration.pendingPoolSize, capacity: configuration.arpCacheCapacity,
            frameCapacity: io.mtu + EthernetHeader.length)
        self.clock = clock
        now = clock()
    }

    /// One loop round at the injected clock's time.
    public func poll() { poll(now: clock()) }

    /// One loop round: receive burst → process → TCP output → ARP timers → one flush → events.
    public func poll(now: Instant) {
        self.now = now
        var sink = FrameSink(stack: self)
        if let steering = flowSteering { runSteeringDuties(steering) }
        // Output the application queued since the last round goes first: a segment arriving
        // now (data after a close, which resets) must not overtake what was written before
        // it. The kernel sends at write time; a caller that batches writes (the preload
        // library) sends at the next round.
        if endpoint.hasQueuedOutput { endpoint.poll(now: now, into: &sink) }
        _ = io.receive(limit: configuration.receiveBurst) { frame in
            checksumVerified = io.receivedChecksumVerified
            receiveFrame(frame)
        }
        checksumVerified = false
        endpoint.poll(now: now, into: &sink)
        if let shared = sharedNeighbours, arp.pendingFrames > 0, shared.version != sharedNeighboursSeen {
            adoptSharedNeighbours(shared)
        }
        let dropped = arp.expire(now: now) { address in requestResolution(of: address) }
        if ipv6Enabled && now >= addressDetectionDeadline { finishAddressDetection() }
        statistics.arpResolutionFailures += dropped
        io.flush()
        endpoint.drainEvents { event in dispatch(event) }
        if let slot = statisticsSlot { publishStatistics(slot) }
    }

    /// The next instant a loop round has timer work (`.zero`: now; `.never`: only on input).
    public var nextDeadline: Instant {
        var stack = min(endpoint.nextDeadline, arp.nextDeadline, addressDetectionDeadline)
        // What changed since the statistics region was last written gets there when things go quiet.
        if statisticsSlot != nil && activity != publishedActivity { stack = min(stack, nextSocketsPublication) }
        // The primary sweeps dead processes even while its application sleeps watching the
        // link: their peers' segments come to nobody until it does, and are never answered.
        if let steering = flowSteering, steering.isPrimary { stack = min(stack, nextSteeringDuty) }
        if sharedNeighbours != nil && arp.pendingFrames > 0 {
            // The reply may reach a sibling instance (fanout sends ARP to one member): look at
            // what the siblings learned again soon rather than at the next ARP retry.
            stack = min(stack, now + .milliseconds(1))
        }
        guard let release = io.nextReleaseTime else { return stack }
        return min(stack, Instant(nanoseconds: release))
    }

    /// The next hop for `destination`: itself when on-link, else the gateway.
    public func route(to destination: IPv4Address) throws(Errno) -> IPv4Address {
        guard configuration.hasIPv4 else { throw .ENETUNREACH }
        if configuration.isOnLink(destination) { return destination }
        guard let gateway = configuration.gateway else { throw .ENETUNREACH }
        guard configuration.isOnLink(gateway) else { throw .EHOSTUNREACH }
        return gateway
    }

    /// The next hop for a destination of either family; an IPv6 one goes to the configured
    /// gateway, else to the router that advertised itself.
    public func route(to destination: IPAddress) throws(Errno) -> IPAddress {
        if let v4 = destination.ipv4 { return IPAddress(try route(to: v4)) }
        guard ipv6Enabled, let interface = configuration.ipv6 else { throw .ENETUNREACH }
        if interface.isOnLink(destination) { return destination }
        if let gateway = interface.gateway { return gateway }
        if let router = advertisedRouter, router.until > now { return router.address }
        throw .ENETUNREACH
    }

    /// Our address for talking to `destination` (RFC 6724 in brief: a link-local peer gets
    /// our link-local address, any other our global one), or the address a socket is bound to.
    func sourceAddress(for destination: IPAddress, boundTo bound: IPAddress = .unspecified) throws(Errno) -> IPAddress {
        if !bound.isUnspecified {
            guard bound.isIPv4 == destination.isIPv4 else { throw .ENETUNREACH }
            return bound
        }
        if destination.isIPv4 {
            guard configuration.hasIPv4 else { throw .ENETUNREACH }
            return IPAddress(configuration.address)
        }
        guard ipv6Enabled else { throw .ENETUNREACH }
        // An address duplicate address detection found in use is never a source (RFC 4862 5.4.5).
        if destination.isLinkLocal {
            guard ownsIPv6(linkLocalAddress) else { throw .EADDRNOTAVAIL }
            return linkLocalAddress
        }
        guard let global = configuration.ipv6?.address, ownsIPv6(global) else { throw .EADDRNOTAVAIL }
        return global
    }

    /// The socket whose listener takes new connections of `flow` (its family's, or the port's
    /// dual-stack one), if any.
    func listener(for flow: TCPFlow) -> Int32? {
        endpoint.listenerKey(for: flow).flatMap { listenerByKey[$0] }
    }

    /// The socket listening on `port` for either family (IPv4 first), if any.
    func listener(onPort port: UInt16) -> Int32? {
        listenerByKey[ListenerKey(port: port, family: .ipv4)] ?? listenerByKey[ListenerKey(port: port, family: .dual)]
            ?? listenerByKey[ListenerKey(port: port, family: .ipv6)]
    }

    /// Announces our address with a gratuitous ARP request (e.g. after start-up), and starts
    /// duplicate address detection of our IPv6 addresses.
    public func announce() {
        if ipv6Enabled { startAddressDetection() }
        guard configuration.hasIPv4, !configuration.kernelSharesAddress else {
            io.flush()
            return
        }
        sendARP(
            ARPPacket(
                operation: ARPPacket.request, senderMAC: macAddress, senderIP: configuration.address,
                targetMAC: .zero, targetIP: configuration.address), to: .broadcast)
        io.flush()
    }

    /// Takes neighbours the kernel has resolved on this interface (shared mode: the kernel and
    /// the stack talk to the same peers from the same address and MAC).
    public func adoptKernelNeighbours(_ neighbours: [(IPv4Address, MACAddress)]) {
        for (address, mac) in neighbours where configuration.isOnLink(address) || address == configuration.gateway {
            learnNeighbour(IPAddress(address), mac: mac, create: true)
        }
    }

    /// Resolves waiting addresses that a sibling instance has learned meanwhile.
    func adoptSharedNeighbours(_ shared: SharedNeighbours) {
        sharedNeighboursSeen = shared.version
        var resolved: [(IPAddress, MACAddress)] = []
        arp.forEachUnresolved { address in
            if let mac = shared.lookup(address) { resolved.append((address, mac)) }
        }
        for (address, mac) in resolved {
            arp.learn(address, mac: mac, now: now, create: false) { frame in flushPending(frame, to: mac) }
        }
    }
}
