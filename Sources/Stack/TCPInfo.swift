import TCP

/// getsockopt(TCP_INFO): Linux's `struct tcp_info`, with the fields we know at Linux's byte
/// offsets and the rest zero. Programs (nginx's $tcpinfo_rtt, ss-like tools) read only these.
enum TCPInfo {
    /// sizeof(struct tcp_info) up to tcpi_total_rto_time (Linux 6.7 and later); callers get
    /// at most their buffer's length, as from the kernel.
    static let length = 248

    static let state = 0
    static let options = 5
    static let windowScales = 6
    static let rto = 8
    static let sendMSS = 16
    static let receiveMSS = 20
    static let rtt = 68
    static let rttVariance = 72
    static let sendSlowStartThreshold = 76
    static let sendCongestionWindow = 80
    static let advertisedMSS = 84
    static let totalRetransmissions = 100
    static let sendWindow = 228

    /// tcpi_options bits.
    static let optionTimestamps: UInt8 = 1
    static let optionSACK: UInt8 = 2
    static let optionWindowScale: UInt8 = 4

    /// Linux's TCP state numbers (include/net/tcp_states.h).
    static func linuxState(_ state: TCPState) -> UInt8 {
        switch state {
        case .established: return 1
        case .synSent: return 2
        case .synReceived: return 3
        case .finWait1: return 4
        case .finWait2: return 5
        case .timeWait: return 6
        case .closed: return 7
        case .closeWait: return 8
        case .lastAck: return 9
        case .listen: return 10
        case .closing: return 11
        }
    }
}

extension NetworkStack {
    /// Fills `value` with socket `i`'s tcp_info; returns the length written.
    func tcpInfo(_ i: Int, into value: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(value.count, TCPInfo.length)
        guard n > 0 else { return 0 }
        // Written in place, cut at the caller's length (no allocation).
        let raw = UnsafeMutableRawBufferPointer(rebasing: value[0..<n])
        raw.initializeMemory(as: UInt8.self, repeating: 0)
        func put(_ byte: UInt8, at offset: Int) {
            if offset < n { raw[offset] = byte }
        }
        func put(_ v: Int, at offset: Int) {
            guard offset + 4 <= n else { return }
            raw.storeBytes(of: UInt32(clamping: max(v, 0)), toByteOffset: offset, as: UInt32.self)
        }
        func put(_ v: Interval, at offset: Int) {
            put(Int(clamping: v.nanoseconds / 1_000), at: offset)
        }
        let socket = sockets.slots[i]!
        guard let id = socket.connection, let connection = endpoint.connection(id) else {
            put(TCPInfo.linuxState(socket.phase == .listening ? .listen : .closed), at: TCPInfo.state)
            return n
        }
        put(TCPInfo.linuxState(connection.state), at: TCPInfo.state)
        var options: UInt8 = 0
        if connection.timestampsEnabled { options |= TCPInfo.optionTimestamps }
        if connection.sackEnabled { options |= TCPInfo.optionSACK }
        if connection.windowScalingEnabled { options |= TCPInfo.optionWindowScale }
        put(options, at: TCPInfo.options)
        let shifts = connection.windowShifts
        put((shifts.send & 0xF) | (shifts.receive & 0xF) << 4, at: TCPInfo.windowScales)
        let mss = max(connection.effectiveSendMSS, 1)
        put(connection.retransmissionTimeout, at: TCPInfo.rto)
        put(mss, at: TCPInfo.sendMSS)
        put(min(connection.peerMSS, connection.configuration.maximumSegmentSize), at: TCPInfo.receiveMSS)
        put(connection.smoothedRTT ?? .zero, at: TCPInfo.rtt)
        put(connection.rttVariance, at: TCPInfo.rttVariance)
        // Linux reports an unset threshold as 0x7fffffff; windows are counted in segments.
        let threshold = connection.slowStartThreshold
        put(threshold >= Int(Int32.max) ? Int(Int32.max) : threshold / mss, at: TCPInfo.sendSlowStartThreshold)
        put(connection.congestionWindow / mss, at: TCPInfo.sendCongestionWindow)
        put(connection.configuration.maximumSegmentSize, at: TCPInfo.advertisedMSS)
        put(connection.statistics.retransmittedSegments, at: TCPInfo.totalRetransmissions)
        put(connection.sendWindow, at: TCPInfo.sendWindow)
        return n
    }
}
