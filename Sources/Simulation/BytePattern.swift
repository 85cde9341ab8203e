/// A reproducible byte stream: byte i of stream `seed` is a pure function of (seed, i), so a
/// receiver checks every byte it gets without storing what was sent.
public struct BytePattern: Sendable {
    public let seed: UInt64
    public init(seed: UInt64) { self.seed = seed }

    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public func byte(at index: Int) -> UInt8 {
        let word = Self.mix(seed &+ UInt64(index >> 3))
        return UInt8(truncatingIfNeeded: word >> (UInt64(index & 7) * 8))
    }

    /// Fills `buffer` with bytes [offset, offset + buffer.count).
    public func fill(_ buffer: UnsafeMutableRawBufferPointer, from offset: Int) {
        for i in 0..<buffer.count { buffer[i] = byte(at: offset + i) }
    }

    /// Index of the first byte in `buffer` that differs from the stream at `offset`, or nil.
    public func firstMismatch(in buffer: UnsafeRawBufferPointer, at offset: Int) -> Int? {
        for i in 0..<buffer.count where buffer[i] != byte(at: offset + i) { return offset + i }
        return nil
    }
}

/// FNV-1a over a byte stream: the digest both ends compare after a transfer.
public struct StreamDigest: Hashable, Sendable {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    public private(set) var count = 0
    public init() {}
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        for b in bytes {
            value = (value ^ UInt64(b)) &* 0x100_0000_01B3
        }
        count += bytes.count
    }
}
