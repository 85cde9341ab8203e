/// A deterministic pseudo-random generator: xoshiro256** seeded through SplitMix64.
/// Every random choice in the simulator comes from one of these, so a run is a pure function of its seed.
public struct SeededRandom: RandomNumberGenerator {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// Creates a generator whose whole stream is determined by `seed`.
    public init(seed: UInt64) {
        // SplitMix64 spreads any seed (even 0) over the 256-bit state, which must not be all zero.
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix()
        s1 = splitMix()
        s2 = splitMix()
        s3 = splitMix()
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = rotateLeft(s1 &* 5, by: 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotateLeft(s3, by: 45)
        return result
    }

    /// True with the given probability. Probabilities <= 0 and >= 1 consume no randomness,
    /// so an unimpaired link leaves the stream untouched for everything else.
    public mutating func chance(_ probability: Double) -> Bool {
        if !(probability > 0) { return false }
        if probability >= 1 { return true }
        return unitInterval() < probability
    }

    /// A uniformly distributed value in `range` (unbiased, by rejection); the lower bound for an empty range.
    public mutating func uniform(_ range: Range<UInt64>) -> UInt64 {
        guard range.lowerBound < range.upperBound else { return range.lowerBound }
        let span = range.upperBound - range.lowerBound
        // Lemire's multiply-shift: reject the few low products that would make some values more likely.
        var product = next().multipliedFullWidth(by: span)
        if product.low < span {
            let threshold = (0 &- span) % span
            while product.low < threshold {
                product = next().multipliedFullWidth(by: span)
            }
        }
        return range.lowerBound + product.high
    }

    /// A uniformly distributed value in [0, 1) with 53 bits of precision.
    public mutating func unitInterval() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    private func rotateLeft(_ value: UInt64, by count: UInt64) -> UInt64 {
        (value << count) | (value >> (64 - count))
    }
}
