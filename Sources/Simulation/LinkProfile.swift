import TCP

/// The behaviour of one direction of a simulated link: latency, bandwidth, queueing and impairments.
///
/// Per packet, in order: larger than `mtu` is dropped (oversize); with `lossRate` it is dropped;
/// otherwise it is serialized by a FIFO transmitter at `bitsPerSecond` (tail drop when more than
/// `queueLimit` packets wait); it arrives `delay` plus uniform [0, `jitter`] after its departure,
/// plus `reorderDelay` with `reorderRate`; with `corruptRate` one random bit is flipped; with
/// `duplicateRate` a second copy arrives shortly after the first.
public struct LinkProfile: Sendable, Equatable {
    /// Fixed propagation delay.
    public var delay: Interval
    /// Maximum extra random delay; each packet gets a uniform draw in [0, jitter] (this may reorder packets).
    public var jitter: Interval
    /// Serialization rate; 0 means unlimited (no serialization delay, no queue).
    public var bitsPerSecond: UInt64
    /// Packets that may wait behind the one being serialized; further packets are tail-dropped.
    public var queueLimit: Int
    /// Probability that a packet is lost.
    public var lossRate: Double
    /// Probability that a packet is delivered twice.
    public var duplicateRate: Double
    /// Probability that a packet is held back by `reorderDelay`, letting later packets overtake it.
    public var reorderRate: Double
    /// Probability that one random bit of a packet is flipped.
    public var corruptRate: Double
    /// Extra delay of a reordered packet.
    public var reorderDelay: Interval
    /// Largest packet (IP bytes) the link carries; larger packets are dropped and counted as oversize.
    public var mtu: Int

    /// Creates a profile; the defaults give `perfect` (1 ms delay, unlimited rate, no impairments).
    public init(
        delay: Interval = .milliseconds(1), jitter: Interval = .zero, bitsPerSecond: UInt64 = 0,
        queueLimit: Int = 1000, lossRate: Double = 0, duplicateRate: Double = 0, reorderRate: Double = 0,
        corruptRate: Double = 0, reorderDelay: Interval = .milliseconds(5), mtu: Int = 1500
    ) {
        self.delay = delay
        self.jitter = jitter
        self.bitsPerSecond = bitsPerSecond
        self.queueLimit = queueLimit
        self.lossRate = lossRate
        self.duplicateRate = duplicateRate
        self.reorderRate = reorderRate
        self.corruptRate = corruptRate
        self.reorderDelay = reorderDelay
        self.mtu = mtu
    }

    /// 1 ms delay, unlimited rate, no impairments.
    public static let perfect = LinkProfile()
}
