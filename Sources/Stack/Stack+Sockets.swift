import CShim
import PacketIO
import TCP
import Wire

/// The BSD-style socket calls programs use, with Linux's errno values.
extension NetworkStack {
    /// Ports `bind(port: 0)` and `listen` on an unbound socket pick from.
    public static var bindEphemeralPorts: ClosedRange<UInt16> { 61000...65535 }

    func socketIndex(_ id: Int32) throws(Errno) -> Int {
        guard sockets.contains(id) else { throw .EBADF }
        return Int(id)
    }

    /// Sockets open.
    public var socketCount: Int { sockets.count }

    /// socket(AF_INET or AF_INET6, SOCK_STREAM, 0): a new unbound, blocking socket. An
    /// AF_INET6 socket starts with IPV6_V6ONLY as `v6Only` says (net.ipv6.bindv6only).
    public func socket(inet6: Bool = false, v6Only: Bool = false) throws(Errno) -> Int32 {
        var socket = Socket()
        socket.inet6 = inet6
        socket.v6Only = inet6 && v6Only
        socket.localAddress = socket.wildcard
        socket.remoteAddress = socket.wildcard
        guard let id = sockets.allocate(socket) else { throw .EMFILE }
        return id
    }

    /// IPV6_V6ONLY: only on an AF_INET6 socket (ENOPROTOOPT otherwise), before bind (EINVAL).
    public func setV6Only(_ id: Int32, _ on: Bool) throws(Errno) {
        let i = try socketIndex(id)
        guard sockets.slots[i]!.inet6 else { throw .ENOPROTOOPT }
        guard sockets.slots[i]!.phase == .fresh, !sockets.slots[i]!.boundExplicitly, sockets.slots[i]!.localPort == 0
        else { throw .EINVAL }
        sockets.slots[i]!.v6Only = on
    }

    /// Whether `address` is one of ours (an IPv4 one v4-mapped).
    public func owns(_ address: IPAddress) -> Bool {
        if let v4 = address.ipv4 { return configuration.hasIPv4 && v4 == configuration.address }
        return ownsIPv6(address)
    }

    /// Sets or clears the non-blocking flag (O_NONBLOCK, mtcp_setsock_nonblock).
    public func setNonBlocking(_ id: Int32, _ nonBlocking: Bool = true) throws(Errno) {
        let i = try socketIndex(id)
        sockets.slots[i]!.nonBlocking = nonBlocking
    }

    /// bind(2): `address` is ours or its family's wildcard (an AF_INET6 socket may take IPv4
    /// ones v4-mapped unless IPV6_V6ONLY); port 0 picks a free port.
    public func bind(_ id: Int32, address: IPAddress, port: UInt16) throws(Errno) {
        let i = try socketIndex(id)
        guard sockets.slots[i]!.phase == .fresh, !sockets.slots[i]!.boundExplicitly else { throw .EINVAL }
        let socket = sockets.slots[i]!
        if !socket.inet6 && !address.isIPv4 { throw .EAFNOSUPPORT }
        if socket.inet6 && socket.v6Only && address.isIPv4 { throw .EINVAL }
        guard address.isUnspecified || owns(address) else { throw .EADDRNOTAVAIL }
        let chosen: UInt16
        var claimed = false
        if port == 0 {
            let free: UInt16?
            if let claims = portClaims {
                free = pickClaimedPort(claims) { acceptable in pickBindPort(where: acceptable) }
                claimed = free != nil
            } else {
                free = pickBindPort()
            }
            guard let free else { throw .EADDRINUSE }
            chosen = free
        } else {
            guard portIsFree(port, for: i, family: ListenerFamily(address: address, v6Only: socket.v6Only)) else {
                throw .EADDRINUSE
            }
            chosen = port
        }
        sockets.slots[i]!.localAddress = address
        sockets.slots[i]!.localPort = chosen
        sockets.slots[i]!.boundExplicitly = true
        sockets.slots[i]!.phase = .bound
        boundPorts[chosen, default: 0] += 1
        if claimed { noteClaim(i, port: chosen) }
    }

    /// `bind` to an IPv4 address.
    public func bind(_ id: Int32, address: IPv4Address, port: UInt16) throws(Errno) {
        try bind(id, address: IPAddress(address), port: port)
    }

    /// A port may be shared only by sockets that all set SO_REUSEPORT, or whose families do
    /// not overlap (0.0.0.0 beside `::` with IPV6_V6ONLY, as Linux allows).
    func portIsFree(_ port: UInt16, for i: Int, family: ListenerFamily) -> Bool {
        guard boundPorts[port, default: 0] > 0 else { return true }
        let socket = sockets.slots[i]!
        for case let other? in sockets.slots where other.boundExplicitly && other.localPort == port {
            if !other.family.overlaps(family) { continue }
            if !(socket.options.reusePort && other.options.reusePort) { return false }
        }
        return true
    }

    func pickBindPort(where acceptable: (UInt16) -> Bool = { _ in true }) -> UInt16? {
        let range = Self.bindEphemeralPorts
        let span = Int(range.upperBound - range.lowerBound) + 1
        for _ in 0..<span {
            let port = range.contains(nextEphemeralPort) ? nextEphemeralPort : range.lowerBound
            nextEphemeralPort = port >= range.upperBound ? range.lowerBound : port + 1
            if boundPorts[port, default: 0] == 0 && !endpoint.isListening(port: port) && acceptable(port) {
                return port
            }
        }
        return nil
    }

    /// listen(2); an unbound socket is bound to a free port first.
    public func listen(_ id: Int32, backlog: Int) throws(Errno) {
        let i = try socketIndex(id)
        switch sockets.slots[i]!.phase {
        case .fresh: try bind(id, address: sockets.slots[i]!.wildcard, port: 0)
        case .bound: break
        case .listening: return
        case .connecting, .connected: throw .EINVAL
        }
        let port = sockets.slots[i]!.localPort
        let key: ListenerKey
        do {
            key = try endpoint.listen(
                address: sockets.slots[i]!.localAddress, v6Only: sockets.slots[i]!.v6Only, port: port,
                backlog: max(backlog, 1), configuration: sockets.slots[i]!.options.apply(to: endpoint.configuration))
        } catch {
            throw .EADDRINUSE
        }
        listenerByKey[key] = id
        sockets.slots[i]!.phase = .listening
        // Claimed when free or its owner is gone; a port another process holds stays with it
        // (a forked child takes it over with claimListener).
        if let claims = portClaims, claims.claim(port) { noteClaim(i, port: port) }
        if let steering = flowSteering {
            let accepting = sockets.slots[i]!.interested
            takeParked(steering.listen(port: port, accepting: accepting, now: clock().nanoseconds))
        }
    }

    /// accept(2): the next established connection as a new socket, with the peer's address.
    public func accept(_ id: Int32) throws(Errno) -> (socket: Int32, address: IPAddress, port: UInt16) {
        let i = try socketIndex(id)
        guard sockets.slots[i]!.phase == .listening else { throw .EINVAL }
        let deadline = deadline(after: sockets.slots[i]!.options.receiveTimeout)
        while true {
            if let accepted = try acceptOne(i) { return accepted }
            if sockets.slots[i]!.nonBlocking { throw .EAGAIN }
            let key = sockets.slots[i]!.listenerKey
            let ready = try block(until: deadline) { endpoint.pendingAccepts(key) > 0 }
            if !ready { throw .EAGAIN }
            guard sockets.contains(id) else { throw .EBADF }
        }
    }

    func acceptOne(_ i: Int) throws(Errno) -> (socket: Int32, address: IPAddress, port: UInt16)? {
        let listener = sockets.slots[i]!
        guard let connection = endpoint.accept(listener.listenerKey) else { return nil }
        guard let flow = endpoint.flow(connection) else { return nil }
        var socket = Socket()
        socket.phase = .connected
        socket.inet6 = listener.inet6
        socket.v6Only = listener.v6Only
        socket.connection = connection
        socket.localAddress = flow.localAddress
        socket.localPort = flow.localPort
        socket.remoteAddress = flow.remoteAddress
        socket.remotePort = flow.remotePort
        // Every option carries over, SO_LINGER included, as Linux clones the listener.
        socket.options = listener.options
        guard let id = sockets.allocate(socket) else {
            endpoint.abort(connection, now: clock())
            throw .EMFILE
        }
        setOwner(of: connection, to: id)
        // The endpoint made the connection with the listener's options; options set on the
        // listener after that connection's SYN carry over here.
        let options = socket.options
        let now = clock()
        endpoint.withConnection(connection) {
            $0.setNoDelay(options.noDelay)
            $0.setCork(options.cork)
            if options.keepAlive {
                $0.setKeepAlive(
                    true, idle: .seconds(UInt64(options.keepIdleSeconds)),
                    interval: .seconds(UInt64(options.keepIntervalSeconds)), count: options.keepCount, now: now)
            }
        }
        return (id, flow.remoteAddress, flow.remotePort)
    }

    func setOwner(of connection: ConnectionID, to id: Int32) {
        let slot = Int(connection.slot)
        if slot >= ownerBySlot.count {
            ownerBySlot.append(contentsOf: repeatElement(-1, count: slot + 1 - ownerBySlot.count))
        }
        ownerBySlot[slot] = id
    }

    func clearOwner(of connection: ConnectionID) {
        let slot = Int(connection.slot)
        if slot < ownerBySlot.count { ownerBySlot[slot] = -1 }
    }

    /// connect(2). Non-blocking sockets get EINPROGRESS and learn the outcome from writability
    /// and SO_ERROR; blocking ones wait (SO_SNDTIMEO bounds the wait, then EINPROGRESS).
    public func connect(_ id: Int32, address: IPAddress, port: UInt16) throws(Errno) {
        let i = try socketIndex(id)
        switch sockets.slots[i]!.phase {
        case .listening, .connected: throw .EISCONN
        case .connecting:
            if sockets.slots[i]!.nonBlocking { throw .EALREADY }
        case .fresh, .bound:
            if let error = sockets.slots[i]!.pendingError {
                // The outcome of an earlier non-blocking connect.
                sockets.slots[i]!.pendingError = nil
                throw error
            }
            try startConnect(i, address: address, port: port)
            if sockets.slots[i]!.nonBlocking { throw .EINPROGRESS }
        }
        let deadline = deadline(after: sockets.slots[i]!.options.sendTimeout)
        let done = try block(until: deadline) { sockets.slots[i]?.phase != .connecting }
        guard sockets.contains(id) else { throw .EBADF }
        if !done { throw .EINPROGRESS }
        if sockets.slots[i]!.phase == .connected { return }
        let error = sockets.slots[i]!.pendingError ?? .ECONNREFUSED
        sockets.slots[i]!.pendingError = nil
        throw error
    }

    /// `connect` to an IPv4 address.
    public func connect(_ id: Int32, address: IPv4Address, port: UInt16) throws(Errno) {
        try connect(id, address: IPAddress(address), port: port)
    }

    func startConnect(_ i: Int, address: IPAddress, port: UInt16) throws(Errno) {
        let socket = sockets.slots[i]!
        guard port != 0, !address.isUnspecified, address != IPAddress(IPv4Address.broadcast), !address.isMulticast
        else { throw .EINVAL }
        if !socket.inet6 && !address.isIPv4 { throw .EAFNOSUPPORT }
        if socket.v6Only && address.isIPv4 { throw .ENETUNREACH }
        _ = try route(to: address)
        let local = try sourceAddress(for: address, boundTo: socket.localAddress)
        let saved = endpoint.configuration
        endpoint.configuration = socket.options.apply(to: saved)
        defer { endpoint.configuration = saved }
        var localPort = socket.boundExplicitly ? socket.localPort : nil
        if localPort == nil, let steering = activeOpenSteering, steering.constrains {
            // Replies must come back to this instance (the fanout's port mix or the NIC's RSS).
            let comesBack = { (candidate: UInt16) in
                steering.returns(local: local, localPort: candidate, remote: address, remotePort: port)
            }
            if let claims = portClaims {
                localPort = pickClaimedPort(claims) { acceptable in
                    endpoint.pickEphemeralPort(
                        local: local, remote: address, remotePort: port,
                        where: { comesBack($0) && acceptable($0) })
                }
            } else {
                localPort = endpoint.pickEphemeralPort(
                    local: local, remote: address, remotePort: port, where: comesBack)
            }
            guard localPort != nil else { throw .EADDRNOTAVAIL }
        } else if let claims = portClaims {
            if let bound = localPort {
                if claims.claim(bound) { noteClaim(i, port: bound) }
            } else {
                // Ephemeral ports another live process uses are skipped: its flows are not ours.
                localPort = pickClaimedPort(claims) { acceptable in
                    endpoint.pickEphemeralPort(
                        local: local, remote: address, remotePort: port, where: acceptable)
                }
                guard localPort != nil else { throw .EADDRNOTAVAIL }
            }
        }
        let connection: ConnectionID
        do {
            connection = try endpoint.connect(
                from: local, localPort: localPort, to: address, port: port, now: clock())
        } catch {
            if !socket.boundExplicitly, let localPort { releaseUnusedClaim(localPort) }
            throw Errno(rawValue: error.errno)
        }
        let flow = endpoint.flow(connection)!
        sockets.slots[i]!.connection = connection
        sockets.slots[i]!.phase = .connecting
        sockets.slots[i]!.localAddress = flow.localAddress
        sockets.slots[i]!.localPort = flow.localPort
        sockets.slots[i]!.remoteAddress = address
        sockets.slots[i]!.remotePort = port
        if portClaims != nil && !socket.boundExplicitly { noteClaim(i, port: flow.localPort) }
        setOwner(of: connection, to: Int32(i))
    }

    /// A connect that failed: the socket becomes unconnected again, with SO_ERROR set.
    func connectFailed(_ i: Int, error: Errno) {
        if let connection = sockets.slots[i]!.connection {
            clearOwner(of: connection)
            endpoint.close(connection, now: now)
        }
        sockets.slots[i]!.connection = nil
        sockets.slots[i]!.pendingError = error
        sockets.slots[i]!.remoteAddress = sockets.slots[i]!.wildcard
        sockets.slots[i]!.remotePort = 0
        if sockets.slots[i]!.boundExplicitly {
            sockets.slots[i]!.phase = .bound
        } else {
            dropClaim(i)
            sockets.slots[i]!.phase = .fresh
            sockets.slots[i]!.localAddress = sockets.slots[i]!.wildcard
            sockets.slots[i]!.localPort = 0
        }
    }

    // MARK: Data

    /// read(2): bytes read, 0 at end of stream.
    public func read(_ id: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        let i = try socketIndex(id)
        return try read(i, into: buffer, mayBlock: !sockets.slots[i]!.nonBlocking)
    }

    /// recv(2) with MSG_PEEK: copies readable bytes and leaves them to the next read. Never
    /// waits: errors and end of stream as `read` on a non-blocking socket.
    public func peek(_ id: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        let i = try socketIndex(id)
        return try read(i, into: buffer, mayBlock: false, peek: true)
    }

    /// readv(2): fills the buffers in order; stops at the first short read.
    public func readv(_ id: Int32, _ buffers: [UnsafeMutableRawBufferPointer]) throws(Errno) -> Int {
        let i = try socketIndex(id)
        let blocking = !sockets.slots[i]!.nonBlocking
        // Only the first buffer may wait; later ones take what is already there.
        return try eachBuffer(buffers, count: \.count) { buffer, total throws(Errno) in
            try read(i, into: buffer, mayBlock: total == 0 && blocking)
        }
    }

    func read(
        _ i: Int, into buffer: UnsafeMutableRawBufferPointer, mayBlock: Bool, peek: Bool = false
    ) throws(Errno) -> Int {
        let deadline = deadline(after: sockets.slots[i]!.options.receiveTimeout)
        while true {
            // Fields read in place: a copy of the whole socket (its options too) per call shows
            // in profiles.
            switch sockets.slots[i]!.phase {
            case .connected:
                if sockets.slots[i]!.readShut { return 0 }
                let connection = sockets.slots[i]!.connection!
                let result =
                    peek
                    ? endpoint.peek(connection, into: buffer)
                    : endpoint.read(connection, into: buffer, now: clock())
                switch result {
                case .bytes(let n): return n
                case .endOfStream: return 0
                case .failed(let error):
                    sockets.slots[i]!.pendingError = nil
                    throw Errno(rawValue: error.errno)
                case .wouldBlock: break
                }
            case .connecting: break
            case .fresh, .bound, .listening:
                if let error = sockets.slots[i]!.pendingError {
                    sockets.slots[i]!.pendingError = nil
                    throw error
                }
                throw .ENOTCONN
            }
            guard mayBlock else { throw .EAGAIN }
            let ready = try block(until: deadline) {
                readiness(i) & (EpollFlags.EPOLLIN | EpollFlags.EPOLLERR | EpollFlags.EPOLLHUP) != 0
            }
            if !ready { throw .EAGAIN }
        }
    }

    /// write(2): blocking sockets wait until every byte is queued; non-blocking ones queue
    /// what fits (EAGAIN when nothing does).
    public func write(_ id: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) -> Int {
        let i = try socketIndex(id)
        return try write(i, bytes, mayBlock: !sockets.slots[i]!.nonBlocking)
    }

    /// writev(2): writes the buffers in order; stops when the send buffer fills.
    public func writev(_ id: Int32, _ buffers: [UnsafeRawBufferPointer]) throws(Errno) -> Int {
        let i = try socketIndex(id)
        let blocking = !sockets.slots[i]!.nonBlocking
        return try eachBuffer(buffers, count: \.count) { buffer, _ throws(Errno) in
            try write(i, buffer, mayBlock: blocking)
        }
    }

    /// readv/writev's loop: moves each non-empty buffer in order, stops at the first one moved
    /// only in part, and reports an error only when nothing was moved before it.
    func eachBuffer<Buffer>(
        _ buffers: [Buffer], count: (Buffer) -> Int, _ move: (Buffer, Int) throws(Errno) -> Int
    ) throws(Errno) -> Int {
        var total = 0
        for buffer in buffers where count(buffer) > 0 {
            let n: Int
            do {
                n = try move(buffer, total)
            } catch {
                if total > 0 { return total }
                throw error
            }
            total += n
            if n < count(buffer) { break }
        }
        return total
    }

    func write(_ i: Int, _ bytes: UnsafeRawBufferPointer, mayBlock: Bool) throws(Errno) -> Int {
        let deadline = deadline(after: sockets.slots[i]!.options.sendTimeout)
        var written = 0
        while true {
            switch sockets.slots[i]!.phase {
            case .connected:
                if sockets.slots[i]!.writeShut { throw .EPIPE }
                if bytes.count == 0 { return 0 }
                let rest = UnsafeRawBufferPointer(rebasing: bytes[written...])
                switch endpoint.write(sockets.slots[i]!.connection!, rest, now: clock()) {
                case .bytes(let n):
                    written += n
                    if written == bytes.count || !mayBlock { return written }
                case .wouldBlock:
                    if !mayBlock {
                        if written > 0 { return written }
                        throw .EAGAIN
                    }
                case .failed(let error):
                    if written > 0 { return written }
                    sockets.slots[i]!.pendingError = nil
                    throw Errno(rawValue: error.errno)
                }
            case .connecting:
                if !mayBlock { throw .EAGAIN }
            case .fresh, .bound, .listening:
                if let error = sockets.slots[i]!.pendingError {
                    sockets.slots[i]!.pendingError = nil
                    throw error
                }
                throw written > 0 ? .EPIPE : .ENOTCONN
            }
            let ready = try block(until: deadline) {
                readiness(i) & (EpollFlags.EPOLLOUT | EpollFlags.EPOLLERR | EpollFlags.EPOLLHUP) != 0
            }
            if !ready {
                if written > 0 { return written }
                throw .EAGAIN
            }
        }
    }

    // MARK: Teardown

    /// shutdown(2) with SHUT_RD, SHUT_WR or SHUT_RDWR.
    public func shutdown(_ id: Int32, how: Int32) throws(Errno) {
        let i = try socketIndex(id)
        guard (0...2).contains(how) else { throw .EINVAL }
        guard sockets.slots[i]!.phase == .connected, let connection = sockets.slots[i]!.connection else {
            throw .ENOTCONN
        }
        if how == SocketConstant.SHUT_RD || how == SocketConstant.SHUT_RDWR {
            sockets.slots[i]!.readShut = true
        }
        if how == SocketConstant.SHUT_WR || how == SocketConstant.SHUT_RDWR {
            sockets.slots[i]!.writeShut = true
            endpoint.shutdownWrite(connection, now: clock())
        }
        notify(Int32(i), edges: EpollFlags.EPOLLIN | EpollFlags.EPOLLRDHUP | EpollFlags.EPOLLHUP | EpollFlags.EPOLLOUT)
    }

    /// close(2). SO_LINGER with a zero timeout resets the connection instead of closing it.
    public func close(_ id: Int32) throws(Errno) {
        let i = try socketIndex(id)
        let socket = sockets.slots[i]!
        for epfd in sockets.watchers[i] { epolls[Int(epfd)]?.forget(id) }
        if socket.phase == .listening {
            endpoint.stopListening(socket.listenerKey, now: clock())
            if listenerByKey[socket.listenerKey] == id {
                listenerByKey.removeValue(forKey: socket.listenerKey)
                if listener(onPort: socket.localPort) == nil { flowSteering?.stopListening(port: socket.localPort) }
            }
        }
        if let connection = socket.connection {
            clearOwner(of: connection)
            let abortive = socket.options.lingerOn && socket.options.lingerSeconds == 0
            if abortive || endpoint.closeResets(connection) {
                // The reset follows what was written: a caller that batches output (the
                // preload library) may not have sent it yet, where the kernel would have.
                var sink = FrameSink(stack: self)
                endpoint.transmitNow(connection, now: clock(), into: &sink)
            }
            if abortive {
                endpoint.abort(connection, now: clock())
            } else {
                endpoint.close(connection, now: clock())
            }
        }
        dropClaim(i)
        if socket.boundExplicitly {
            let port = socket.localPort
            let left = boundPorts[port, default: 1] - 1
            if left > 0 { boundPorts[port] = left } else { boundPorts.removeValue(forKey: port) }
        }
        sockets.release(id)
    }

    // MARK: Names and control

    /// getsockname(2).
    public func getsockname(_ id: Int32) throws(Errno) -> (address: IPAddress, port: UInt16) {
        let i = try socketIndex(id)
        return (sockets.slots[i]!.localAddress, sockets.slots[i]!.localPort)
    }

    /// getpeername(2): ENOTCONN until connected.
    public func getpeername(_ id: Int32) throws(Errno) -> (address: IPAddress, port: UInt16) {
        let i = try socketIndex(id)
        guard sockets.slots[i]!.phase == .connected else { throw .ENOTCONN }
        return (sockets.slots[i]!.remoteAddress, sockets.slots[i]!.remotePort)
    }

    /// ioctl(2): FIONREAD (bytes readable) and FIONBIO (set non-blocking from `value`).
    public func ioctl(_ id: Int32, request: UInt, _ value: inout Int32) throws(Errno) {
        let i = try socketIndex(id)
        switch request {
        case SocketConstant.FIONREAD:
            let socket = sockets.slots[i]!
            if socket.phase == .listening { throw .EINVAL }
            if let connection = socket.connection, socket.phase == .connected {
                value = Int32(clamping: endpoint.connection(connection)?.readableBytes ?? 0)
            } else {
                value = 0
            }
        case SocketConstant.FIONBIO:
            sockets.slots[i]!.nonBlocking = value != 0
        default:
            throw .ENOTTY
        }
    }

    /// A copy of the socket's connection, for diagnostics; nil without one.
    public func connectionSnapshot(_ id: Int32) -> TCPConnection? {
        guard sockets.contains(id), let connection = sockets.slots[Int(id)]!.connection else { return nil }
        return endpoint.connection(connection)
    }

    /// The socket's epoll readiness bits now, for diagnostics.
    public func readinessMask(_ id: Int32) -> UInt32 {
        guard sockets.contains(id) else { return 0 }
        return readiness(Int(id))
    }

    /// The TCP state of the socket's connection, for diagnostics; nil without one.
    public func tcpState(_ id: Int32) -> TCPState? {
        guard sockets.contains(id), let connection = sockets.slots[Int(id)]!.connection else { return nil }
        return endpoint.connection(connection)?.state
    }
}
