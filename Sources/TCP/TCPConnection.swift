import Wire

/// One TCP connection as a pure state machine (RFC 9293 and the RFCs around it).
///
/// Segments go in through `handle(_:now:)`; segments come out of `poll(now:into:)`, which also
/// runs the timers. The application side is `read`, `write`, `shutdownWrite`, `close` and
/// `abort`. Nothing here reads a clock, does I/O or allocates after `init`: the owner passes
/// `now` and calls `poll` again no later than `nextDeadline`.
///
/// The struct holds two buffers, allocated once or lent by the endpoint's memory pool, and
/// given up early in TIME-WAIT (`releaseBuffers`); the owner calls `deallocate()` when it
/// drops the connection.
public struct TCPConnection {
    public internal(set) var configuration: TCPConfiguration
    public internal(set) var state: TCPState
    /// Set when the connection failed; reads and writes report it.
    public internal(set) var error: TCPError?
    /// Changes since the owner last called `takeEvents()`.
    public internal(set) var events: TCPEvents = []
    public internal(set) var statistics = TCPConnectionStatistics()
    /// True for connections made from a SYN that arrived at a listener.
    public let isPassive: Bool

    // Send sequence space (RFC 9293 3.3.1).
    public internal(set) var initialSendSequence: SequenceNumber
    public internal(set) var sendUnacknowledged: SequenceNumber
    /// The next sequence number to send; moves back on a retransmission timeout.
    public internal(set) var sendNext: SequenceNumber
    /// The highest sequence number sent so far plus one.
    public internal(set) var sendMax: SequenceNumber
    /// SND.WND, already scaled.
    public internal(set) var sendWindow: Int = 0
    /// The largest window the peer has offered (RFC 5961 MAX.SND.WND; sender SWS avoidance).
    var maxSendWindow: Int = 0
    var windowUpdateSequence = SequenceNumber(0)
    var windowUpdateAck = SequenceNumber(0)

    // Receive sequence space.
    public internal(set) var initialReceiveSequence = SequenceNumber(0)
    public internal(set) var receiveNext = SequenceNumber(0)
    /// RCV.NXT + the window in the last segment we sent; never moves left.
    var advertisedRightEdge = SequenceNumber(0)
    /// The edge the peer was told: `advertisedRightEdge` rounded up to the window-scale unit,
    /// at most one unit further (the receive buffer's slack covers it). Acceptability and
    /// trimming use this one; window arithmetic uses the exact edge, so rounding never compounds.
    var promisedRightEdge = SequenceNumber(0)

    // Negotiated options.
    public internal(set) var windowScalingEnabled = false
    public internal(set) var timestampsEnabled = false
    public internal(set) var sackEnabled = false
    /// Shift applied to windows the peer sends us.
    var sendWindowShift: UInt8 = 0
    /// Shift we apply to windows we send (announced in our SYN).
    var receiveWindowShift: UInt8
    /// The peer's MSS (536 when it sent none, RFC 9293 3.7.1).
    public internal(set) var peerMSS: Int = 536
    var recentTimestamp: UInt32 = 0
    var recentTimestampTime = Instant.zero
    var lastAckSent = SequenceNumber(0)
    var timestampOffset: UInt32

    // Buffers.
    var sendBuffer: SendBuffer
    var receiveBuffer: ReceiveBuffer
    /// Bytes of receive buffer beyond what we ever advertise (see `init`).
    let receiveSlack: Int

    // Closing.
    /// The application asked for FIN (shutdown(SHUT_WR) or close).
    var finRequested = false
    /// Sequence number of our FIN, fixed when it is requested.
    var finSequence = SequenceNumber(0)
    /// The application released the connection (close); no more reads.
    var closedByApplication = false
    /// Sequence number of a FIN that arrived ahead of missing data.
    var peerFinSequence: SequenceNumber?
    public internal(set) var peerFinReceived = false

    // Timers; `.never` when not armed.
    var retransmitDeadline = Instant.never
    /// Consecutive timeouts without progress; drives backoff and the retry limit.
    var retransmitCount = 0
    var rttEstimator: RTTEstimator
    /// The segment being timed for an RTT sample (Karn: only never-retransmitted data).
    var timedSequence: SequenceNumber?
    var timedAt = Instant.zero
    var persistDeadline = Instant.never
    var persistBackoff = 0
    var unansweredProbes = 0
    /// End of the byte a zero-window probe carried beyond `sendMax`, if any.
    var windowProbeEnd = SequenceNumber(0)
    var delayedAckDeadline = Instant.never
    var ackPending = false
    var ackNow = false
    var segmentsSinceAck = 0
    var keepAliveDeadline = Instant.never
    var keepAliveProbesSent = 0
    var keepAliveProbeDue = false
    var lastReceiveTime: Instant
    var lastSendTime: Instant
    var timeWaitDeadline = Instant.never
    var finWait2Deadline = Instant.never
    /// When a partial segment held by TCP_CORK goes out anyway.
    var corkDeadline = Instant.never
    /// Send the partial tail at the next output even if Nagle would hold it (uncorking).
    var pushPending = false

    // Congestion control and loss recovery.
    var congestion: CongestionController
    var inRecovery = false
    /// RFC 6582 "recover" / RFC 6675 RecoveryPoint.
    var recoveryPoint: SequenceNumber
    var duplicateAcks = 0
    var highRetransmitted: SequenceNumber
    var scoreboard = SACKScoreboard()
    /// Retransmit the segment at SND.UNA at the next output, outside the window checks.
    var fastRetransmitPending = false

    // SACK blocks we report, most recent first (RFC 2018 section 4).
    var reportedSACK = SACKBlockList()

    // Control segments that do not come from the normal output path.
    var resetPending = false
    var resetReplySequence: SequenceNumber?
    var challengeAckWindowStart = Instant.zero
    var challengeAcksInWindow = 0

    // MARK: Opening

    /// Active open: the connection starts in SYN-SENT and the SYN goes out at the next `poll`.
    /// `memory` (from a pool) holds the buffers when its layout matches `configuration`.
    public init(
        connectingWith configuration: TCPConfiguration, initialSequence: SequenceNumber, now: Instant,
        memory: ConnectionMemory? = nil
    ) {
        self.init(
            configuration: configuration, initialSequence: initialSequence, passive: false, now: now, memory: memory)
        state = .synSent
    }

    /// Passive open from a SYN that reached a listener: the connection starts in SYN-RECEIVED
    /// and the SYN-ACK goes out at the next `poll`. Returns nil for a segment that is not a SYN
    /// (the caller keeps `memory` then).
    public init?(
        acceptingSYN syn: TCPSegment, configuration: TCPConfiguration, initialSequence: SequenceNumber, now: Instant,
        memory: ConnectionMemory? = nil
    ) {
        guard syn.flags.contains(.syn), !syn.flags.contains(.ack), !syn.flags.contains(.rst) else { return nil }
        self.init(
            configuration: configuration, initialSequence: initialSequence, passive: true, now: now, memory: memory)
        state = .synReceived
        acceptPeerSYN(syn, now: now)
        statistics.segmentsReceived += 1
    }

    /// Passive open completed by a SYN cookie: the ACK that echoes the cookie creates the
    /// connection directly in ESTABLISHED. The options the peer's SYN carried are those the
    /// cookie preserved.
    public init(
        cookieAck ack: TCPSegment, peerMSS: Int, peerWindowShift: UInt8?, sackPermitted: Bool,
        configuration: TCPConfiguration, now: Instant, memory: ConnectionMemory? = nil
    ) {
        let iss = ack.acknowledgmentNumber - 1
        self.init(configuration: configuration, initialSequence: iss, passive: true, now: now, memory: memory)
        initialReceiveSequence = ack.sequenceNumber - 1
        receiveNext = ack.sequenceNumber
        advertisedRightEdge = receiveNext + Int(min(configuration.receiveBufferSize, 65535))
        promisedRightEdge = advertisedRightEdge
        self.peerMSS = peerMSS
        if let shift = peerWindowShift, configuration.windowScaling {
            windowScalingEnabled = true
            sendWindowShift = min(shift, 14)
        } else {
            receiveWindowShift = 0
        }
        // The cookie SYN-ACK carried the plain millisecond clock; keep using it so that our
        // timestamps never run backwards for the peer's PAWS.
        timestampOffset = 0
        sackEnabled = sackPermitted && configuration.selectiveAcknowledgments
        if let ts = ack.options.timestamp, configuration.timestamps {
            timestampsEnabled = true
            recentTimestamp = ts.value
            recentTimestampTime = now
        }
        sendUnacknowledged = ack.acknowledgmentNumber
        sendNext = ack.acknowledgmentNumber
        sendMax = ack.acknowledgmentNumber
        sendWindow = Int(ack.window) << Int(sendWindowShift)
        maxSendWindow = sendWindow
        windowUpdateSequence = ack.sequenceNumber
        windowUpdateAck = ack.acknowledgmentNumber
        state = .established
        events.insert(.connected)
        events.insert(.writable)
        armKeepAlive(now: now)
        statistics.segmentsReceived += 1
    }

    private init(
        configuration: TCPConfiguration, initialSequence: SequenceNumber, passive: Bool, now: Instant,
        memory: ConnectionMemory?
    ) {
        self.configuration = configuration
        self.isPassive = passive
        state = .closed
        initialSendSequence = initialSequence
        sendUnacknowledged = initialSequence
        sendNext = initialSequence
        sendMax = initialSequence
        recoveryPoint = initialSequence
        highRetransmitted = initialSequence
        windowProbeEnd = initialSequence
        // The layout includes one window-scale unit of receive slack (see ConnectionMemoryLayout).
        let layout = ConnectionMemoryLayout(configuration: configuration)
        receiveSlack = layout.receiveSlack
        if let memory, memory.layout == layout {
            sendBuffer = SendBuffer(borrowing: memory.sendStorage, capacity: layout.sendCapacity)
            receiveBuffer = ReceiveBuffer(
                borrowing: memory.receiveStorage, capacity: layout.receiveCapacity, rangeStorage: memory.rangeStorage,
                maximumOutOfOrderRanges: layout.reassemblyRanges)
        } else {
            sendBuffer = SendBuffer(capacity: layout.sendCapacity)
            receiveBuffer = ReceiveBuffer(
                capacity: layout.receiveCapacity, maximumOutOfOrderRanges: layout.reassemblyRanges)
        }
        receiveWindowShift =
            configuration.windowScaling ? Self.windowShift(forBufferSize: configuration.receiveBufferSize) : 0
        rttEstimator = RTTEstimator(
            initialRTO: configuration.initialRTO, minimumRTO: configuration.minimumRTO,
            maximumRTO: configuration.maximumRTO)
        // A per-connection offset keeps the timestamp clock from revealing uptime (RFC 7323 7.1).
        timestampOffset = initialSequence.rawValue &* 2_654_435_761
        lastReceiveTime = now
        lastSendTime = now
        let mss = min(configuration.maximumSegmentSize, 536)
        congestion = CongestionController(
            algorithm: configuration.congestionAlgorithm, mss: mss,
            initialWindow: Self.initialWindow(
                mss: mss,
                segments: configuration.initialWindowSegments))
    }

    /// Receive space we may offer the peer: the free buffer less the rounding slack.
    var advertisableSpace: Int {
        max(receiveBuffer.freeWindow - receiveSlack, 0)
    }

    /// True once `releaseBuffers` gave the data buffers back.
    public private(set) var buffersReleased = false

    /// Gives up the send and receive buffers of a connection that can no longer use them: in
    /// TIME-WAIT after the application let go, only ACKs of retransmitted FINs remain to be
    /// sent, and holding two buffers for 2*MSL would make short-connection servers keep
    /// gigabytes for nothing. The connection keeps working with empty buffers.
    public mutating func releaseBuffers() {
        guard !buffersReleased, state == .timeWait, receiveBuffer.readable == 0 else { return }
        sendBuffer.deallocate()
        receiveBuffer.deallocate()
        sendBuffer = SendBuffer(borrowing: EmptyBufferStorage.bytes, capacity: 0)
        receiveBuffer = ReceiveBuffer(
            borrowing: EmptyBufferStorage.bytes, capacity: 0, rangeStorage: EmptyBufferStorage.ranges,
            maximumOutOfOrderRanges: 1)
        buffersReleased = true
    }

    /// Frees the buffers it allocated (pool memory stays with the pool's owner). The connection
    /// must not be used afterwards.
    public mutating func deallocate() {
        sendBuffer.deallocate()
        receiveBuffer.deallocate()
    }

    /// RFC 6928 (and RFC 5681 for segments <= 2): the initial congestion window in bytes.
    static func initialWindow(mss: Int, segments: Int) -> Int {
        if segments <= 2 { return max(segments, 1) * mss }
        return min(segments * mss, max(2 * mss, 14600 * segments / 10))
    }

    // MARK: Application interface

    /// Returns the events gathered since the last call and clears them.
    public mutating func takeEvents() -> TCPEvents {
        let taken = events
        events = []
        return taken
    }

    /// Bytes the application can read now (FIONREAD).
    public var readableBytes: Int { receiveBuffer.readable }

    /// What readiness (epoll) needs, gathered without copying the connection.
    public struct Status: Sendable {
        public var state: TCPState
        public var error: TCPError?
        public var readableBytes: Int
        public var writableBytes: Int
        public var peerFinReceived: Bool
    }

    public var status: Status {
        Status(
            state: state, error: error, readableBytes: readableBytes, writableBytes: writableBytes,
            peerFinReceived: peerFinReceived)
    }
    /// Bytes the application can write now without blocking.
    public var writableBytes: Int {
        guard !finRequested, error == nil else { return 0 }
        switch state {
        case .synSent, .synReceived, .established, .closeWait: return sendBuffer.freeSpace
        default: return 0
        }
    }
    /// Bytes written but not yet acknowledged (SIOCOUTQ).
    public var unacknowledgedBytes: Int { sendBuffer.count }
    /// True when a read would not block: data, end of stream or an error.
    public var isReadable: Bool { receiveBuffer.readable > 0 || peerFinReceived || error != nil || state == .closed }
    /// True when a write would not block (or would fail at once).
    public var isWritable: Bool { writableBytes > 0 || error != nil || finRequested }
    public var smoothedRTT: Interval? { rttEstimator.smoothedRTT }
    /// RTTVAR (zero before the first sample).
    public var rttVariance: Interval { rttEstimator.rttVariance }
    /// Window-scale shifts in use: applied to the peer's windows and to ours.
    public var windowShifts: (send: UInt8, receive: UInt8) {
        windowScalingEnabled ? (sendWindowShift, receiveWindowShift) : (0, 0)
    }
    public var retransmissionTimeout: Interval { rttEstimator.backedOff(retransmitCount) }
    public var congestionWindow: Int { congestion.congestionWindow }
    public var slowStartThreshold: Int { congestion.slowStartThreshold }
    public var effectiveSendMSS: Int { sendMSS }

    /// Copies readable bytes into `buffer`.
    public mutating func read(into buffer: UnsafeMutableRawBufferPointer, now: Instant) -> TCPReadResult {
        if receiveBuffer.readable > 0 {
            guard buffer.count > 0 else { return .bytes(0) }
            let before = receiveWindowCandidate()
            let n = receiveBuffer.read(into: buffer)
            considerWindowUpdate(previousCandidate: before)
            return .bytes(n)
        }
        if let error { return .failed(error) }
        if peerFinReceived || state == .closed { return .endOfStream }
        if state == .synSent || state == .synReceived { return .wouldBlock }
        return .wouldBlock
    }

    /// Copies readable bytes into `buffer` and leaves them in place (MSG_PEEK); the same
    /// results as `read` otherwise.
    public func peek(into buffer: UnsafeMutableRawBufferPointer) -> TCPReadResult {
        if receiveBuffer.readable > 0 { return .bytes(receiveBuffer.peek(into: buffer)) }
        if let error { return .failed(error) }
        if peerFinReceived || state == .closed { return .endOfStream }
        return .wouldBlock
    }

    /// Copies as much of `bytes` into the send buffer as fits; it goes out at the next `poll`.
    public mutating func write(_ bytes: UnsafeRawBufferPointer, now: Instant) -> TCPWriteResult {
        if let error { return .failed(error) }
        if finRequested { return .failed(.brokenPipe) }
        switch state {
        case .synSent, .synReceived, .established, .closeWait: break
        case .closed: return .failed(.notConnected)
        default: return .failed(.brokenPipe)
        }
        if bytes.count == 0 { return .bytes(0) }
        let n = sendBuffer.append(bytes)
        if n == 0 { return .wouldBlock }
        return .bytes(n)
    }

    /// shutdown(SHUT_WR): FIN follows the data already written.
    public mutating func shutdownWrite(now: Instant) {
        guard !finRequested, error == nil else { return }
        switch state {
        case .synSent, .synReceived:
            finRequested = true
            finSequence = initialSendSequence + 1 + sendBuffer.count
        case .established:
            finRequested = true
            finSequence = dataStart + sendBuffer.count
            state = .finWait1
        case .closeWait:
            finRequested = true
            finSequence = dataStart + sendBuffer.count
            state = .lastAck
        default:
            break
        }
    }

    /// close(): the application is done. Unread data or data that arrives later makes the
    /// connection reset, as Linux does (RFC 2525 2.17); otherwise it closes gracefully.
    public mutating func close(now: Instant) {
        guard !closedByApplication else { return }
        closedByApplication = true
        switch state {
        case .closed, .listen, .timeWait:
            return
        case .synSent:
            enterClosed(error: nil)
            return
        default:
            break
        }
        if closeResets {
            abort(now: now)
            return
        }
        shutdownWrite(now: now)
        if state == .finWait2 { finWait2Deadline = now + configuration.finWait2Timeout }
    }

    /// Closing now resets rather than sends FIN: data arrived that the application never read
    /// (RFC 1122 4.2.2.13, as Linux does).
    public var closeResets: Bool { receiveBuffer.readable > 0 || receiveBuffer.hasOutOfOrderData }

    /// Sends RST (in synchronized states) and moves to CLOSED at once (SO_LINGER 0, mtcp_abort).
    public mutating func abort(now: Instant) {
        switch state {
        case .synReceived, .established, .finWait1, .finWait2, .closeWait:
            resetPending = true
        default:
            enterClosed(error: nil)
        }
        closedByApplication = true
    }

    // MARK: Shared helpers

    /// Sequence number of the first byte in the send buffer.
    var dataStart: SequenceNumber {
        sendUnacknowledged == initialSendSequence ? initialSendSequence + 1 : sendUnacknowledged
    }

    /// The largest payload one segment carries: the peer's MSS less our fixed options.
    var sendMSS: Int {
        let mss = min(peerMSS, configuration.maximumSegmentSize)
        return max(mss - (timestampsEnabled ? 12 : 0), 64)
    }

    mutating func enterClosed(error: TCPError?) {
        if let error, self.error == nil {
            self.error = error
            events.insert(.failed)
        }
        state = .closed
        events.insert(.closed)
        if error != nil { events.insert([.readable, .writable]) }
        retransmitDeadline = .never
        persistDeadline = .never
        delayedAckDeadline = .never
        keepAliveDeadline = .never
        timeWaitDeadline = .never
        finWait2Deadline = .never
        corkDeadline = .never
        ackPending = false
        ackNow = false
    }

    mutating func enterTimeWait(now: Instant) {
        state = .timeWait
        timeWaitDeadline = now + configuration.timeWaitDuration
        retransmitDeadline = .never
        persistDeadline = .never
        keepAliveDeadline = .never
        finWait2Deadline = .never
        corkDeadline = .never
    }

    mutating func armKeepAlive(now: Instant) {
        guard configuration.keepAlive else {
            keepAliveDeadline = .never
            return
        }
        keepAliveProbesSent = 0
        keepAliveDeadline = now + configuration.keepAliveIdle
    }

    /// Changes keepalive settings (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT) on a live connection.
    public mutating func setKeepAlive(
        _ enabled: Bool, idle: Interval? = nil, interval: Interval? = nil, count: Int? = nil, now: Instant
    ) {
        configuration.keepAlive = enabled
        if let idle { configuration.keepAliveIdle = idle }
        if let interval { configuration.keepAliveInterval = interval }
        if let count { configuration.keepAliveCount = max(count, 1) }
        if enabled && (state == .established || state == .closeWait) {
            keepAliveProbesSent = 0
            keepAliveDeadline = lastReceiveTime + configuration.keepAliveIdle
        } else if !enabled {
            keepAliveDeadline = .never
        }
    }

    /// TCP_NODELAY on a live connection.
    public mutating func setNoDelay(_ noDelay: Bool) {
        configuration.noDelay = noDelay
    }

    /// TCP_CORK on a live connection; uncorking pushes a held partial segment out at once.
    public mutating func setCork(_ cork: Bool) {
        if configuration.cork && !cork { pushPending = true }
        configuration.cork = cork
        if !cork { corkDeadline = .never }
    }

    /// The earliest instant at which `poll` has timer work to do.
    public var nextDeadline: Instant {
        if resetPending || ackNow || fastRetransmitPending || resetReplySequence != nil { return .zero }
        var d = retransmitDeadline
        d = min(d, persistDeadline)
        d = min(d, delayedAckDeadline)
        d = min(d, keepAliveDeadline)
        d = min(d, timeWaitDeadline)
        d = min(d, finWait2Deadline)
        d = min(d, corkDeadline)
        return d
    }
}

extension TCPConnection {
    /// The window shift we announce for a receive buffer of this size (RFC 7323 2.3).
    public static func windowShift(forBufferSize size: Int) -> UInt8 {
        var shift: UInt8 = 0
        while shift < 14 && (size >> Int(shift)) > 65535 { shift += 1 }
        return shift
    }

    /// True once the application called `close` or `abort`.
    public var isReleasedByApplication: Bool { closedByApplication }

    /// True while a RST still has to go out at the next `poll`.
    public var resetPendingForOutput: Bool { resetPending }

    /// TS.Recent: the newest timestamp the peer sent (RFC 7323).
    public var peerRecentTimestamp: UInt32 { recentTimestamp }
}

/// Storage behind zero-capacity buffers of connections that released theirs; never written
/// (a zero-capacity buffer stores nothing and a TIME-WAIT connection accepts no data).
enum EmptyBufferStorage {
    nonisolated(unsafe) static let bytes = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
    nonisolated(unsafe) static let ranges = UnsafeMutablePointer<UInt64>.allocate(capacity: 2)
}
