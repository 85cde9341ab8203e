/// A sender-side congestion control algorithm (RFC 5681 family), driven by the TCP state
/// machine. All byte counts are in bytes; `mss` is the sender's maximum segment size (SMSS).
///
/// The state machine owns loss recovery itself (RFC 6582 / RFC 6675): it calls
/// `onCongestionEvent` when it enters fast recovery, may read and write `congestionWindow`
/// while recovering (window inflation), and calls `onRecoveryExit` when recovery ends.
/// `onAcknowledged` is only called for acknowledgments outside loss recovery.
public protocol CongestionControl: Sendable {
    /// The name Linux uses for this algorithm in TCP_CONGESTION ("reno", "cubic").
    static var name: String { get }

    /// The congestion window (cwnd) in bytes.
    var congestionWindow: Int { get set }
    /// The slow start threshold (ssthresh) in bytes; `Int.max / 2` stands for "infinite".
    var slowStartThreshold: Int { get set }

    /// Starts with cwnd = `initialWindow` (RFC 6928) and an infinite ssthresh.
    init(mss: Int, initialWindow: Int)

    /// New data was cumulatively acknowledged outside loss recovery.
    /// `flightSize` is the amount of outstanding data before this acknowledgment.
    mutating func onAcknowledged(
        bytes: Int, flightSize: Int, now: Instant, smoothedRTT: Interval?, minimumRTT: Interval?)

    /// Loss was detected by duplicate acknowledgments or SACK: reduce ssthresh and cwnd.
    mutating func onCongestionEvent(flightSize: Int, now: Instant)

    /// The retransmission timer expired: reduce ssthresh and fall back to the loss window.
    mutating func onRetransmissionTimeout(flightSize: Int, now: Instant)

    /// Fast recovery ended (a full acknowledgment arrived): deflate cwnd to ssthresh.
    mutating func onRecoveryExit(now: Instant)

    /// The connection restarts sending after an idle period longer than `rto` (RFC 5681 4.1).
    /// The caller decides that the idle period was long enough.
    mutating func onIdleRestart(now: Instant, rto: Interval)
}

extension CongestionControl {
    /// The "infinite" initial ssthresh: half of Int.max, so that sums of windows cannot overflow.
    public static var infiniteSlowStartThreshold: Int { Int.max / 2 }

    /// True while cwnd is below ssthresh.
    public var inSlowStart: Bool { congestionWindow < slowStartThreshold }

    /// True when the sender is limited by cwnd rather than by the application.
    /// RFC 7661 (in spirit): cwnd grows only if at least half of it was in use, so an
    /// application-limited sender does not build up a window it never validated.
    @inline(__always)
    static func isWindowLimited(flightSize: Int, congestionWindow: Int) -> Bool {
        flightSize >= congestionWindow / 2
    }
}
