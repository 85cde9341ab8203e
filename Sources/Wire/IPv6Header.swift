/// An IPv6 header (RFC 8200), all fields in host order, with the extension headers before
/// the upper-layer protocol already walked and skipped.
public struct IPv6Header: Hashable, Sendable {
    /// Bytes in the fixed header.
    public static let length = 40
    /// Extension headers walked at most; a longer chain is refused so that a packet of
    /// nothing but options cannot cost unbounded time.
    public static let maximumExtensionHeaders = 8

    public var trafficClass: UInt8
    /// 20 bits.
    public var flowLabel: UInt32
    /// Bytes after the fixed header, extension headers included.
    public var payloadLength: UInt16
    /// The fixed header's Next Header field.
    public var nextHeader: UInt8
    public var hopLimit: UInt8
    public var source: IPAddress
    public var destination: IPAddress
    /// The protocol after the extension headers (e.g. `IPProtocol.tcp`, or
    /// `IPProtocol.noNextHeader` when nothing follows).
    public var upperProtocol: UInt8
    /// Bytes of extension headers between the fixed header and the upper-layer payload.
    public var extensionHeaderLength: Int

    /// A header from its fields.
    public init(
        trafficClass: UInt8 = 0, flowLabel: UInt32 = 0, payloadLength: UInt16, nextHeader: UInt8, hopLimit: UInt8 = 64,
        source: IPAddress, destination: IPAddress, upperProtocol: UInt8? = nil, extensionHeaderLength: Int = 0
    ) {
        self.trafficClass = trafficClass
        self.flowLabel = flowLabel & 0xF_FFFF
        self.payloadLength = payloadLength
        self.nextHeader = nextHeader
        self.hopLimit = hopLimit
        self.source = source
        self.destination = destination
        self.upperProtocol = upperProtocol ?? nextHeader
        self.extensionHeaderLength = extensionHeaderLength
    }

    /// Parses an IPv6 packet and walks its extension headers; the payload is the
    /// upper-layer data, from the end of the extension headers to 40 + `payloadLength`
    /// (Ethernet padding is dropped).
    ///
    /// Throws `.truncated` when the buffer is shorter than 40 + `payloadLength` or an
    /// extension header runs past the payload; `.badVersion`; `.unsupported` for a zero
    /// payload length (a jumbogram, RFC 2675), a v4-mapped source or destination (never
    /// valid on the wire, RFC 4291 2.5.5.2), a Routing header with segments left (we are
    /// never an intermediate hop) or more than `maximumExtensionHeaders`; `.badOption` for a
    /// Hop-by-Hop header that is not first, or an option that is malformed or that RFC 8200
    /// 4.2 says to discard when unrecognised; `.fragmented` for a Fragment header (this stack
    /// does not reassemble). ESP, AH and unknown protocols come back as `upperProtocol`.
    public static func parse(
        _ packet: UnsafeRawBufferPointer
    ) throws(WireError) -> (header: IPv6Header, payload: UnsafeRawBufferPointer) {
        guard packet.count >= length else { throw .truncated }
        let first = packet.load32(at: 0)
        guard first >> 28 == 6 else { throw .badVersion }
        let payloadLength = packet.load16(at: 4)
        guard payloadLength != 0 else { throw .unsupported }
        let end = length + Int(payloadLength)
        guard end <= packet.count else { throw .truncated }
        let source = IPAddress.load(from: packet, at: 8)
        let destination = IPAddress.load(from: packet, at: 24)
        guard !source.isIPv4, !destination.isIPv4 else { throw .unsupported }
        let nextHeader = packet.load8(at: 6)

        var next = nextHeader
        var offset = length
        var walked = 0
        walk: while true {
            switch next {
            case IPProtocol.hopByHop, IPProtocol.routing, IPProtocol.destinationOptions:
                // Only the fixed header may point at Hop-by-Hop (RFC 8200 4.1).
                if next == IPProtocol.hopByHop && offset != length { throw .badOption }
                guard walked < maximumExtensionHeaders else { throw .unsupported }
                // All three share the layout: next header, length in 8-byte units less one.
                guard end - offset >= 8 else { throw .truncated }
                let extensionLength = (Int(packet.load8(at: offset + 1)) + 1) * 8
                guard extensionLength <= end - offset else { throw .truncated }
                if next == IPProtocol.routing {
                    // Segments left 0: the route is done and the header is ignored (4.4).
                    guard packet.load8(at: offset + 3) == 0 else { throw .unsupported }
                } else {
                    try checkOptions(packet.slice(offset + 2..<offset + extensionLength))
                }
                next = packet.load8(at: offset)
                offset += extensionLength
                walked += 1
            case IPProtocol.fragment:
                throw .fragmented
            default:
                break walk
            }
        }
        let header = IPv6Header(
            trafficClass: UInt8(truncatingIfNeeded: first >> 20), flowLabel: first & 0xF_FFFF,
            payloadLength: payloadLength, nextHeader: nextHeader, hopLimit: packet.load8(at: 7), source: source,
            destination: destination, upperProtocol: next,
            extensionHeaderLength: offset - length)
        // After No Next Header anything left is to be ignored (4.7).
        return (header, packet.slice((next == IPProtocol.noNextHeader ? end : offset)..<end))
    }

    /// Checks the TLV options of a Hop-by-Hop or Destination Options header (RFC 8200 4.2):
    /// each must fit, and an unrecognised one whose two high type bits are not 00 means the
    /// packet must be discarded. Pad1 and PadN are the only options this stack knows, and
    /// both have the high bits 00, so any option with them set is refused.
    private static func checkOptions(_ options: UnsafeRawBufferPointer) throws(WireError) {
        var offset = 0
        while offset < options.count {
            let type = options.load8(at: offset)
            if type == 0 {
                offset += 1  // Pad1 has no length byte
                continue
            }
            guard options.count - offset >= 2 else { throw .badOption }
            let optionLength = 2 + Int(options.load8(at: offset + 1))
            guard optionLength <= options.count - offset else { throw .badOption }
            guard type >> 6 == 0 else { throw .badOption }
            offset += optionLength
        }
    }

    /// Writes a 40-byte fixed header (no extension headers); returns 40, or 0 if `buffer` is
    /// shorter than 40 bytes or `payloadLength` is outside 0...65535.
    @discardableResult
    public static func write(
        to buffer: UnsafeMutableRawBufferPointer, source: IPAddress, destination: IPAddress, nextHeader: UInt8,
        payloadLength: Int, hopLimit: UInt8 = 64, trafficClass: UInt8 = 0, flowLabel: UInt32 = 0
    ) -> Int {
        guard buffer.count >= length, payloadLength >= 0, payloadLength <= 65535 else { return 0 }
        buffer.store32(6 << 28 | UInt32(trafficClass) << 20 | flowLabel & 0xF_FFFF, at: 0)
        buffer.store16(UInt16(payloadLength), at: 4)
        buffer.store8(nextHeader, at: 6)
        buffer.store8(hopLimit, at: 7)
        source.store(to: buffer, at: 8)
        destination.store(to: buffer, at: 24)
        return length
    }
}
