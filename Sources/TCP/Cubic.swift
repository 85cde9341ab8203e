/// CUBIC congestion control (RFC 9438). Windows inside the algorithm are in segments
/// (Double); `congestionWindow` is in bytes. Slow start is standard (no HyStart).
/// In congestion avoidance cwnd aims at W_cubic(t + RTT), RTT being the smoothed RTT (the
/// minimum RTT until one exists), and never falls below the Reno-friendly estimate W_est.
public struct Cubic: CongestionControl {
    public static var name: String { "cubic" }

    /// RFC 9438 4.1: C, in segments per second cubed.
    public static let c = 0.4
    /// RFC 9438 4.1: the multiplicative decrease factor.
    public static let beta = 0.7
    /// RFC 9438 4.3: the Reno-friendly additive increase, 3 * (1 - beta) / (1 + beta).
    static let alpha = 3 * (1 - beta) / (1 + beta)

    public var congestionWindow: Int
    public var slowStartThreshold: Int
    /// The sender's maximum segment size.
    public let mss: Int
    /// The initial window, also the restart window after idle (RFC 5681 4.1).
    public let initialWindow: Int

    /// W_max in segments: the window just before the last reduction (after fast convergence).
    private var windowMax = 0.0
    /// cwnd_prior in segments: cwnd when ssthresh was last set, for alpha's switch to 1.
    private var windowPrior = 0.0
    /// Start of the current congestion avoidance epoch; nil until the first ack in it.
    private var epochStart: Instant?
    /// K in seconds: when W_cubic reaches W_max again.
    private var k = 0.0
    /// The plateau the cubic curve is centred on for this epoch, in segments.
    private var origin = 0.0
    /// W_est in segments: the Reno-friendly estimate.
    private var renoEstimate = 0.0
    /// True after an RTO until the next epoch starts (RFC 9438 4.8: K = 0, W_max = cwnd).
    private var afterTimeout = false
    /// Sub-byte remainder of cwnd growth, so that small increments accumulate.
    private var pendingIncrease = 0.0

    public init(mss: Int, initialWindow: Int) {
        self.mss = max(mss, 1)
        self.initialWindow = max(initialWindow, self.mss)
        congestionWindow = self.initialWindow
        slowStartThreshold = Self.infiniteSlowStartThreshold
    }

    /// W_max in bytes (0 before the first congestion event).
    public var maximumWindow: Int { Int(windowMax * Double(mss)) }

    /// K in nanoseconds for the current epoch (nil outside congestion avoidance).
    public var timeToOrigin: Interval? {
        epochStart == nil ? nil : Interval(nanoseconds: UInt64(k * 1e9))
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
        let segmentSize = Double(mss)
        let cwnd = Double(congestionWindow) / segmentSize
        if epochStart == nil { startEpoch(now: now) }
        let t = Self.seconds(now - (epochStart ?? now))
        let rtt = Self.seconds(smoothedRTT ?? minimumRTT ?? .zero)

        // RFC 9438 4.3: the Reno-friendly estimate grows by alpha per window acknowledged;
        // alpha becomes 1 once W_est has reached the window before the last reduction.
        let alpha = renoEstimate >= windowPrior ? 1.0 : Self.alpha
        renoEstimate += alpha * (Double(bytes) / segmentSize) / cwnd

        let growth: Double
        if cubicWindow(at: t) < renoEstimate {
            // Reno-friendly region: follow W_est.
            growth = (renoEstimate - cwnd) * segmentSize
        } else {
            // Concave and convex regions: aim at W_cubic one RTT ahead, clamped to [cwnd, 1.5 cwnd].
            let target = min(max(cubicWindow(at: t + rtt), cwnd), 1.5 * cwnd)
            growth = (target - cwnd) / cwnd * Double(bytes)
        }
        guard growth > 0 else { return }
        pendingIncrease += growth
        let whole = Int(pendingIncrease)
        congestionWindow += whole
        pendingIncrease -= Double(whole)
    }

    public mutating func onCongestionEvent(flightSize: Int, now: Instant) {
        reduce(flightSize: flightSize)
        congestionWindow = slowStartThreshold
    }

    public mutating func onRetransmissionTimeout(flightSize: Int, now: Instant) {
        // RFC 9438 4.8: ssthresh as for a fast retransmit (beta), cwnd to the loss window.
        reduce(flightSize: flightSize)
        congestionWindow = mss
        afterTimeout = true
    }

    public mutating func onRecoveryExit(now: Instant) {
        congestionWindow = slowStartThreshold
        startEpoch(now: now)
    }

    public mutating func onIdleRestart(now: Instant, rto: Interval) {
        congestionWindow = min(initialWindow, congestionWindow)
        // The idle time must not count as epoch time; the next ack in avoidance restarts it.
        epochStart = nil
        pendingIncrease = 0
    }

    /// RFC 9438 4.6 and 4.7: remember W_max (with fast convergence) and set ssthresh.
    private mutating func reduce(flightSize: Int) {
        let segmentSize = Double(mss)
        let cwnd = Double(congestionWindow) / segmentSize
        // Fast convergence: a flow whose window keeps shrinking releases bandwidth faster.
        windowMax = cwnd < windowMax ? cwnd * (1 + Self.beta) / 2 : cwnd
        windowPrior = cwnd
        let reduced = Int(Double(flightSize) * Self.beta)
        slowStartThreshold = max(reduced, 2 * mss)
        epochStart = nil
        pendingIncrease = 0
    }

    /// RFC 9438 4.2: a new congestion avoidance epoch starts at the current window.
    private mutating func startEpoch(now: Instant) {
        let cwnd = Double(congestionWindow) / Double(mss)
        epochStart = now
        pendingIncrease = 0
        renoEstimate = cwnd
        if afterTimeout || cwnd >= windowMax {
            // Already at or above the old maximum (or the first epoch after an RTO):
            // the curve starts at its plateau and is convex from here.
            afterTimeout = false
            k = 0
            origin = cwnd
            windowMax = max(windowMax, cwnd)
        } else {
            k = Self.cubeRoot((windowMax - cwnd) / Self.c)
            origin = windowMax
        }
    }

    /// W_cubic(t) = C * (t - K)^3 + W_max, in segments.
    private func cubicWindow(at t: Double) -> Double {
        let d = t - k
        return Self.c * d * d * d + origin
    }

    private static func seconds(_ interval: Interval) -> Double {
        Double(interval.nanoseconds) / 1e9
    }

    /// The real cube root by Newton's method (the standard library has no cbrt without libm).
    /// Deterministic and exact to within a few ulps.
    public static func cubeRoot(_ x: Double) -> Double {
        guard x.isFinite, x != 0 else { return x }
        if x < 0 { return -cubeRoot(-x) }
        // Start above the root: x < 2^(e+1), so cbrt(x) < 2^((e+1)/3) <= 2^(e/3 + 1).
        var y = Double(sign: .plus, exponent: x.exponent / 3 + 1, significand: 1)
        // From above, Newton's iterates decrease monotonically to the root; stop when they stop.
        for _ in 0..<100 {
            let next = (2 * y + x / (y * y)) / 3
            if next >= y { break }
            y = next
        }
        return y
    }
}
