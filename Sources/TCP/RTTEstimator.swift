/// Round-trip time estimation and retransmission timeout per RFC 6298, in integer nanoseconds.
public struct RTTEstimator: Sendable {
    /// Lower bound of the computed timeout.
    public let minimumRTO: Interval
    /// Upper bound of the computed and backed-off timeout.
    public let maximumRTO: Interval
    /// Clock granularity G of RFC 6298.
    public let clockGranularity: Interval
    /// Current retransmission timeout (before backoff).
    public private(set) var rto: Interval
    /// SRTT, nil until the first sample.
    public private(set) var smoothedRTT: Interval?
    /// RTTVAR, zero until the first sample.
    public private(set) var rttVariance: Interval
    /// Smallest sample seen, nil until the first sample.
    public private(set) var minimumObservedRTT: Interval?

    /// Creates an estimator without samples; `rto` starts at `initialRTO` (clamped to the maximum).
    public init(
        initialRTO: Interval = .seconds(1), minimumRTO: Interval = .milliseconds(200),
        maximumRTO: Interval = .seconds(120), clockGranularity: Interval = .milliseconds(1)
    ) {
        self.minimumRTO = minimumRTO
        self.maximumRTO = Swift.max(maximumRTO, minimumRTO)
        self.clockGranularity = clockGranularity
        rto = Swift.min(initialRTO, self.maximumRTO)
        smoothedRTT = nil
        rttVariance = .zero
        minimumObservedRTT = nil
    }

    /// Feeds one round-trip measurement (RFC 6298 section 2.2 and 2.3) and recomputes `rto`.
    public mutating func addSample(_ rtt: Interval) {
        let r = rtt.nanoseconds
        if let srtt = smoothedRTT?.nanoseconds {
            let deviation = srtt > r ? srtt - r : r - srtt
            // RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|; SRTT = 7/8 SRTT + 1/8 R, written so
            // that no intermediate can overflow.
            let variance = rttVariance.nanoseconds
            rttVariance = Interval(nanoseconds: variance - variance / 4 + deviation / 4)
            smoothedRTT = Interval(nanoseconds: srtt - srtt / 8 + r / 8)
        } else {
            smoothedRTT = rtt
            rttVariance = rtt / 2
        }
        if let minimum = minimumObservedRTT {
            minimumObservedRTT = Swift.min(minimum, rtt)
        } else {
            minimumObservedRTT = rtt
        }
        // Interval arithmetic saturates, so huge samples cannot overflow.
        let computed = (smoothedRTT ?? rtt) + Swift.max(clockGranularity, rttVariance * 4)
        rto = Swift.min(Swift.max(computed, minimumRTO), maximumRTO)
    }

    /// The timeout after `shifts` consecutive expirations: `rto << shifts`, capped at `maximumRTO`.
    public func backedOff(_ shifts: Int) -> Interval {
        guard shifts > 0 else { return rto }
        let value = rto.nanoseconds
        // Shifting further than the leading zero bits would lose high bits.
        guard shifts < value.leadingZeroBitCount else { return value == 0 ? rto : maximumRTO }
        return Swift.min(Interval(nanoseconds: value << UInt64(shifts)), maximumRTO)
    }
}
