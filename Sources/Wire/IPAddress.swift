/// An IPv4 or IPv6 address, 128 bits in host order (`high` holds the first 8 bytes on the
/// wire). An IPv4 address is kept v4-mapped (::ffff:a.b.c.d, RFC 4291 2.5.5.2), so a flow,
/// a listener or a port claim is one type for both families, and a dual-stack socket's
/// view of an IPv4 peer is the address itself.
public struct IPAddress: Hashable, Comparable, Sendable {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The v4-mapped form of `v4`.
    @inline(__always)
    public init(_ v4: IPv4Address) {
        high = 0
        low = Self.mappedPrefix | UInt64(v4.rawValue)
    }

    /// Eight 16-bit groups, first on the wire first.
    public init(
        _ g0: UInt16, _ g1: UInt16, _ g2: UInt16, _ g3: UInt16, _ g4: UInt16, _ g5: UInt16, _ g6: UInt16,
        _ g7: UInt16
    ) {
        high = UInt64(g0) << 48 | UInt64(g1) << 32 | UInt64(g2) << 16 | UInt64(g3)
        low = UInt64(g4) << 48 | UInt64(g5) << 32 | UInt64(g6) << 16 | UInt64(g7)
    }

    static let mappedPrefix: UInt64 = 0x0000_FFFF_0000_0000

    /// `::`, the IPv6 unspecified address.
    public static let unspecified = IPAddress(high: 0, low: 0)
    /// The wildcard of a family: `::` for IPv6, 0.0.0.0 (v4-mapped) for IPv4.
    public static func wildcard(ipv6: Bool) -> IPAddress { ipv6 ? unspecified : IPAddress(IPv4Address.any) }

    /// `::1`.
    public static let loopback = IPAddress(high: 0, low: 1)
    /// `ff02::1`, all nodes on the link.
    public static let allNodes = IPAddress(high: 0xFF02 << 48, low: 1)
    /// `ff02::2`, all routers on the link.
    public static let allRouters = IPAddress(high: 0xFF02 << 48, low: 2)

    /// The IPv4 address when this one is v4-mapped, else nil.
    @inline(__always)
    public var ipv4: IPv4Address? {
        isIPv4 ? IPv4Address(rawValue: UInt32(truncatingIfNeeded: low)) : nil
    }

    /// True for a v4-mapped address (an IPv4 flow or peer).
    @inline(__always)
    public var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }

    /// `::` or 0.0.0.0: the wildcard of its family.
    public var isUnspecified: Bool { self == .unspecified || self == IPAddress(IPv4Address.any) }

    /// `::1` or 127.0.0.0/8: always the kernel's.
    public var isLoopback: Bool {
        if let v4 = ipv4 { return v4.rawValue >> 24 == 127 }
        return self == .loopback
    }

    /// fe80::/10.
    public var isLinkLocal: Bool { !isIPv4 && high >> 54 == 0x3FA }

    /// ff00::/8 (IPv6 multicast; v4-mapped addresses never are).
    public var isMulticast: Bool { high >> 56 == 0xFF }

    /// The solicited-node multicast group of this address (RFC 4291 2.7.1): ff02::1:ffXX:XXXX
    /// with its low 24 bits, where neighbour solicitations for it are sent.
    public var solicitedNode: IPAddress {
        IPAddress(high: 0xFF02 << 48, low: 0x0000_0001_FF00_0000 | (low & 0x00FF_FFFF))
    }

    /// The Ethernet group a multicast address maps to (RFC 2464 7): 33:33 and its low 32 bits.
    public var multicastMAC: MACAddress {
        MACAddress(rawValue: 0x3333_0000_0000 | (low & 0xFFFF_FFFF))
    }

    /// The link-local address whose interface identifier is `mac`'s modified EUI-64
    /// (RFC 4291 appendix A): fe80::(mac with the universal/local bit flipped, ff:fe inserted).
    public static func linkLocal(for mac: MACAddress) -> IPAddress {
        IPAddress(high: 0xFE80 << 48, low: interfaceIdentifier(for: mac))
    }

    /// The modified EUI-64 interface identifier of `mac`.
    public static func interfaceIdentifier(for mac: MACAddress) -> UInt64 {
        let m = mac.rawValue
        let upper = (m >> 24) ^ 0x02_0000
        return upper << 40 | 0xFF_FE00_0000 | (m & 0xFF_FFFF)
    }

    /// True when the first `length` bits (0...128) equal `prefix`'s.
    public func hasPrefix(_ prefix: IPAddress, length: Int) -> Bool {
        let bits = max(0, min(length, 128))
        if bits <= 64 {
            let mask: UInt64 = bits == 0 ? 0 : ~0 << UInt64(64 - bits)
            return high & mask == prefix.high & mask
        }
        let mask: UInt64 = bits == 128 ? ~0 : ~0 << UInt64(128 - bits)
        return high == prefix.high && low & mask == prefix.low & mask
    }

    /// The 16 bytes at `offset`, as they come on the wire.
    @inline(__always)
    public static func load(from buffer: UnsafeRawBufferPointer, at offset: Int) -> IPAddress {
        IPAddress(
            high: UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self)),
            low: UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)))
    }

    /// Stores the 16 bytes at `offset` in wire order.
    @inline(__always)
    public func store(to buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        buffer.storeBytes(of: high.bigEndian, toByteOffset: offset, as: UInt64.self)
        buffer.storeBytes(of: low.bigEndian, toByteOffset: offset + 8, as: UInt64.self)
    }

    /// The 16-bit group `index` (0...7).
    public func group(_ index: Int) -> UInt16 {
        let word = index < 4 ? high : low
        return UInt16(truncatingIfNeeded: word >> UInt64(48 - 16 * (index & 3)))
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}

extension IPAddress {
    /// Parses IPv4 dotted-quad text (kept v4-mapped) or IPv6 text in any RFC 4291 2.2 form
    /// ("fe80::1", "2001:db8:0:0:1:0:0:1", "::ffff:10.0.0.1"); nil for anything else.
    /// A zone ("%eth0") is not an address and is refused.
    public init?(_ text: String) {
        if let v4 = IPv4Address(text) {
            self.init(v4)
            return
        }
        guard let value = Self.parseIPv6(Array(text.utf8)) else { return nil }
        self = value
    }

    private static func parseIPv6(_ bytes: [UInt8]) -> IPAddress? {
        guard bytes.count >= 2, bytes.count <= 45 else { return nil }
        var groups: [UInt16] = []
        var gap: Int? = nil
        var index = 0
        if bytes[0] == UInt8(ascii: ":") {
            guard bytes[1] == UInt8(ascii: ":") else { return nil }
            gap = 0
            index = 2
        }
        while index < bytes.count {
            // A group: up to four hex digits, or a dotted quad as the last 32 bits.
            var end = index
            while end < bytes.count, bytes[end] != UInt8(ascii: ":") { end += 1 }
            let piece = bytes[index..<end]
            if piece.contains(UInt8(ascii: ".")) {
                guard end == bytes.count, groups.count <= 6,
                    let v4 = IPv4Address(String(decoding: piece, as: UTF8.self))
                else { return nil }
                groups.append(UInt16(truncatingIfNeeded: v4.rawValue >> 16))
                groups.append(UInt16(truncatingIfNeeded: v4.rawValue))
                index = end
                break
            }
            guard !piece.isEmpty, piece.count <= 4 else { return nil }
            var value: UInt16 = 0
            for byte in piece {
                guard let digit = hexValue(byte) else { return nil }
                value = value << 4 | UInt16(digit)
            }
            groups.append(value)
            guard groups.count <= 8 else { return nil }
            index = end
            if index == bytes.count { break }
            // A colon; two mean the gap, which may appear once.
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: ":") {
                guard gap == nil else { return nil }
                gap = groups.count
                index += 1
            } else if index == bytes.count {
                return nil
            }
        }
        var all = [UInt16](repeating: 0, count: 8)
        if let gap {
            guard groups.count < 8 else { return nil }
            for i in 0..<gap { all[i] = groups[i] }
            let tail = groups.count - gap
            for i in 0..<tail { all[8 - tail + i] = groups[gap + i] }
        } else {
            guard groups.count == 8 else { return nil }
            all = groups
        }
        return IPAddress(all[0], all[1], all[2], all[3], all[4], all[5], all[6], all[7])
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension IPAddress: CustomStringConvertible {
    /// IPv4 addresses as a dotted quad; IPv6 in RFC 5952's canonical form (lower case, the
    /// longest run of two or more zero groups as "::", the first such run on a tie).
    public var description: String {
        if let v4 = ipv4 { return v4.description }
        var bestStart = -1
        var bestLength = 0
        var runStart = -1
        for i in 0..<8 {
            if group(i) == 0 {
                if runStart < 0 { runStart = i }
                let length = i - runStart + 1
                if length > bestLength {
                    bestStart = runStart
                    bestLength = length
                }
            } else {
                runStart = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        var text = ""
        var i = 0
        while i < 8 {
            if i == bestStart {
                text += "::"
                i += bestLength
                continue
            }
            if !text.isEmpty && !text.hasSuffix(":") { text += ":" }
            text += String(group(i), radix: 16)
            i += 1
        }
        return text
    }
}
