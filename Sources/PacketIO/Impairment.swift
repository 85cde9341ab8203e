/// What an impairment layer does to the frames of one direction. Rates are probabilities
/// per frame (0...1); times are nanoseconds.
public struct Impairment: Sendable, Hashable {
    /// Frames dropped.
    public var lossRate: Double
    /// Frames delivered twice.
    public var duplicateRate: Double
    /// Frames held back until `reorderDepth` later frames have overtaken them.
    public var reorderRate: Double
    /// How many later frames overtake a reordered frame.
    public var reorderDepth: Int
    /// Longest a reordered frame waits when fewer frames follow it.
    public var reorderTimeout: UInt64
    /// Frames with one bit flipped (after the Ethernet header, so checksums catch it).
    public var corruptRate: Double
    /// Delay added to every frame.
    public var delay: UInt64
    /// Extra random delay in 0..<jitter added to every frame.
    public var jitter: UInt64

    /// An impairment from its parts; the defaults do nothing.
    public init(
        lossRate: Double = 0, duplicateRate: Double = 0, reorderRate: Double = 0, reorderDepth: Int = 3,
        reorderTimeout: UInt64 = 1_000_000, corruptRate: Double = 0, delay: UInt64 = 0, jitter: UInt64 = 0
    ) {
        self.lossRate = lossRate
        self.duplicateRate = duplicateRate
        self.reorderRate = reorderRate
        self.reorderDepth = max(reorderDepth, 1)
        self.reorderTimeout = reorderTimeout
        self.corruptRate = corruptRate
        self.delay = delay
        self.jitter = jitter
    }

    /// No impairment: frames pass untouched.
    public static let none = Impairment()

    /// True when frames may be held and the clock must be read.
    var holdsFrames: Bool { reorderRate > 0 || delay > 0 || jitter > 0 }
}

/// How often each impairment was applied in one direction.
public struct ImpairmentCounters: Sendable, Hashable {
    /// Frames passed on (including duplicates and released held frames).
    public var passed = 0
    public var dropped = 0
    public var duplicated = 0
    public var reordered = 0
    public var corrupted = 0
    public var delayed = 0
    /// Frames dropped because the hold pool was full or the frame did not fit a slot.
    public var overflowed = 0
    public init() {}
}
