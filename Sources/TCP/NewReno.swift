/// NewReno congestion control (RFC 5681 slow start and congestion avoidance, RFC 6582
/// reductions). Slow start uses Appropriate Byte Counting with L = 1 SMSS (RFC 3465,
/// RFC 5681 3.1); congestion avoidance counts bytes, adding one SMSS per cwnd acknowledged.
public struct NewReno: CongestionControl {
    public static var name: String { "reno" }

    public var congestionWindow: Int
    public var slowStartThreshold: Int
    /// The sender's maximum segment size.
    public let mss: Int
    /// The initial window, also the restart window after idle (RFC 5681 4.1).
    public let initialWindow: Int
    /// Bytes acknowledged in congestion avoidance since cwnd last grew (byte counting).
    private var bytesAckedInAvoidance = 0

    public init(mss: Int, initialWindow: Int) {
        self.mss = max(mss, 1)
        self.initialWindow = max(initialWindow, self.mss)
        congestionWindow = self.initialWindow
        slowStartThreshold = Self.infiniteSlowStartThreshold
    }

    public mutating func onAcknowledged(
        bytes: Int, flightSize: Int, now: Instant, smoothedRTT: Interval?, minimumRTT: Interval?
    ) {
        guard bytes > 0, Self.isWindowLimited(flightSize: flightSize, congestionWindow: congestionWindow) else {
            return
        }
        if inSlowStart {
            congestionWindow += min(bytes, mss)
            return
        }
        // RFC 5681 3.1 byte counting: one SMSS per window's worth of acknowledged bytes.
        bytesAckedInAvoidance += bytes
        if bytesAckedInAvoidance >= congestionWindow {
            bytesAckedInAvoidance -= congestionWindow
            congestionWindow += mss
        }
    }

    public mutating func onCongestionEvent(flightSize: Int, now: Instant) {
        slowStartThreshold = Self.reducedThreshold(flightSize: flightSize, mss: mss)
        congestionWindow = slowStartThreshold
        bytesAckedInAvoidance = 0
    }

    public mutating func onRetransmissionTimeout(flightSize: Int, now: Instant) {
        slowStartThreshold = Self.reducedThreshold(flightSize: flightSize, mss: mss)
        congestionWindow = mss
        bytesAckedInAvoidance = 0
    }

    public mutating func onRecoveryExit(now: Instant) {
        // RFC 6582 3.2 step 3, option 1: deflate to ssthresh.
        congestionWindow = slowStartThreshold
        bytesAckedInAvoidance = 0
    }

    public mutating func onIdleRestart(now: Instant, rto: Interval) {
        congestionWindow = min(initialWindow, congestionWindow)
        bytesAckedInAvoidance = 0
    }

    /// RFC 5681 equation (4): ssthresh = max(FlightSize / 2, 2 * SMSS).
    static func reducedThreshold(flightSize: Int, mss: Int) -> Int {
        max(flightSize / 2, 2 * mss)
    }
}
