/// A TCP header (RFC 9293 section 3.1), fields in host order, options decoded.
public struct TCPHeader: Hashable, Sendable {
    /// Bytes in a header without options.
    public static let minimumLength = 20

    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequenceNumber: UInt32
    public var acknowledgmentNumber: UInt32
    /// Data offset * 4: 20...60 bytes.
    public var headerLength: Int
    public var flags: TCPFlags
    /// The window field as sent, not yet shifted by the window scale.
    public var window: UInt16
    /// The checksum as received (already verified by `parse` unless told not to).
    public var checksum: UInt16
    public var urgentPointer: UInt16
    public var options: TCPOptions

    /// A header from its fields.
    public init(
        sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: UInt32, acknowledgmentNumber: UInt32,
        headerLength: Int = 20, flags: TCPFlags, window: UInt16, checksum: UInt16 = 0, urgentPointer: UInt16 = 0,
        options: TCPOptions = TCPOptions()
    ) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.headerLength = headerLength
        self.flags = flags
        self.window = window
        self.checksum = checksum
        self.urgentPointer = urgentPointer
        self.options = options
    }

    /// Parses and validates a TCP segment (the IP payload, cut at the packet's length).
    ///
    /// The checksum over pseudo-header and segment is checked first, so any corruption
    /// reads as `.badChecksum`. Throws `.truncated` below 20 bytes or when the data
    /// offset runs past the buffer, `.badLength` for a data offset below 5, and
    /// `.badOption` for malformed options (see `TCPOptions.parse`).
    public static func parse(
        _ segment: UnsafeRawBufferPointer, source: IPAddress, destination: IPAddress,
        verifyChecksum: Bool = true
    ) throws(WireError) -> (header: TCPHeader, payload: UnsafeRawBufferPointer) {
        guard segment.count >= minimumLength else { throw .truncated }
        if verifyChecksum {
            var sum = InternetChecksum.pseudoHeader(
                source: source, destination: destination, protocol: IPProtocol.tcp, length: segment.count)
            sum.add(segment)
            guard sum.isValid else { throw .badChecksum }
        }
        let offsetFlags = segment.load16(at: 12)
        let headerLength = Int(offsetFlags >> 12) * 4
        guard headerLength >= minimumLength else { throw .badLength }
        guard headerLength <= segment.count else { throw .truncated }
        let options =
            headerLength == minimumLength
            ? TCPOptions() : try TCPOptions.parse(segment.slice(minimumLength..<headerLength))
        let header = TCPHeader(
            sourcePort: segment.load16(at: 0), destinationPort: segment.load16(at: 2),
            sequenceNumber: segment.load32(at: 4), acknowledgmentNumber: segment.load32(at: 8),
            headerLength: headerLength, flags: TCPFlags(rawValue: UInt8(truncatingIfNeeded: offsetFlags)),
            window: segment.load16(at: 14), checksum: segment.load16(at: 16), urgentPointer: segment.load16(at: 18),
            options: options)
        return (header, segment.suffix(from: headerLength))
    }

    /// Option bytes `write` will put in a header with `options` (a multiple of 4, at most
    /// 40), so a sender can size its payload as MSS minus this.
    public static func encodedOptionsLength(_ options: TCPOptions) -> Int {
        options.encodedLength
    }

    /// Writes a segment: header, encoded options, `first` then `second` payload piece
    /// (e.g. the two halves of a wrapped ring buffer), and the checksum over the
    /// pseudo-header. Returns the segment length, or 0 (nothing meaningful written) if
    /// `buffer` is too small or the segment would not fit in an IP packet.
    /// `checksum: false` leaves the checksum field 0 for a port that fills it in (transmit
    /// checksum offload).
    @discardableResult
    public static func write(
        to buffer: UnsafeMutableRawBufferPointer, sourcePort: UInt16, destinationPort: UInt16,
        sequenceNumber: UInt32, acknowledgmentNumber: UInt32, flags: TCPFlags, window: UInt16,
        urgentPointer: UInt16 = 0, options: TCPOptions, payload first: UnsafeRawBufferPointer,
        _ second: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        source: IPAddress, destination: IPAddress, checksum: Bool = true
    ) -> Int {
        let headerLength = minimumLength + options.encodedLength
        let total = headerLength + first.count + second.count
        // IPv4's total length covers its header; IPv6's payload length does not.
        let limit = source.isIPv4 ? 65535 - IPv4Header.minimumLength : 65535
        guard buffer.count >= total, total <= limit else { return 0 }
        buffer.store16(sourcePort, at: 0)
        buffer.store16(destinationPort, at: 2)
        buffer.store32(sequenceNumber, at: 4)
        buffer.store32(acknowledgmentNumber, at: 8)
        buffer.store16(UInt16(headerLength / 4) << 12 | UInt16(flags.rawValue), at: 12)
        buffer.store16(window, at: 14)
        buffer.store16(0, at: 16)
        buffer.store16(urgentPointer, at: 18)
        options.encode(to: UnsafeMutableRawBufferPointer(rebasing: buffer[minimumLength..<headerLength]))
        buffer.copy(first, at: headerLength)
        buffer.copy(second, at: headerLength + first.count)
        guard checksum else { return total }
        var sum = InternetChecksum.pseudoHeader(
            source: source, destination: destination, protocol: IPProtocol.tcp, length: total)
        sum.add(buffer.readOnly(0..<total))
        buffer.store16(sum.value, at: 16)
        return total
    }

    /// `parse` for an IPv4 packet's addresses.
    @inline(__always)
    public static func parse(
        _ segment: UnsafeRawBufferPointer, source: IPv4Address, destination: IPv4Address,
        verifyChecksum: Bool = true
    ) throws(WireError) -> (header: TCPHeader, payload: UnsafeRawBufferPointer) {
        try parse(
            segment, source: IPAddress(source), destination: IPAddress(destination), verifyChecksum: verifyChecksum)
    }
}
