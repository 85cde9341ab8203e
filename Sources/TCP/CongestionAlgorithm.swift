/// The congestion control algorithms a connection can be configured with.
public enum CongestionAlgorithm: String, CaseIterable, Sendable {
    case reno
    case cubic
}

/// One connection's congestion controller: the configured algorithm held by value and
/// dispatched with a switch, so the hot path uses no existentials.
public struct CongestionController: Sendable {
    private enum State: Sendable {
        case reno(NewReno)
        case cubic(Cubic)
    }

    private var state: State

    /// The "infinite" initial ssthresh (see `CongestionControl.infiniteSlowStartThreshold`).
    public static var infiniteSlowStartThreshold: Int { NewReno.infiniteSlowStartThreshold }

    /// A controller running `algorithm`, starting with cwnd = `initialWindow` bytes.
    public init(algorithm: CongestionAlgorithm, mss: Int, initialWindow: Int) {
        switch algorithm {
        case .reno: state = .reno(NewReno(mss: mss, initialWindow: initialWindow))
        case .cubic: state = .cubic(Cubic(mss: mss, initialWindow: initialWindow))
        }
    }

    /// The algorithm this controller runs.
    public var algorithm: CongestionAlgorithm {
        switch state {
        case .reno: .reno
        case .cubic: .cubic
        }
    }

    /// The algorithm's TCP_CONGESTION name.
    public var name: String {
        switch state {
        case .reno: NewReno.name
        case .cubic: Cubic.name
        }
    }

    /// The congestion window (cwnd) in bytes.
    public var congestionWindow: Int {
        get {
            switch state {
            case .reno(let r): r.congestionWindow
            case .cubic(let c): c.congestionWindow
            }
        }
        set {
            switch state {
            case .reno(var r):
                r.congestionWindow = newValue
                state = .reno(r)
            case .cubic(var c):
                c.congestionWindow = newValue
                state = .cubic(c)
            }
        }
    }

    /// The slow start threshold (ssthresh) in bytes.
    public var slowStartThreshold: Int {
        get {
            switch state {
            case .reno(let r): r.slowStartThreshold
            case .cubic(let c): c.slowStartThreshold
            }
        }
        set {
            switch state {
            case .reno(var r):
                r.slowStartThreshold = newValue
                state = .reno(r)
            case .cubic(var c):
                c.slowStartThreshold = newValue
                state = .cubic(c)
            }
        }
    }

    /// True while cwnd is below ssthresh.
    public var inSlowStart: Bool { congestionWindow < slowStartThreshold }

    /// See `CongestionControl.onAcknowledged`.
    public mutating func onAcknowledged(
        bytes: Int, flightSize: Int, now: Instant, smoothedRTT: Interval?, minimumRTT: Interval?
    ) {
        switch state {
        case .reno(var r):
            r.onAcknowledged(
                bytes: bytes, flightSize: flightSize, now: now, smoothedRTT: smoothedRTT, minimumRTT: minimumRTT)
            state = .reno(r)
        case .cubic(var c):
            c.onAcknowledged(
                bytes: bytes, flightSize: flightSize, now: now, smoothedRTT: smoothedRTT, minimumRTT: minimumRTT)
            state = .cubic(c)
        }
    }

    /// See `CongestionControl.onCongestionEvent`.
    public mutating func onCongestionEvent(flightSize: Int, now: Instant) {
        switch state {
        case .reno(var r):
            r.onCongestionEvent(flightSize: flightSize, now: now)
            state = .reno(r)
        case .cubic(var c):
            c.onCongestionEvent(flightSize: flightSize, now: now)
            state = .cubic(c)
        }
    }

    /// See `CongestionControl.onRetransmissionTimeout`.
    public mutating func onRetransmissionTimeout(flightSize: Int, now: Instant) {
        switch state {
        case .reno(var r):
            r.onRetransmissionTimeout(flightSize: flightSize, now: now)
            state = .reno(r)
        case .cubic(var c):
            c.onRetransmissionTimeout(flightSize: flightSize, now: now)
            state = .cubic(c)
        }
    }

    /// See `CongestionControl.onRecoveryExit`.
    public mutating func onRecoveryExit(now: Instant) {
        switch state {
        case .reno(var r):
            r.onRecoveryExit(now: now)
            state = .reno(r)
        case .cubic(var c):
            c.onRecoveryExit(now: now)
            state = .cubic(c)
        }
    }

    /// See `CongestionControl.onIdleRestart`.
    public mutating func onIdleRestart(now: Instant, rto: Interval) {
        switch state {
        case .reno(var r):
            r.onIdleRestart(now: now, rto: rto)
            state = .reno(r)
        case .cubic(var c):
            c.onIdleRestart(now: now, rto: rto)
            state = .cubic(c)
        }
    }
}
