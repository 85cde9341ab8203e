/// xoshiro256** seeded through splitmix64: a small, fast, reproducible generator for the
/// impairment layer (its own, so PacketIO does not depend on Simulation).
struct ImpairmentRandom {
    var s0: UInt64
    var s1: UInt64
    var s2: UInt64
    var s3: UInt64

    init(seed: UInt64) {
        var x = seed
        func splitmix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(&x)
        s1 = splitmix(&x)
        s2 = splitmix(&x)
        s3 = splitmix(&x)
    }

    mutating func next() -> UInt64 {
        let result = (s1 &* 5).rotatedLeft(7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3.rotatedLeft(45)
        return result
    }

    /// True with probability `rate` (never for 0, always for 1).
    mutating func chance(_ rate: Double) -> Bool {
        guard rate > 0 else { return false }
        return Double(next() >> 11) * 0x1p-53 < rate
    }

    /// A value in 0..<bound (0 when bound is 0).
    mutating func below(_ bound: UInt64) -> UInt64 {
        guard bound > 0 else { return 0 }
        return next().multipliedFullWidth(by: bound).high
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotatedLeft(_ k: UInt64) -> UInt64 { (self << k) | (self >> (64 - k)) }
}
