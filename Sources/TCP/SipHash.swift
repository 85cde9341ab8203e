/// SipHash-2-4 (Aumasson and Bernstein), a keyed 64-bit hash for small inputs such as
/// connection 4-tuples. Integers are added in little-endian byte order, as the reference
/// implementation reads its message.
public struct SipHash24: Sendable {
    private var v0: UInt64
    private var v1: UInt64
    private var v2: UInt64
    private var v3: UInt64
    /// Bytes not yet compressed, little-endian, `tailCount` of them.
    private var tail: UInt64
    private var tailCount: Int
    /// Total message length in bytes (only its low 8 bits enter the hash).
    private var length: UInt64

    /// Starts a hash keyed by the 128-bit key `key0` (bytes 0-7, little-endian) and `key1` (bytes 8-15).
    public init(key0: UInt64, key1: UInt64) {
        v0 = key0 ^ 0x736f_6d65_7073_6575
        v1 = key1 ^ 0x646f_7261_6e64_6f6d
        v2 = key0 ^ 0x6c79_6765_6e65_7261
        v3 = key1 ^ 0x7465_6462_7974_6573
        tail = 0
        tailCount = 0
        length = 0
    }

    @inline(__always)
    private static func rotate(_ x: UInt64, _ n: UInt64) -> UInt64 { (x &<< n) | (x &>> (64 &- n)) }

    @inline(__always)
    private mutating func round() {
        v0 &+= v1
        v1 = Self.rotate(v1, 13)
        v1 ^= v0
        v0 = Self.rotate(v0, 32)
        v2 &+= v3
        v3 = Self.rotate(v3, 16)
        v3 ^= v2
        v0 &+= v3
        v3 = Self.rotate(v3, 21)
        v3 ^= v0
        v2 &+= v1
        v1 = Self.rotate(v1, 17)
        v1 ^= v2
        v2 = Self.rotate(v2, 32)
    }

    @inline(__always)
    private mutating func compress(_ m: UInt64) {
        v3 ^= m
        round()
        round()
        v0 ^= m
    }

    /// Appends the low `byteCount` (1...8) bytes of `value`, least significant first.
    @inline(__always)
    private mutating func append(_ value: UInt64, byteCount: Int) {
        length &+= UInt64(byteCount)
        let filled = tailCount + byteCount
        // tailCount < 8, so this shift is always below 64.
        let merged = tail | (value &<< UInt64(8 * tailCount))
        if filled < 8 {
            tail = merged
            tailCount = filled
            return
        }
        compress(merged)
        // The bytes of `value` that did not fit in the compressed word.
        tail = tailCount == 0 ? 0 : value &>> UInt64(8 * (8 - tailCount))
        tailCount = filled - 8
        if tailCount < 8 { tail &= (1 &<< UInt64(8 * tailCount)) &- 1 }
    }

    /// Adds one byte.
    public mutating func add(_ v: UInt8) { append(UInt64(v), byteCount: 1) }
    /// Adds two bytes, little-endian.
    public mutating func add(_ v: UInt16) { append(UInt64(v), byteCount: 2) }
    /// Adds four bytes, little-endian.
    public mutating func add(_ v: UInt32) { append(UInt64(v), byteCount: 4) }
    /// Adds eight bytes, little-endian.
    public mutating func add(_ v: UInt64) { append(v, byteCount: 8) }

    /// Adds a byte sequence.
    public mutating func add(bytes: UnsafeRawBufferPointer) {
        for byte in bytes { add(byte) }
    }

    /// The 64-bit hash of everything added.
    public func finalize() -> UInt64 {
        var state = self
        state.compressFinal()
        return state.v0 ^ state.v1 ^ state.v2 ^ state.v3
    }

    private mutating func compressFinal() {
        compress(tail | (length &<< 56))
        v2 ^= 0xff
        round()
        round()
        round()
        round()
    }

    /// One-shot hash of `bytes`.
    public static func hash(key0: UInt64, key1: UInt64, bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hasher = SipHash24(key0: key0, key1: key1)
        hasher.add(bytes: bytes)
        return hasher.finalize()
    }
}
