import Wire

/// A TCP segment as the state machine sees it: header fields without ports (the endpoint
/// owns addressing), parsed options, and the payload as up to two views (an outgoing
/// payload may wrap around the send ring). Views are valid only during the call that
/// hands them over.
public struct TCPSegment {
    public var sequenceNumber: SequenceNumber
    public var acknowledgmentNumber: SequenceNumber
    public var flags: TCPFlags
    public var window: UInt16
    public var options: TCPOptions
    public var payload: UnsafeRawBufferPointer
    public var payloadTail: UnsafeRawBufferPointer

    public init(
        sequenceNumber: SequenceNumber, acknowledgmentNumber: SequenceNumber = SequenceNumber(0),
        flags: TCPFlags, window: UInt16 = 0, options: TCPOptions = TCPOptions(),
        payload: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        payloadTail: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) {
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.options = options
        self.payload = payload
        self.payloadTail = payloadTail
    }

    public var payloadLength: Int { payload.count + payloadTail.count }

    /// SEG.LEN: payload plus one for each of SYN and FIN.
    public var sequenceLength: Int {
        payloadLength + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0)
    }
}

/// Where a connection puts the segments it emits. Generic, so calls are static.
public protocol TCPSegmentSink {
    mutating func send(_ segment: TCPSegment)
}

/// Answers for segments that match no connection (RFC 9293 3.10.7.1): never answer a RST;
/// if the segment has ACK, <SEQ=SEG.ACK><CTL=RST>; otherwise <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
public enum TCPReset {
    public static func reply(to segment: TCPSegment) -> TCPSegment? {
        if segment.flags.contains(.rst) { return nil }
        if segment.flags.contains(.ack) {
            return TCPSegment(sequenceNumber: segment.acknowledgmentNumber, flags: .rst)
        }
        return TCPSegment(
            sequenceNumber: SequenceNumber(0),
            acknowledgmentNumber: segment.sequenceNumber + segment.sequenceLength,
            flags: [.rst, .ack])
    }
}
