/// ICMP message types this stack uses (RFC 792).
public enum ICMPType {
    /// Echo reply.
    public static let echoReply: UInt8 = 0
    /// Destination unreachable.
    public static let destinationUnreachable: UInt8 = 3
    /// Echo request.
    public static let echoRequest: UInt8 = 8
    /// Time exceeded.
    public static let timeExceeded: UInt8 = 11
}

/// The fixed start of every ICMP message: type, code and checksum.
public struct ICMPHeader: Hashable, Sendable {
    /// Bytes in the type/code/checksum part.
    public static let length = 4

    public var type: UInt8
    public var code: UInt8
    /// The checksum as received.
    public var checksum: UInt16

    /// A header from its fields.
    public init(type: UInt8, code: UInt8, checksum: UInt16 = 0) {
        self.type = type
        self.code = code
        self.checksum = checksum
    }

    /// Parses any ICMP message's type and code, verifying the checksum over the whole
    /// message (`.truncated` below 4 bytes, `.badChecksum`).
    public static func parse(
        _ message: UnsafeRawBufferPointer, verifyChecksum: Bool = true
    ) throws(WireError) -> ICMPHeader {
        guard message.count >= length else { throw .truncated }
        if verifyChecksum {
            guard InternetChecksum.verify(message) else { throw .badChecksum }
        }
        return ICMPHeader(type: message.load8(at: 0), code: message.load8(at: 1), checksum: message.load16(at: 2))
    }
}

/// An ICMP echo request or reply (RFC 792): 8-byte header, then data echoed verbatim.
public struct ICMPEcho: Hashable, Sendable {
    /// Bytes in the echo header.
    public static let headerLength = 8

    /// 8 request, 0 reply.
    public var type: UInt8
    public var code: UInt8
    public var identifier: UInt16
    public var sequence: UInt16

    /// An echo header from its fields.
    public init(type: UInt8, code: UInt8 = 0, identifier: UInt16, sequence: UInt16) {
        self.type = type
        self.code = code
        self.identifier = identifier
        self.sequence = sequence
    }

    /// Parses an echo request or reply (the IPv4 payload) into its header and data.
    ///
    /// Throws `.truncated` below 8 bytes, `.badChecksum` when the checksum over the whole
    /// message fails, and `.unsupported` for other types (use `ICMPHeader.parse` for those).
    public static func parse(
        _ message: UnsafeRawBufferPointer, verifyChecksum: Bool = true
    ) throws(WireError) -> (header: ICMPEcho, payload: UnsafeRawBufferPointer) {
        let basic = try ICMPHeader.parse(message, verifyChecksum: verifyChecksum)
        guard basic.type == ICMPType.echoRequest || basic.type == ICMPType.echoReply else { throw .unsupported }
        return try fields(of: message, basic)
    }

    /// The echo header and data of a message whose type and code are `basic` (ICMP's or ICMPv6's).
    static func fields(
        of message: UnsafeRawBufferPointer, _ basic: ICMPHeader
    ) throws(WireError) -> (header: ICMPEcho, payload: UnsafeRawBufferPointer) {
        guard message.count >= headerLength else { throw .truncated }
        let echo = ICMPEcho(
            type: basic.type, code: basic.code, identifier: message.load16(at: 4), sequence: message.load16(at: 6))
        return (echo, message.suffix(from: headerLength))
    }

    /// Writes an echo message of `type` with `payload` and its checksum; returns
    /// 8 + payload.count, or 0 if `buffer` is too small. `payload` may overlap `buffer`.
    @discardableResult
    public static func write(
        to buffer: UnsafeMutableRawBufferPointer, type: UInt8, identifier: UInt16, sequence: UInt16,
        payload: UnsafeRawBufferPointer
    ) -> Int {
        let total = writeFields(to: buffer, type: type, identifier: identifier, sequence: sequence, payload: payload)
        if total > 0 { buffer.store16(InternetChecksum.compute(buffer.readOnly(0..<total)), at: 2) }
        return total
    }

    /// The message without its checksum (the field left 0), for ICMP and ICMPv6 alike; its
    /// length, or 0 if `buffer` is too small.
    static func writeFields(
        to buffer: UnsafeMutableRawBufferPointer, type: UInt8, identifier: UInt16, sequence: UInt16,
        payload: UnsafeRawBufferPointer
    ) -> Int {
        let total = headerLength + payload.count
        guard buffer.count >= total else { return 0 }
        // Copy first: the payload may be the request's own bytes, just past the header.
        buffer.copy(payload, at: headerLength)
        buffer.store8(type, at: 0)
        buffer.store8(0, at: 1)
        buffer.store16(0, at: 2)
        buffer.store16(identifier, at: 4)
        buffer.store16(sequence, at: 6)
        return total
    }

    /// Writes the echo reply to `request` (same identifier, sequence and data); returns
    /// its length, or 0 if `buffer` is too small. `payload` may overlap `buffer`.
    @discardableResult
    public static func writeReply(
        to buffer: UnsafeMutableRawBufferPointer, for request: ICMPEcho, payload: UnsafeRawBufferPointer
    ) -> Int {
        write(
            to: buffer, type: ICMPType.echoReply, identifier: request.identifier, sequence: request.sequence,
            payload: payload)
    }
}
