/// A 48-bit Ethernet address, kept in the low 48 bits of an integer (first wire byte
/// most significant) so it is cheap to copy, compare and hash.
public struct MACAddress: Hashable, Sendable {
    /// The address bits; only the low 48 are used.
    public private(set) var rawValue: UInt64

    /// An address from its 48-bit value (upper bits are ignored).
    public init(rawValue: UInt64) { self.rawValue = rawValue & 0xFFFF_FFFF_FFFF }

    /// An address from its six bytes in wire order.
    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8) {
        rawValue =
            UInt64(b0) << 40 | UInt64(b1) << 32 | UInt64(b2) << 24 | UInt64(b3) << 16 | UInt64(b4) << 8
            | UInt64(b5)
    }

    /// Parses "aa:bb:cc:dd:ee:ff" (one or two hex digits per byte, ':' or '-' between,
    /// either case); nil otherwise.
    public init?(_ text: String) {
        var value: UInt64 = 0
        var group: UInt64 = 0
        var digits = 0
        var groups = 0
        var separator: UInt8 = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: ":") || byte == UInt8(ascii: "-") {
                guard digits > 0, groups < 5, separator == 0 || separator == byte else { return nil }
                separator = byte
                value = value << 8 | group
                group = 0
                digits = 0
                groups += 1
                continue
            }
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            guard digits < 2 else { return nil }
            group = group << 4 | UInt64(nibble)
            digits += 1
        }
        guard groups == 5, digits > 0 else { return nil }
        rawValue = value << 8 | group
    }

    /// ff:ff:ff:ff:ff:ff.
    public static let broadcast = MACAddress(rawValue: 0xFFFF_FFFF_FFFF)
    /// 00:00:00:00:00:00 (e.g. the unknown target of an ARP request).
    public static let zero = MACAddress(rawValue: 0)

    /// True for group addresses (the I/G bit of the first byte), broadcast included.
    public var isMulticast: Bool { rawValue & 0x0100_0000_0000 != 0 }

    /// The byte at `index` (0...5) in wire order.
    public subscript(index: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: rawValue >> (8 * UInt64(5 - (index & 7) % 6)))
    }

    /// Reads six bytes at `offset`; the caller has checked the bounds.
    @inline(__always)
    init(loadingFrom bytes: UnsafeRawBufferPointer, at offset: Int) {
        rawValue = UInt64(bytes.load16(at: offset)) << 32 | UInt64(bytes.load32(at: offset + 2))
    }

    /// Writes six bytes at `offset`; the caller has checked the bounds.
    @inline(__always)
    func store(to bytes: UnsafeMutableRawBufferPointer, at offset: Int) {
        bytes.store16(UInt16(truncatingIfNeeded: rawValue >> 32), at: offset)
        bytes.store32(UInt32(truncatingIfNeeded: rawValue), at: offset + 2)
    }
}

extension MACAddress: CustomStringConvertible {
    /// Lower-case, colon-separated: "aa:bb:cc:dd:ee:ff".
    public var description: String {
        let hex: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
        var text = ""
        for index in 0..<6 {
            if index > 0 { text.append(":") }
            let byte = self[index]
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0xF)])
        }
        return text
    }
}
