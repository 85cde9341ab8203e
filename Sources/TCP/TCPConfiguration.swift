/// Per-connection settings. Defaults follow Linux where an RFC leaves a choice.
public struct TCPConfiguration: Sendable {
    /// The MSS we announce: the largest payload we accept (MTU 1500 - 40).
    public var maximumSegmentSize: Int = 1460
    public var receiveBufferSize: Int = 256 * 1024
    public var sendBufferSize: Int = 256 * 1024
    public var windowScaling: Bool = true
    public var timestamps: Bool = true
    public var selectiveAcknowledgments: Bool = true
    public var congestionAlgorithm: CongestionAlgorithm = .reno
    /// RFC 6928 initial window, in segments.
    public var initialWindowSegments: Int = 10
    public var initialRTO: Interval = .seconds(1)
    public var minimumRTO: Interval = .milliseconds(200)
    public var maximumRTO: Interval = .seconds(120)
    /// Consecutive retransmission timeouts before ETIMEDOUT (Linux tcp_retries2).
    public var maximumRetransmissions: Int = 15
    /// SYN or SYN-ACK retransmissions before ETIMEDOUT (Linux tcp_syn_retries).
    public var maximumSYNRetransmissions: Int = 6
    /// 2*MSL: how long TIME-WAIT lasts.
    public var timeWaitDuration: Interval = .seconds(60)
    /// How long an orphaned connection may sit in FIN-WAIT-2 (Linux tcp_fin_timeout).
    public var finWait2Timeout: Interval = .seconds(60)
    public var delayedAcknowledgments: Bool = true
    /// At most this long before a delayed ACK goes out (RFC 9293 requires < 0.5 s; we use 40 ms).
    public var delayedAckTimeout: Interval = .milliseconds(40)
    /// TCP_NODELAY: when true, Nagle's algorithm is off.
    public var noDelay: Bool = false
    /// TCP_CORK: when true, only full segments go out (a partial one after `corkLimit`, or with
    /// FIN, or when uncorked).
    public var cork: Bool = false
    /// How long a corked partial segment may wait (Linux: 200 ms).
    public var corkLimit: Interval = .milliseconds(200)
    public var keepAlive: Bool = false
    public var keepAliveIdle: Interval = .seconds(7200)
    public var keepAliveInterval: Interval = .seconds(75)
    public var keepAliveCount: Int = 9
    /// RFC 5961 challenge ACKs allowed per connection per second.
    public var challengeAckLimit: Int = 100

    public init() {}
}
