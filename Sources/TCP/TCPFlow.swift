import Wire

/// The 4-tuple that names a connection, from this host's point of view. IPv4 flows hold
/// v4-mapped addresses; both addresses of a flow are of one family.
public struct TCPFlow: Hashable, Sendable {
    public var localAddress: IPAddress
    public var localPort: UInt16
    public var remoteAddress: IPAddress
    public var remotePort: UInt16

    public init(localAddress: IPAddress, localPort: UInt16, remoteAddress: IPAddress, remotePort: UInt16) {
        self.localAddress = localAddress
        self.localPort = localPort
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
    }

    /// An IPv4 flow.
    public init(localAddress: IPv4Address, localPort: UInt16, remoteAddress: IPv4Address, remotePort: UInt16) {
        self.init(
            localAddress: IPAddress(localAddress), localPort: localPort, remoteAddress: IPAddress(remoteAddress),
            remotePort: remotePort)
    }

    /// True for an IPv4 flow.
    @inline(__always)
    public var isIPv4: Bool { remoteAddress.isIPv4 }

    /// The empty flow, for preallocated tables.
    public static let none = TCPFlow(
        localAddress: IPAddress.unspecified, localPort: 0, remoteAddress: IPAddress.unspecified, remotePort: 0)
}

/// Which arriving connections a listener takes: one family, or both (a socket bound to `::`
/// with IPV6_V6ONLY off). One port may have an IPv4 and an IPv6 listener side by side.
public enum ListenerFamily: Hashable, Sendable {
    case ipv4
    case ipv6
    case dual

    /// The family a listener bound to `address` serves.
    public init(address: IPAddress, v6Only: Bool) {
        if address.isIPv4 {
            self = .ipv4
        } else {
            self = address == .unspecified && !v6Only ? .dual : .ipv6
        }
    }

    /// Whether two listeners of these families can share a port.
    public func overlaps(_ other: ListenerFamily) -> Bool {
        self == .dual || other == .dual || self == other
    }
}

/// Names one listener of an endpoint: its port and the family it serves.
public struct ListenerKey: Hashable, Sendable {
    public var port: UInt16
    public var family: ListenerFamily

    public init(port: UInt16, family: ListenerFamily = .ipv4) {
        self.port = port
        self.family = family
    }
}

/// A handle to a connection in a `TCPEndpoint`. The generation makes a handle to a
/// released slot fail instead of reaching the slot's next occupant.
public struct ConnectionID: Hashable, Sendable {
    public var slot: Int32
    public var generation: UInt32
    public init(slot: Int32, generation: UInt32) {
        self.slot = slot
        self.generation = generation
    }
}

/// Where an endpoint puts outgoing segments, with the flow they belong to.
public protocol TCPEndpointSink {
    mutating func send(_ segment: TCPSegment, flow: TCPFlow)
}

/// Why an endpoint call was refused; `errno` gives Linux's value.
public enum TCPEndpointError: Error, Hashable, Sendable {
    /// The port is already bound by a listener or in use (EADDRINUSE).
    case addressInUse
    /// No ephemeral port is free for this destination (EADDRNOTAVAIL).
    case addressNotAvailable
    /// The connection table is full (ENOBUFS).
    case noBuffers
    /// The handle refers to no live connection (EBADF).
    case badHandle

    public var errno: Int32 {
        switch self {
        case .addressInUse: return 98
        case .addressNotAvailable: return 99
        case .noBuffers: return 105
        case .badHandle: return 9
        }
    }
}

/// Counters of everything an endpoint refused, answered or created.
public struct TCPEndpointStatistics: Hashable, Sendable {
    public var segmentsReceived = 0
    public var segmentsSent = 0
    public var resetsSentForUnknownFlows = 0
    public var segmentsToClosedPorts = 0
    public var synCookiesSent = 0
    public var synCookiesAccepted = 0
    public var synCookiesRejected = 0
    public var listenQueueOverflows = 0
    public var connectionTableFull = 0
    public var passiveOpens = 0
    public var activeOpens = 0
    public var connectionsReleased = 0
    public var timeWaitReused = 0
    /// New flows the registry refused: another process (or instance) owns the 4-tuple.
    public var flowsOwnedElsewhere = 0
    /// Segments for unknown flows not reset because another endpoint answers for the link.
    public var unknownSegmentsLeftToOthers = 0
    /// Connections never accepted given to another endpoint when their listener closed.
    public var handoversGiven = 0
    /// Connections taken over from another endpoint.
    public var handoversTaken = 0
    /// Segments of flows just handed over that reached this endpoint still: dropped.
    public var handedOverSegmentsDropped = 0
    public init() {}
}

/// What an endpoint reports to its owner after input or output.
public enum TCPEndpointEvent: Hashable, Sendable {
    /// Something changed on a connection the application holds.
    case connection(ConnectionID, TCPEvents)
    /// A listener has an established connection to accept.
    case acceptable(ListenerKey)
}

/// Where an endpoint records which flows are its own, when several share one link and the
/// kernel steers each flow's frames to its owner (`FlowSteering`). `claim` runs before a new
/// connection's first segment is sent (false: another owner has the flow, so the endpoint
/// leaves it alone); `release` when the connection is freed.
public struct TCPFlowRegistry {
    public var claim: (TCPFlow) -> Bool
    public var release: (TCPFlow) -> Void
    /// Gives a connection its application never accepted to another endpoint that listens on
    /// the port (true: the flow is theirs now). Nil: such connections are reset.
    public var handOver: ((TCPFlow, TCPHandover) -> Bool)?
    /// The handover made to this endpoint for a flow, taken (once).
    public var takeHandover: ((TCPFlow) -> TCPHandover?)?
    /// Every handover waiting for this endpoint, taken.
    public var pendingHandovers: (() -> [(TCPFlow, TCPHandover)])?
    /// Whether another endpoint listens on the port (it may accept there soon): connections a
    /// closed listener cannot hand over yet wait for it instead of being reset at once.
    public var othersListen: ((UInt16) -> Bool)?

    public init(
        claim: @escaping (TCPFlow) -> Bool, release: @escaping (TCPFlow) -> Void,
        handOver: ((TCPFlow, TCPHandover) -> Bool)? = nil, takeHandover: ((TCPFlow) -> TCPHandover?)? = nil,
        othersListen: ((UInt16) -> Bool)? = nil, pendingHandovers: (() -> [(TCPFlow, TCPHandover)])? = nil
    ) {
        self.othersListen = othersListen
        self.claim = claim
        self.release = release
        self.handOver = handOver
        self.takeHandover = takeHandover
        self.pendingHandovers = pendingHandovers
    }
}
