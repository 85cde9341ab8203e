/// ICMPv6 message types this stack uses (RFC 4443, RFC 4861).
public enum ICMPv6Type {
    public static let destinationUnreachable: UInt8 = 1
    public static let packetTooBig: UInt8 = 2
    public static let timeExceeded: UInt8 = 3
    public static let parameterProblem: UInt8 = 4
    public static let echoRequest: UInt8 = 128
    public static let echoReply: UInt8 = 129
    public static let routerSolicitation: UInt8 = 133
    public static let routerAdvertisement: UInt8 = 134
    public static let neighborSolicitation: UInt8 = 135
    public static let neighborAdvertisement: UInt8 = 136
    public static let redirect: UInt8 = 137
}

/// The fixed start of every ICMPv6 message: type, code and checksum, as in ICMP for IPv4;
/// only the checksum differs (it covers a pseudo-header: the IPv6 parse below).
public typealias ICMPv6Header = ICMPHeader

extension ICMPHeader {
    /// Parses any ICMPv6 message's type and code, verifying the checksum over the
    /// pseudo-header (RFC 8200 8.1, next header 58) and the whole message: unlike ICMP for
    /// IPv4 it covers the addresses, so it cannot be checked without them.
    ///
    /// Throws `.truncated` below 4 bytes and `.badChecksum`.
    public static func parse(
        _ message: UnsafeRawBufferPointer, source: IPAddress, destination: IPAddress, verifyChecksum: Bool = true
    ) throws(WireError) -> ICMPv6Header {
        guard message.count >= Self.length else { throw .truncated }
        if verifyChecksum {
            var sum = InternetChecksum.pseudoHeader(
                source: source, destination: destination, protocol: IPProtocol.icmpv6, length: message.count)
            sum.add(message)
            guard sum.isValid else { throw .badChecksum }
        }
        return ICMPHeader(type: message.load8(at: 0), code: message.load8(at: 1), checksum: message.load16(at: 2))
    }

    /// Stores the checksum of the `length`-byte message at the start of `buffer`, whose
    /// checksum field must already be zero.
    static func fillChecksum(
        _ buffer: UnsafeMutableRawBufferPointer, length: Int, source: IPAddress, destination: IPAddress
    ) {
        var sum = InternetChecksum.pseudoHeader(
            source: source, destination: destination, protocol: IPProtocol.icmpv6, length: length)
        sum.add(buffer.readOnly(0..<length))
        buffer.store16(sum.value, at: 2)
    }
}

/// An ICMPv6 echo request or reply (RFC 4443 4): laid out as ICMP's echo (8-byte header, then
/// data echoed verbatim), types 128 and 129, with the pseudo-header checksum.
public typealias ICMPv6Echo = ICMPEcho

extension ICMPEcho {
    /// Parses an ICMPv6 echo request or reply (the upper-layer payload) into its header and data.
    ///
    /// Throws `.truncated` below 8 bytes, `.badChecksum` when the pseudo-header checksum
    /// fails, and `.unsupported` for other types (use `ICMPv6Header.parse` for those).
    public static func parse(
        _ message: UnsafeRawBufferPointer, source: IPAddress, destination: IPAddress, verifyChecksum: Bool = true
    ) throws(WireError) -> (header: ICMPEcho, payload: UnsafeRawBufferPointer) {
        let basic = try ICMPv6Header.parse(
            message, source: source, destination: destination, verifyChecksum: verifyChecksum)
        guard basic.type == ICMPv6Type.echoRequest || basic.type == ICMPv6Type.echoReply else {
            throw .unsupported
        }
        return try fields(of: message, basic)
    }

    /// Writes an ICMPv6 echo message of `type` with `payload` and its checksum for the given
    /// addresses; returns 8 + payload.count, or 0 if `buffer` is too small. `payload` may
    /// overlap `buffer`.
    @discardableResult
    public static func write(
        to buffer: UnsafeMutableRawBufferPointer, type: UInt8, identifier: UInt16, sequence: UInt16,
        payload: UnsafeRawBufferPointer, source: IPAddress, destination: IPAddress
    ) -> Int {
        let total = writeFields(to: buffer, type: type, identifier: identifier, sequence: sequence, payload: payload)
        if total > 0 { ICMPv6Header.fillChecksum(buffer, length: total, source: source, destination: destination) }
        return total
    }

    /// Writes the ICMPv6 echo reply to `request` (same identifier, sequence and data) from
    /// `source` to `destination`; returns its length, or 0 if `buffer` is too small.
    /// `payload` may overlap `buffer`.
    @discardableResult
    public static func writeReply(
        to buffer: UnsafeMutableRawBufferPointer, for request: ICMPEcho, payload: UnsafeRawBufferPointer,
        source: IPAddress, destination: IPAddress
    ) -> Int {
        write(
            to: buffer, type: ICMPv6Type.echoReply, identifier: request.identifier, sequence: request.sequence,
            payload: payload, source: source, destination: destination)
    }
}
