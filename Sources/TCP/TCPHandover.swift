import Wire

/// A connection a listener completed (or half-completed) but its application never accepted,
/// described so that another endpoint listening on the same port can take it, as Linux's
/// tcp_migrate_req moves such requests between SO_REUSEPORT listeners: an nginx worker that
/// stops listening on reload hands its accept queue to the workers that stay instead of
/// resetting it. Only connections that sent nothing but their SYN-ACK qualify, so the new
/// owner rebuilds them from the handshake and the bytes received in order.
public struct TCPHandover: Equatable, Sendable {
    public var peerInitialSequence: UInt32
    public var localInitialSequence: UInt32
    /// The peer's window as its segments carry it (unscaled).
    public var peerWindow: UInt16
    public var peerMSS: UInt16
    /// The peer's window scale, when scaling was agreed.
    public var peerWindowShift: UInt8?
    public var sackEnabled: Bool
    /// The peer's last timestamp, when timestamps were agreed.
    public var peerTimestamp: UInt32?
    /// The connection's timestamp clock offset: ours must not jump for the peer's PAWS.
    public var timestampOffset: UInt32
    public var peerFinished: Bool
    /// What the peer sent in order and nobody read (a request, typically).
    public var data: [UInt8]

    /// The most received data a handover carries; a connection with more is reset.
    public static let maximumData = 1024
    static let headerBytes = 24
    /// The encoded size (fixed, for a map value).
    public static let encodedBytes = headerBytes + maximumData

    public init(
        peerInitialSequence: UInt32, localInitialSequence: UInt32, peerWindow: UInt16, peerMSS: UInt16,
        peerWindowShift: UInt8?, sackEnabled: Bool, peerTimestamp: UInt32?, timestampOffset: UInt32,
        peerFinished: Bool, data: [UInt8]
    ) {
        self.peerInitialSequence = peerInitialSequence
        self.localInitialSequence = localInitialSequence
        self.peerWindow = peerWindow
        self.peerMSS = peerMSS
        self.peerWindowShift = peerWindowShift
        self.sackEnabled = sackEnabled
        self.peerTimestamp = peerTimestamp
        self.timestampOffset = timestampOffset
        self.peerFinished = peerFinished
        self.data = data
    }

    /// Little-endian fixed layout: ISNs, offset, timestamp, window, MSS, data length, shift
    /// (0xFF: none), flags (SACK, timestamps, FIN), then the data, zero-padded.
    public func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.encodedBytes)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { raw in
                for (k, byte) in raw.enumerated() { bytes[offset + k] = byte }
            }
        }
        put(peerInitialSequence, at: 0)
        put(localInitialSequence, at: 4)
        put(timestampOffset, at: 8)
        put(peerTimestamp ?? 0, at: 12)
        put(peerWindow, at: 16)
        put(peerMSS, at: 18)
        put(UInt16(data.count), at: 20)
        bytes[22] = peerWindowShift ?? 0xFF
        bytes[23] = (sackEnabled ? 1 : 0) | (peerTimestamp != nil ? 2 : 0) | (peerFinished ? 4 : 0)
        bytes.replaceSubrange(Self.headerBytes..<(Self.headerBytes + data.count), with: data)
        return bytes
    }

    /// Decodes `encoded()`; nil for bytes that are not one.
    public init?(encoded bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.headerBytes else { return nil }
        func get<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
            T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        let length = Int(get(UInt16.self, at: 20))
        guard length <= Self.maximumData, bytes.count >= Self.headerBytes + length else { return nil }
        let flags = bytes[23]
        self.init(
            peerInitialSequence: get(UInt32.self, at: 0), localInitialSequence: get(UInt32.self, at: 4),
            peerWindow: get(UInt16.self, at: 16), peerMSS: get(UInt16.self, at: 18),
            peerWindowShift: bytes[22] == 0xFF ? nil : bytes[22], sackEnabled: flags & 1 != 0,
            peerTimestamp: flags & 2 != 0 ? get(UInt32.self, at: 12) : nil, timestampOffset: get(UInt32.self, at: 8),
            peerFinished: flags & 4 != 0,
            data: Array(bytes[Self.headerBytes..<(Self.headerBytes + length)]))
    }

    /// The probe that makes the peer answer at once (as a keep-alive probe: one byte below
    /// what it has acknowledged, after the SYN-ACK), so its answer reaches the new owner.
    public func probe(window: UInt16) -> TCPSegment {
        var acknowledged = SequenceNumber(peerInitialSequence) + 1 + data.count
        if peerFinished { acknowledged = acknowledged + 1 }
        return TCPSegment(
            sequenceNumber: SequenceNumber(localInitialSequence), acknowledgmentNumber: acknowledged, flags: [.ack],
            window: window)
    }

    /// The segment the peer's handshake ACK would have been, carrying the data and FIN: what
    /// the new owner builds the connection from and then processes.
    public var peerSegment: TCPSegment {
        var options = TCPOptions()
        if let peerTimestamp { options.timestamp = TCPTimestampOption(value: peerTimestamp, echoReply: 0) }
        return TCPSegment(
            sequenceNumber: SequenceNumber(peerInitialSequence) + 1,
            acknowledgmentNumber: SequenceNumber(localInitialSequence) + 1,
            flags: peerFinished ? [.ack, .fin] : [.ack], window: peerWindow, options: options)
    }
}

extension TCPConnection {
    /// This connection as a handover, when it can be one: a passive open that has sent
    /// nothing but its SYN-ACK and holds no more than `maximumData` bytes, all in order.
    public var handover: TCPHandover? {
        guard isPassive, state == .synReceived || state == .established || state == .closeWait,
            sendMax == initialSendSequence + 1, sendBuffer.count == 0, !receiveBuffer.hasOutOfOrderData,
            receiveBuffer.readable <= TCPHandover.maximumData
        else { return nil }
        var data = [UInt8](repeating: 0, count: receiveBuffer.readable)
        if !data.isEmpty { _ = data.withUnsafeMutableBytes { receiveBuffer.peek(into: $0) } }
        let window = state == .synReceived ? sendWindow : sendWindow >> Int(sendWindowShift)
        return TCPHandover(
            peerInitialSequence: initialReceiveSequence.rawValue, localInitialSequence: initialSendSequence.rawValue,
            peerWindow: UInt16(clamping: window), peerMSS: UInt16(clamping: peerMSS),
            peerWindowShift: windowScalingEnabled ? sendWindowShift : nil, sackEnabled: sackEnabled,
            peerTimestamp: timestampsEnabled ? recentTimestamp : nil, timestampOffset: timestampOffset,
            peerFinished: peerFinReceived, data: data)
    }

    /// The window the connection advertises now, as its segments carry it.
    var advertisedWindowField: UInt16 { UInt16(clamping: advertisableSpace >> Int(receiveWindowShift)) }

    /// A connection taken over from another endpoint (see `TCPHandover`): established as the
    /// handshake left it; the caller then processes `handover.peerSegment` with the data.
    public init(handover: TCPHandover, configuration: TCPConfiguration, now: Instant, memory: ConnectionMemory? = nil) {
        self.init(
            cookieAck: handover.peerSegment, peerMSS: Int(handover.peerMSS), peerWindowShift: handover.peerWindowShift,
            sackPermitted: handover.sackEnabled, configuration: configuration, now: now, memory: memory)
        timestampOffset = handover.timestampOffset
    }
}
