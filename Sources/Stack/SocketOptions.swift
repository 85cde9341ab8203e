import TCP
import Wire

/// Linux's values for the socket-layer constants the API takes.
public enum SocketConstant {
    public static let SOCK_STREAM: Int32 = 1
    public static let SOL_SOCKET: Int32 = 1
    public static let IPPROTO_TCP: Int32 = 6
    public static let SO_REUSEADDR: Int32 = 2
    public static let SO_TYPE: Int32 = 3
    public static let SO_ERROR: Int32 = 4
    public static let SO_SNDBUF: Int32 = 7
    public static let SO_RCVBUF: Int32 = 8
    public static let SO_KEEPALIVE: Int32 = 9
    public static let SO_LINGER: Int32 = 13
    public static let SO_REUSEPORT: Int32 = 15
    /// struct timeval (16 bytes on 64-bit Linux).
    public static let SO_RCVTIMEO: Int32 = 20
    public static let SO_SNDTIMEO: Int32 = 21
    public static let SO_ACCEPTCONN: Int32 = 30
    public static let SO_PROTOCOL: Int32 = 38
    public static let SO_DOMAIN: Int32 = 39
    /// The NAPI id of the queue the last segment came in on (read only; Java probes it).
    public static let SO_INCOMING_NAPI_ID: Int32 = 56
    public static let AF_INET: Int32 = 2
    public static let TCP_NODELAY: Int32 = 1
    public static let TCP_CORK: Int32 = 3
    public static let TCP_KEEPIDLE: Int32 = 4
    public static let TCP_KEEPINTVL: Int32 = 5
    public static let TCP_KEEPCNT: Int32 = 6
    /// struct tcp_info (see `TCPInfo`).
    public static let TCP_INFO: Int32 = 11
    public static let TCP_CONGESTION: Int32 = 13
    public static let SHUT_RD: Int32 = 0
    public static let SHUT_WR: Int32 = 1
    public static let SHUT_RDWR: Int32 = 2
    public static let FIONREAD: UInt = 0x541B
    public static let FIONBIO: UInt = 0x5421
}

/// The per-socket option values that `setsockopt` changes and `getsockopt` reads.
struct SocketOptions {
    var reuseAddress = false
    var reusePort = false
    /// As requested (Linux reports twice this, and so do we).
    var receiveBuffer: Int?
    var sendBuffer: Int?
    var keepAlive = false
    var keepIdleSeconds = 7200
    var keepIntervalSeconds = 75
    var keepCount = 9
    var noDelay = false
    var cork = false
    var lingerOn = false
    var lingerSeconds: Int32 = 0
    var receiveTimeout: Interval?
    var sendTimeout: Interval?
    var congestion: CongestionAlgorithm?

    /// The TCP configuration a connection of this socket starts with.
    func apply(to base: TCPConfiguration) -> TCPConfiguration {
        var tcp = base
        if let receiveBuffer { tcp.receiveBufferSize = max(receiveBuffer, 2048) }
        if let sendBuffer { tcp.sendBufferSize = max(sendBuffer, 2048) }
        tcp.keepAlive = keepAlive
        tcp.keepAliveIdle = .seconds(UInt64(keepIdleSeconds))
        tcp.keepAliveInterval = .seconds(UInt64(keepIntervalSeconds))
        tcp.keepAliveCount = keepCount
        tcp.noDelay = noDelay
        tcp.cork = cork
        if let congestion { tcp.congestionAlgorithm = congestion }
        return tcp
    }
}

/// setsockopt / getsockopt for the options the stack implements.
extension NetworkStack {
    /// setsockopt(2): `value` holds the C representation (int, struct linger, struct timeval,
    /// or a congestion algorithm name).
    public func setsockopt(_ id: Int32, level: Int32, name: Int32, value: UnsafeRawBufferPointer) throws(Errno) {
        let i = try socketIndex(id)
        typealias C = SocketConstant
        func int() throws(Errno) -> Int32 {
            guard value.count >= 4 else { throw .EINVAL }
            return value.loadUnaligned(as: Int32.self)
        }
        func interval() throws(Errno) -> Interval? {
            guard value.count >= 16 else { throw .EINVAL }
            let seconds = value.loadUnaligned(fromByteOffset: 0, as: Int64.self)
            let micros = value.loadUnaligned(fromByteOffset: 8, as: Int64.self)
            guard seconds >= 0, micros >= 0, micros < 1_000_000 else { throw .EINVAL }
            // Longer than Int64 nanoseconds hold (292 years) is none, as Linux takes a timeout
            // beyond its jiffies for MAX_SCHEDULE_TIMEOUT (read back as 0); the plain sum trapped.
            let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
            let (ns, over) = whole.addingReportingOverflow(micros * 1_000)
            if ns == 0 || overflow || over { return nil }
            return Interval(nanoseconds: UInt64(ns))
        }
        var options = sockets.slots[i]!.options
        switch (level, name) {
        case (C.SOL_SOCKET, C.SO_REUSEADDR): options.reuseAddress = try int() != 0
        case (C.SOL_SOCKET, C.SO_REUSEPORT): options.reusePort = try int() != 0
        case (C.SOL_SOCKET, C.SO_RCVBUF): options.receiveBuffer = max(Int(try int()), 0)
        case (C.SOL_SOCKET, C.SO_SNDBUF): options.sendBuffer = max(Int(try int()), 0)
        case (C.SOL_SOCKET, C.SO_KEEPALIVE): options.keepAlive = try int() != 0
        case (C.SOL_SOCKET, C.SO_LINGER):
            guard value.count >= 8 else { throw .EINVAL }
            options.lingerOn = value.loadUnaligned(fromByteOffset: 0, as: Int32.self) != 0
            options.lingerSeconds = max(value.loadUnaligned(fromByteOffset: 4, as: Int32.self), 0)
        case (C.SOL_SOCKET, C.SO_RCVTIMEO): options.receiveTimeout = try interval()
        case (C.SOL_SOCKET, C.SO_SNDTIMEO): options.sendTimeout = try interval()
        case (C.IPPROTO_TCP, C.TCP_NODELAY): options.noDelay = try int() != 0
        case (C.IPPROTO_TCP, C.TCP_CORK): options.cork = try int() != 0
        case (C.IPPROTO_TCP, C.TCP_KEEPIDLE):
            let v = try int()
            guard (1...32767).contains(v) else { throw .EINVAL }
            options.keepIdleSeconds = Int(v)
        case (C.IPPROTO_TCP, C.TCP_KEEPINTVL):
            let v = try int()
            guard (1...32767).contains(v) else { throw .EINVAL }
            options.keepIntervalSeconds = Int(v)
        case (C.IPPROTO_TCP, C.TCP_KEEPCNT):
            let v = try int()
            guard (1...127).contains(v) else { throw .EINVAL }
            options.keepCount = Int(v)
        case (C.IPPROTO_TCP, C.TCP_CONGESTION):
            var name = ""
            for byte in value {
                if byte == 0 { break }
                name.unicodeScalars.append(Unicode.Scalar(byte))
            }
            guard let algorithm = CongestionAlgorithm(rawValue: name) else { throw .ENOENT }
            options.congestion = algorithm
        default:
            logUnknownOption(level: level, name: name)
            throw .ENOPROTOOPT
        }
        sockets.slots[i]!.options = options
        applyLiveOptions(i, level: level, name: name)
    }

    /// setsockopt with an int value.
    public func setsockopt(_ id: Int32, level: Int32, name: Int32, _ value: Int32) throws(Errno) {
        var v = value
        try withUnsafeBytes(of: &v) { (bytes) throws(Errno) in
            try setsockopt(id, level: level, name: name, value: bytes)
        }
    }

    /// getsockopt(2): writes the option's C representation into `value`; returns its length.
    public func getsockopt(
        _ id: Int32, level: Int32, name: Int32, into value: UnsafeMutableRawBufferPointer
    ) throws(Errno) -> Int {
        let i = try socketIndex(id)
        typealias C = SocketConstant
        let options = sockets.slots[i]!.options
        func put(_ v: Int32) throws(Errno) -> Int {
            guard value.count >= 4 else { throw .EINVAL }
            value.storeBytes(of: v, as: Int32.self)
            return 4
        }
        func put(_ t: Interval?) throws(Errno) -> Int {
            guard value.count >= 16 else { throw .EINVAL }
            let ns = t?.nanoseconds ?? 0
            value.storeBytes(of: Int64(ns / 1_000_000_000), toByteOffset: 0, as: Int64.self)
            value.storeBytes(of: Int64(ns % 1_000_000_000 / 1_000), toByteOffset: 8, as: Int64.self)
            return 16
        }
        switch (level, name) {
        case (C.SOL_SOCKET, C.SO_REUSEADDR): return try put(options.reuseAddress ? 1 : 0)
        case (C.SOL_SOCKET, C.SO_REUSEPORT): return try put(options.reusePort ? 1 : 0)
        case (C.SOL_SOCKET, C.SO_RCVBUF):
            // Linux reports twice the requested size (it counts its bookkeeping overhead).
            return try put(Int32(clamping: options.receiveBuffer.map { $0 * 2 } ?? configuration.tcp.receiveBufferSize))
        case (C.SOL_SOCKET, C.SO_SNDBUF):
            return try put(Int32(clamping: options.sendBuffer.map { $0 * 2 } ?? configuration.tcp.sendBufferSize))
        case (C.SOL_SOCKET, C.SO_KEEPALIVE): return try put(options.keepAlive ? 1 : 0)
        case (C.SOL_SOCKET, C.SO_TYPE): return try put(C.SOCK_STREAM)
        case (C.SOL_SOCKET, C.SO_DOMAIN): return try put(C.AF_INET)
        case (C.SOL_SOCKET, C.SO_PROTOCOL): return try put(C.IPPROTO_TCP)
        case (C.SOL_SOCKET, C.SO_ACCEPTCONN): return try put(sockets.slots[i]!.phase == .listening ? 1 : 0)
        // No kernel NAPI instance received the stack's frames: 0, what Linux says then.
        case (C.SOL_SOCKET, C.SO_INCOMING_NAPI_ID): return try put(0)
        case (C.IPPROTO_TCP, C.TCP_INFO): return tcpInfo(i, into: value)
        case (C.SOL_SOCKET, C.SO_ERROR):
            let error = sockets.slots[i]!.pendingError
            sockets.slots[i]!.pendingError = nil
            return try put(error?.rawValue ?? 0)
        case (C.SOL_SOCKET, C.SO_LINGER):
            guard value.count >= 8 else { throw .EINVAL }
            value.storeBytes(of: Int32(options.lingerOn ? 1 : 0), toByteOffset: 0, as: Int32.self)
            value.storeBytes(of: options.lingerSeconds, toByteOffset: 4, as: Int32.self)
            return 8
        case (C.SOL_SOCKET, C.SO_RCVTIMEO): return try put(options.receiveTimeout)
        case (C.SOL_SOCKET, C.SO_SNDTIMEO): return try put(options.sendTimeout)
        case (C.IPPROTO_TCP, C.TCP_NODELAY): return try put(options.noDelay ? 1 : 0)
        case (C.IPPROTO_TCP, C.TCP_CORK): return try put(options.cork ? 1 : 0)
        case (C.IPPROTO_TCP, C.TCP_KEEPIDLE): return try put(Int32(options.keepIdleSeconds))
        case (C.IPPROTO_TCP, C.TCP_KEEPINTVL): return try put(Int32(options.keepIntervalSeconds))
        case (C.IPPROTO_TCP, C.TCP_KEEPCNT): return try put(Int32(options.keepCount))
        case (C.IPPROTO_TCP, C.TCP_CONGESTION):
            let name = (options.congestion ?? configuration.tcp.congestionAlgorithm).rawValue.utf8
            let n = min(value.count, name.count + 1)
            guard n > 0 else { throw .EINVAL }
            value.initializeMemory(as: UInt8.self, repeating: 0)
            for (k, byte) in name.enumerated() where k < n - 1 { value[k] = byte }
            return n
        default:
            logUnknownOption(level: level, name: name)
            throw .ENOPROTOOPT
        }
    }

    /// getsockopt of an int option.
    public func getsockopt(_ id: Int32, level: Int32, name: Int32) throws(Errno) -> Int32 {
        var v: Int32 = 0
        _ = try withUnsafeMutableBytes(of: &v) { (bytes) throws(Errno) in
            try getsockopt(id, level: level, name: name, into: bytes)
        }
        return v
    }

    /// Pushes options that matter to a live connection into it; a listener's options go to
    /// the connections it accepts later.
    func applyLiveOptions(_ i: Int, level: Int32, name: Int32) {
        if sockets.slots[i]!.phase == .listening {
            endpoint.setListenerConfiguration(
                sockets.slots[i]!.listenerKey, sockets.slots[i]!.options.apply(to: endpoint.configuration))
            return
        }
        guard let connection = sockets.slots[i]!.connection else { return }
        let options = sockets.slots[i]!.options
        typealias C = SocketConstant
        switch (level, name) {
        case (C.IPPROTO_TCP, C.TCP_NODELAY):
            endpoint.withConnection(connection) { $0.setNoDelay(options.noDelay) }
        case (C.IPPROTO_TCP, C.TCP_CORK):
            endpoint.withConnection(connection) { $0.setCork(options.cork) }
        case (C.SOL_SOCKET, C.SO_KEEPALIVE), (C.IPPROTO_TCP, C.TCP_KEEPIDLE), (C.IPPROTO_TCP, C.TCP_KEEPINTVL),
            (C.IPPROTO_TCP, C.TCP_KEEPCNT):
            let now = clock()
            endpoint.withConnection(connection) {
                $0.setKeepAlive(
                    options.keepAlive, idle: .seconds(UInt64(options.keepIdleSeconds)),
                    interval: .seconds(UInt64(options.keepIntervalSeconds)), count: options.keepCount, now: now)
            }
        default:
            // Buffer sizes and the congestion algorithm apply to connections opened later
            // (connect, or accept through the listener's configuration).
            break
        }
    }

    func logUnknownOption(level: Int32, name: Int32) {
        let key = Int64(level) << 32 | Int64(UInt32(bitPattern: name))
        guard loggedOptions.insert(key).inserted else { return }
        log("unsupported socket option level \(level) name \(name) (ENOPROTOOPT)")
    }
}
