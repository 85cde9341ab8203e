/// IP protocol numbers this stack knows (IANA).
public enum IPProtocol {
    /// Internet Control Message Protocol.
    public static let icmp: UInt8 = 1
    /// Transmission Control Protocol.
    public static let tcp: UInt8 = 6
    /// User Datagram Protocol.
    public static let udp: UInt8 = 17
    /// ICMP for IPv6 (RFC 4443).
    public static let icmpv6: UInt8 = 58
    /// IPv6 Hop-by-Hop Options header (RFC 8200 4.3).
    public static let hopByHop: UInt8 = 0
    /// IPv6 Routing header (RFC 8200 4.4).
    public static let routing: UInt8 = 43
    /// IPv6 Fragment header (RFC 8200 4.5).
    public static let fragment: UInt8 = 44
    /// IPv6 No Next Header: nothing follows (RFC 8200 4.7).
    public static let noNextHeader: UInt8 = 59
    /// IPv6 Destination Options header (RFC 8200 4.6).
    public static let destinationOptions: UInt8 = 60
}

/// An IPv4 header (RFC 791), all fields in host order. Options are skipped, not kept.
public struct IPv4Header: Hashable, Sendable {
    /// Bytes in a header without options.
    public static let minimumLength = 20

    public var version: UInt8
    /// IHL * 4: 20...60 bytes.
    public var headerLength: Int
    /// DSCP (upper 6 bits) and ECN (lower 2 bits).
    public var dscpECN: UInt8
    /// Header plus payload, in bytes.
    public var totalLength: UInt16
    public var identification: UInt16
    public var dontFragment: Bool
    public var moreFragments: Bool
    /// In 8-byte units.
    public var fragmentOffset: UInt16
    public var ttl: UInt8
    public var `protocol`: UInt8
    /// The header checksum as received (already verified by `parse`).
    public var checksum: UInt16
    public var source: IPv4Address
    public var destination: IPv4Address

    /// A header from its fields.
    public init(
        version: UInt8 = 4, headerLength: Int = 20, dscpECN: UInt8 = 0, totalLength: UInt16,
        identification: UInt16, dontFragment: Bool = true, moreFragments: Bool = false, fragmentOffset: UInt16 = 0,
        ttl: UInt8 = 64, protocol proto: UInt8, checksum: UInt16 = 0, source: IPv4Address,
        destination: IPv4Address
    ) {
        self.version = version
        self.headerLength = headerLength
        self.dscpECN = dscpECN
        self.totalLength = totalLength
        self.identification = identification
        self.dontFragment = dontFragment
        self.moreFragments = moreFragments
        self.fragmentOffset = fragmentOffset
        self.ttl = ttl
        self.protocol = proto
        self.checksum = checksum
        self.source = source
        self.destination = destination
    }

    /// Parses and validates an IPv4 packet; the payload runs from IHL*4 to `totalLength`
    /// (Ethernet padding past `totalLength` is dropped).
    ///
    /// Throws `.truncated` when the buffer is shorter than the header or `totalLength`,
    /// `.badVersion`, `.badLength` for IHL < 5 or `totalLength` < IHL*4, `.badChecksum`,
    /// and `.fragmented` for any fragment (MF set or a non-zero offset).
    public static func parse(
        _ packet: UnsafeRawBufferPointer, verifyChecksum: Bool = true
    ) throws(WireError) -> (header: IPv4Header, payload: UnsafeRawBufferPointer) {
        guard packet.count >= minimumLength else { throw .truncated }
        let versionIHL = packet.load8(at: 0)
        guard versionIHL >> 4 == 4 else { throw .badVersion }
        let headerLength = Int(versionIHL & 0x0F) * 4
        guard headerLength >= minimumLength else { throw .badLength }
        guard headerLength <= packet.count else { throw .truncated }
        let totalLength = packet.load16(at: 2)
        guard Int(totalLength) >= headerLength else { throw .badLength }
        guard Int(totalLength) <= packet.count else { throw .truncated }
        if verifyChecksum {
            guard InternetChecksum.verify(packet.slice(0..<headerLength)) else { throw .badChecksum }
        }
        let flagsOffset = packet.load16(at: 6)
        let moreFragments = flagsOffset & 0x2000 != 0
        let fragmentOffset = flagsOffset & 0x1FFF
        guard !moreFragments, fragmentOffset == 0 else { throw .fragmented }
        let header = IPv4Header(
            version: 4, headerLength: headerLength, dscpECN: packet.load8(at: 1), totalLength: totalLength,
            identification: packet.load16(at: 4), dontFragment: flagsOffset & 0x4000 != 0,
            moreFragments: moreFragments, fragmentOffset: fragmentOffset, ttl: packet.load8(at: 8),
            protocol: packet.load8(at: 9), checksum: packet.load16(at: 10),
            source: IPv4Address(rawValue: packet.load32(at: 12)),
            destination: IPv4Address(rawValue: packet.load32(at: 16)))
        return (header, packet.slice(headerLength..<Int(totalLength)))
    }

    /// Writes a 20-byte header (no options, DSCP/ECN 0) with its checksum; returns 20, or
    /// 0 if `buffer` is shorter than 20 bytes or the packet would exceed 65535 bytes.
    @discardableResult
    public static func write(
        to buffer: UnsafeMutableRawBufferPointer, source: IPv4Address, destination: IPv4Address,
        protocol proto: UInt8, payloadLength: Int, identification: UInt16, ttl: UInt8 = 64,
        dontFragment: Bool = true
    ) -> Int {
        guard buffer.count >= minimumLength, payloadLength >= 0, payloadLength <= 65535 - minimumLength else {
            return 0
        }
        buffer.store8(0x45, at: 0)
        buffer.store8(0, at: 1)
        buffer.store16(UInt16(minimumLength + payloadLength), at: 2)
        buffer.store16(identification, at: 4)
        buffer.store16(dontFragment ? 0x4000 : 0, at: 6)
        buffer.store8(ttl, at: 8)
        buffer.store8(proto, at: 9)
        buffer.store16(0, at: 10)
        buffer.store32(source.rawValue, at: 12)
        buffer.store32(destination.rawValue, at: 16)
        buffer.store16(InternetChecksum.compute(buffer.readOnly(0..<minimumLength)), at: 10)
        return minimumLength
    }
}
