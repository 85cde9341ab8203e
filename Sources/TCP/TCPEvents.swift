/// What changed on a connection since the owner last took its events; the stack turns
/// these into epoll readiness.
public struct TCPEvents: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The handshake completed.
    public static let connected = TCPEvents(rawValue: 1 << 0)
    /// New bytes can be read.
    public static let readable = TCPEvents(rawValue: 1 << 1)
    /// Send buffer space became free.
    public static let writable = TCPEvents(rawValue: 1 << 2)
    /// The peer sent FIN.
    public static let peerClosed = TCPEvents(rawValue: 1 << 3)
    /// The connection failed; see `TCPConnection.error`.
    public static let failed = TCPEvents(rawValue: 1 << 4)
    /// The connection reached CLOSED and its resources may be released.
    public static let closed = TCPEvents(rawValue: 1 << 5)
}

/// Per-connection counters, for tests, diagnostics and the stack's totals.
public struct TCPConnectionStatistics: Hashable, Sendable {
    public var segmentsReceived = 0
    public var segmentsSent = 0
    public var bytesReceived = 0
    public var bytesSent = 0
    public var retransmittedSegments = 0
    public var fastRetransmits = 0
    public var retransmissionTimeouts = 0
    public var duplicateAcks = 0
    public var outOfOrderSegments = 0
    public var unacceptableSegments = 0
    public var pawsRejected = 0
    public var challengeAcks = 0
    public var windowProbes = 0
    public var keepAliveProbes = 0
    public var rttSamples = 0
    /// Payload bytes that arrived beyond the window we offered and were trimmed away.
    public var outOfWindowBytes = 0
    public init() {}
}

extension TCPConnectionStatistics {
    /// Adds another connection's counters (the endpoint keeps totals of released connections).
    public mutating func add(_ other: TCPConnectionStatistics) {
        segmentsReceived += other.segmentsReceived
        segmentsSent += other.segmentsSent
        bytesReceived += other.bytesReceived
        bytesSent += other.bytesSent
        retransmittedSegments += other.retransmittedSegments
        fastRetransmits += other.fastRetransmits
        retransmissionTimeouts += other.retransmissionTimeouts
        duplicateAcks += other.duplicateAcks
        outOfOrderSegments += other.outOfOrderSegments
        unacceptableSegments += other.unacceptableSegments
        pawsRejected += other.pawsRejected
        challengeAcks += other.challengeAcks
        windowProbes += other.windowProbes
        keepAliveProbes += other.keepAliveProbes
        rttSamples += other.rttSamples
        outOfWindowBytes += other.outOfWindowBytes
    }

    /// One line of `key=value` pairs.
    public var summary: String {
        "tcp_retransmits=\(retransmittedSegments) tcp_fast_retransmits=\(fastRetransmits) tcp_timeouts=\(retransmissionTimeouts)"
            + " tcp_dup_acks=\(duplicateAcks) tcp_out_of_order=\(outOfOrderSegments) tcp_paws=\(pawsRejected)"
            + " tcp_challenge_acks=\(challengeAcks) tcp_window_probes=\(windowProbes)"
    }
}
