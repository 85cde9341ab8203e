/// The Internet checksum (RFC 1071): a one's-complement sum of 16-bit big-endian words.
///
/// Data may arrive in pieces of any length (e.g. a payload split across the end of a
/// ring buffer): a piece that ends on an odd byte leaves the stream at an odd offset,
/// and the next piece is summed byte-swapped, which is the same as carrying the byte.
///
/// To verify a received header or segment, add everything including its checksum field
/// (and the pseudo-header for TCP/UDP); `value` is 0 exactly when it is intact
/// (see `verify(_:)` and `isValid`).
public struct InternetChecksum: Sendable {
    /// Running sum of 16-bit big-endian words, in host order; folded only at the end.
    private var sum: UInt64 = 0
    /// True when an odd number of bytes has been added so far.
    private var odd = false

    /// An empty checksum (sum of nothing).
    public init() {}

    /// Adds raw bytes in wire order; pieces may have any length.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        let piece = UInt64(Self.sumBigEndianWords(bytes))
        // At an odd stream offset every byte sits in the other half of its word.
        sum &+= odd ? UInt64(UInt16(truncatingIfNeeded: piece).byteSwapped) : piece
        if bytes.count & 1 == 1 { odd.toggle() }
    }

    /// Adds one 16-bit value as two bytes in wire order (high byte first).
    public mutating func add(_ word: UInt16) {
        sum &+= UInt64(odd ? word.byteSwapped : word)
    }

    /// Adds a 32-bit value as two 16-bit words in wire order.
    public mutating func add(_ value: UInt32) {
        add(UInt16(truncatingIfNeeded: value >> 16))
        add(UInt16(truncatingIfNeeded: value))
    }

    /// The folded one's-complement sum (before complementing).
    public var folded: UInt16 {
        Self.fold(sum)
    }

    /// The checksum to store (big-endian) in the header: the complement of the sum.
    public var value: UInt16 {
        ~folded
    }

    /// True when the data added, including its checksum field, verifies.
    public var isValid: Bool {
        value == 0
    }

    /// The TCP/UDP pseudo-header (RFC 9293 section 3.1): addresses, protocol, length.
    public static func pseudoHeader(
        source: IPv4Address, destination: IPv4Address, protocol proto: UInt8, length: Int
    ) -> InternetChecksum {
        var checksum = InternetChecksum()
        checksum.add(source.rawValue)
        checksum.add(destination.rawValue)
        checksum.add(UInt16(proto))
        checksum.add(UInt16(truncatingIfNeeded: length))
        return checksum
    }

    /// The pseudo-header of either family: RFC 9293's for a v4-mapped pair, RFC 8200 8.1's
    /// (128-bit addresses, 32-bit upper-layer length, next header) otherwise.
    public static func pseudoHeader(
        source: IPAddress, destination: IPAddress, protocol proto: UInt8, length: Int
    ) -> InternetChecksum {
        if let s = source.ipv4, let d = destination.ipv4 {
            return pseudoHeader(source: s, destination: d, protocol: proto, length: length)
        }
        var checksum = InternetChecksum()
        for word in [source.high, source.low, destination.high, destination.low] {
            checksum.add(UInt32(truncatingIfNeeded: word >> 32))
            checksum.add(UInt32(truncatingIfNeeded: word))
        }
        checksum.add(UInt32(truncatingIfNeeded: length))
        checksum.add(UInt32(proto))
        return checksum
    }

    /// True when `bytes`, which include their own checksum field, sum to zero.
    public static func verify(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var checksum = InternetChecksum()
        checksum.add(bytes)
        return checksum.isValid
    }

    /// The checksum of `bytes` alone, ready to store.
    public static func compute(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var checksum = InternetChecksum()
        checksum.add(bytes)
        return checksum.value
    }

    @inline(__always)
    static func fold(_ value: UInt64) -> UInt16 {
        var s = (value & 0xFFFF_FFFF) &+ (value >> 32)
        s = (s & 0xFFFF_FFFF) &+ (s >> 32)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        return UInt16(truncatingIfNeeded: s)
    }

    /// Sums `bytes` as if they began at an even offset, a trailing odd byte padded with
    /// zero; the result is folded to 16 bits, in host order.
    ///
    /// One's-complement addition does not care about byte order (RFC 1071 section 2(B)),
    /// so the words are summed in native order eight bytes at a time with end-around
    /// carry, and swapped once at the end.
    @inline(__always)
    static func sumBigEndianWords(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var acc: UInt64 = 0
        var offset = 0
        let count = bytes.count
        // Two independent accumulators keep the carry chains short.
        var acc2: UInt64 = 0
        while offset + 16 <= count {
            let a = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            let b = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
            let (r1, o1) = acc.addingReportingOverflow(a)
            acc = r1 &+ (o1 ? 1 : 0)
            let (r2, o2) = acc2.addingReportingOverflow(b)
            acc2 = r2 &+ (o2 ? 1 : 0)
            offset += 16
        }
        if offset + 8 <= count {
            let (r, o) = acc.addingReportingOverflow(bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            acc = r &+ (o ? 1 : 0)
            offset += 8
        }
        let (r, o) = acc.addingReportingOverflow(acc2)
        acc = r &+ (o ? 1 : 0)
        // The tail (at most 7 bytes) goes into a fresh accumulator that cannot overflow.
        var tail: UInt64 = 0
        if offset + 4 <= count {
            tail &+= UInt64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            offset += 4
        }
        if offset + 2 <= count {
            tail &+= UInt64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            offset += 2
        }
        if offset < count {
            // The last byte is the high half of a zero-padded big-endian word.
            let word = UInt16(bytes.loadUnaligned(fromByteOffset: offset, as: UInt8.self)) << 8
            tail &+= UInt64(word.bigEndian)
        }
        let native = fold(acc)  // fold before adding so nothing can overflow
        return UInt16(bigEndian: fold(UInt64(native) &+ tail))
    }
}
