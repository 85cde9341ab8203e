import PacketIO
import Stack
import TCP
import Testing
import Wire

@Suite struct SocketTests {
    @Test func megabyteBothWaysThroughTheFramePath() throws {
        let hosts = TwoHosts()
        let (client, server, _) = try hosts.connectedPair()
        let total = 1 << 20
        let up = pattern(total, seed: 1)
        let down = pattern(total, seed: 2)
        var gotUp: [UInt8] = []
        var gotDown: [UInt8] = []
        var sentUp = 0
        var sentDown = 0
        var buffer = [UInt8](repeating: 0, count: 32768)
        let done = hosts.run {
            if sentUp < total { sentUp += (try? up[sentUp...].withUnsafeBytes { try hosts.a.write(client, $0) }) ?? 0 }
            if sentDown < total {
                sentDown += (try? down[sentDown...].withUnsafeBytes { try hosts.b.write(server, $0) }) ?? 0
            }
            while let n = try? buffer.withUnsafeMutableBytes({ try hosts.b.read(server, into: $0) }), n > 0 {
                gotUp.append(contentsOf: buffer[0..<n])
            }
            while let n = try? buffer.withUnsafeMutableBytes({ try hosts.a.read(client, into: $0) }), n > 0 {
                gotDown.append(contentsOf: buffer[0..<n])
            }
            return gotUp.count == total && gotDown.count == total
        }
        #expect(done)
        #expect(gotUp == up)
        #expect(gotDown == down)
        // Orderly close: both see end of stream.
        try hosts.a.shutdown(client, how: SocketConstant.SHUT_WR)
        hosts.run(for: .milliseconds(50))
        #expect(try buffer.withUnsafeMutableBytes { try hosts.b.read(server, into: $0) } == 0)
        try hosts.b.close(server)
        hosts.run(for: .milliseconds(50))
        #expect(try buffer.withUnsafeMutableBytes { try hosts.a.read(client, into: $0) } == 0)
        try hosts.a.close(client)
        #expect(hosts.a.statistics.noRoute == 0 && hosts.a.statistics.transmitRingFull == 0)
    }

    /// A segment carrying `length` bytes is among `frames`, and before the first reset.
    func expectPayload(of length: Int, beforeResetIn frames: [[UInt8]]) {
        let tcp = frames.compactMap { SentFrame($0) }.filter { $0.tcp != nil }
        let dataAt = tcp.firstIndex { $0.payloadLength == length }
        let resetAt = tcp.firstIndex { $0.tcp!.flags.contains(.rst) }
        #expect(dataAt != nil && resetAt != nil)
        if let dataAt, let resetAt { #expect(dataAt < resetAt) }
    }

    @Test func closeWithUnreadDataSendsWrittenDataBeforeTheReset() throws {
        // A caller that batches output (the preload library inside an epoll batch) writes and
        // closes without a round in between; the reset for the unread bytes must still follow
        // the reply, as with the kernel, which sends at write time.
        let hosts = TwoHosts()
        let (client, server, _) = try hosts.connectedPair()
        _ = try pattern(10, seed: 1).withUnsafeBytes { try hosts.a.write(client, $0) }
        hosts.run(for: .milliseconds(10))
        let reply = pattern(30, seed: 2)
        hosts.sentByB.removeAll()
        _ = try reply.withUnsafeBytes { try hosts.b.write(server, $0) }
        try hosts.b.close(server)
        hosts.b.poll()
        expectPayload(of: reply.count, beforeResetIn: hosts.sentByB)
    }

    @Test func dataArrivingAfterACloseDoesNotOvertakeTheReplyWrittenBeforeIt() throws {
        // Write and close without a round, then the peer's data arrives (which resets a closed
        // connection): the next round must send the reply and FIN before that reset.
        let hosts = TwoHosts()
        let (client, server, _) = try hosts.connectedPair()
        let reply = pattern(30, seed: 3)
        hosts.sentByB.removeAll()
        _ = try reply.withUnsafeBytes { try hosts.b.write(server, $0) }
        try hosts.b.close(server)
        _ = try pattern(10, seed: 4).withUnsafeBytes { try hosts.a.write(client, $0) }
        hosts.a.poll()
        hosts.b.poll()
        expectPayload(of: reply.count, beforeResetIn: hosts.sentByB)
    }

    @Test func peekLeavesBytesForTheNextReadAndNeverBlocks() throws {
        let hosts = TwoHosts()
        let (client, server, _) = try hosts.connectedPair()
        try hosts.b.setNonBlocking(server, false)
        var buffer = [UInt8](repeating: 0, count: 200)
        #expect(throws: Errno.EAGAIN) { _ = try buffer.withUnsafeMutableBytes { try hosts.b.peek(server, into: $0) } }
        let message = pattern(100, seed: 4)
        _ = try message.withUnsafeBytes { try hosts.a.write(client, $0) }
        hosts.run(for: .milliseconds(10))
        for _ in 0..<2 {
            let n = try buffer.withUnsafeMutableBytes {
                try hosts.b.peek(server, into: UnsafeMutableRawBufferPointer(rebasing: $0[..<40]))
            }
            #expect(n == 40 && Array(buffer[0..<40]) == Array(message[0..<40]))
        }
        var available: Int32 = 0
        try hosts.b.ioctl(server, request: SocketConstant.FIONREAD, &available)
        #expect(available == 100)
        #expect(try buffer.withUnsafeMutableBytes { try hosts.b.read(server, into: $0) } == 100)
        #expect(Array(buffer[0..<100]) == message)
        try hosts.a.shutdown(client, how: SocketConstant.SHUT_WR)
        hosts.run(for: .milliseconds(10))
        #expect(try buffer.withUnsafeMutableBytes { try hosts.b.peek(server, into: $0) } == 0)
        let fresh = try hosts.b.socket()
        #expect(throws: Errno.ENOTCONN) { _ = try buffer.withUnsafeMutableBytes { try hosts.b.peek(fresh, into: $0) } }
    }

    @Test func blockingCallsWaitThroughTheHook() throws {
        let hosts = TwoHosts()
        let listener = try hosts.b.socket()
        try hosts.b.bind(listener, address: .any, port: 7)
        try hosts.b.listen(listener, backlog: 4)
        let client = try hosts.a.socket()
        try hosts.a.connect(client, address: addressB, port: 7)  // blocks until established
        #expect(hosts.a.tcpState(client) == .established)
        let (server, peer, peerPort) = try hosts.b.accept(listener)
        #expect(peer == IPAddress(addressA))
        #expect(try hosts.a.getsockname(client).port == peerPort)
        #expect(try hosts.b.getpeername(server).address == IPAddress(addressA))
        let message = pattern(300_000, seed: 9)
        // A blocking write larger than the send buffer returns only when all is queued.
        let written = try message.withUnsafeBytes { try hosts.a.write(client, $0) }
        #expect(written == message.count)
        var got: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while got.count < message.count {
            let n = try buffer.withUnsafeMutableBytes { try hosts.b.read(server, into: $0) }
            #expect(n > 0)
            got.append(contentsOf: buffer[0..<n])
        }
        #expect(got == message)
        // SO_RCVTIMEO bounds a blocking read: EAGAIN after the timeout.
        var timeout = [Int64(0), Int64(250_000)]
        try timeout.withUnsafeBytes {
            try hosts.b.setsockopt(
                server, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_RCVTIMEO, value: $0)
        }
        let start = hosts.clock.now
        #expect(throws: Errno.EAGAIN) { _ = try buffer.withUnsafeMutableBytes { try hosts.b.read(server, into: $0) } }
        #expect(hosts.clock.now - start >= .milliseconds(250))
        timeout = [0, 0]
        #expect(
            try timeout.withUnsafeMutableBytes {
                try hosts.b.getsockopt(
                    server, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_RCVTIMEO, into: $0)
            } == 16)
        #expect(timeout == [0, 250_000])
        // Longer than Int64 nanoseconds is no timeout (Linux's MAX_SCHEDULE_TIMEOUT, read back as
        // 0): the conversion trapped (found by the preload fuzz target).
        func roundTrip(_ value: [Int64]) throws -> [Int64] {
            var timeval = value
            try timeval.withUnsafeBytes {
                try hosts.b.setsockopt(
                    server, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_RCVTIMEO, value: $0)
            }
            _ = try timeval.withUnsafeMutableBytes {
                try hosts.b.getsockopt(
                    server, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_RCVTIMEO, into: $0)
            }
            return timeval
        }
        #expect(try roundTrip([Int64.max, 0]) == [0, 0])
        #expect(try roundTrip([9_223_372_036, 999_999]) == [0, 0])
        #expect(try roundTrip([9_223_372_035, 999_999]) == [9_223_372_035, 999_999])
        // readv / writev.
        let parts: [[UInt8]] = [[1, 2, 3], [4, 5], [6, 7, 8, 9]]
        let n = try parts[0].withUnsafeBytes { p0 in
            try parts[1].withUnsafeBytes { p1 in
                try parts[2].withUnsafeBytes { p2 in try hosts.a.writev(client, [p0, p1, p2]) }
            }
        }
        #expect(n == 9)
        var first = [UInt8](repeating: 0, count: 4)
        var second = [UInt8](repeating: 0, count: 10)
        var count = 0
        while count < 9 {
            count += try first.withUnsafeMutableBytes { b0 in
                try second.withUnsafeMutableBytes { b1 in try hosts.b.readv(server, [b0, b1]) }
            }
        }
        #expect(first == [1, 2, 3, 4])
        #expect(Array(second[0..<5]) == [5, 6, 7, 8, 9])
    }

    @Test func errnoPaths() throws {
        let hosts = TwoHosts()
        let a = hosts.a
        // EBADF
        #expect(throws: Errno.EBADF) { try a.close(99) }
        // EADDRINUSE and EINVAL on bind.
        let s1 = try a.socket()
        let s2 = try a.socket()
        try a.bind(s1, address: .any, port: 5000)
        #expect(throws: Errno.EADDRINUSE) { try a.bind(s2, address: .any, port: 5000) }
        #expect(throws: Errno.EINVAL) { try a.bind(s1, address: .any, port: 5001) }
        #expect(throws: Errno.EADDRNOTAVAIL) { try a.bind(s2, address: IPv4Address(10, 0, 0, 9), port: 5002) }
        // SO_REUSEPORT on both lets two sockets share a port.
        let r1 = try a.socket()
        let r2 = try a.socket()
        try a.setsockopt(r1, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_REUSEPORT, 1)
        try a.setsockopt(r2, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_REUSEPORT, 1)
        try a.bind(r1, address: .any, port: 6000)
        try a.bind(r2, address: .any, port: 6000)
        // Port 0 picks an ephemeral port.
        try a.bind(s2, address: .any, port: 0)
        #expect(try a.getsockname(s2).port >= 61000)
        // ENOTCONN
        var byte: [UInt8] = [0]
        #expect(throws: Errno.ENOTCONN) { _ = try byte.withUnsafeMutableBytes { try a.read(s1, into: $0) } }
        #expect(throws: Errno.ENOTCONN) { _ = try byte.withUnsafeBytes { try a.write(s1, $0) } }
        #expect(throws: Errno.ENOTCONN) { try a.getpeername(s1) }
        #expect(throws: Errno.ENOTCONN) { try a.shutdown(s1, how: SocketConstant.SHUT_WR) }
        // EAGAIN on a non-blocking accept with nothing queued.
        try a.listen(s1, backlog: 4)
        try a.setNonBlocking(s1)
        #expect(throws: Errno.EAGAIN) { _ = try a.accept(s1) }
        #expect(throws: Errno.EISCONN) { try a.connect(s1, address: addressB, port: 1) }
        #expect(throws: Errno.EINVAL) { try a.connect(s2, address: addressB, port: 0) }
        // ECONNREFUSED: RST from a closed port, through SO_ERROR for non-blocking connect.
        let c = try a.socket()
        try a.setNonBlocking(c)
        #expect(throws: Errno.EINPROGRESS) { try a.connect(c, address: addressB, port: 4444) }
        #expect(throws: Errno.EALREADY) { try a.connect(c, address: addressB, port: 4444) }
        hosts.run(for: .milliseconds(100))
        #expect(try a.getsockopt(c, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_ERROR) == 111)
        #expect(try a.getsockopt(c, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_ERROR) == 0)
        // Blocking connect reports it directly.
        let d = try a.socket()
        #expect(throws: Errno.ECONNREFUSED) { try a.connect(d, address: addressB, port: 4445) }
        // EPIPE after shutdown(SHUT_WR); reads still work.
        let (client, server, _) = try hosts.connectedPair(port: 81)
        try a.shutdown(client, how: SocketConstant.SHUT_WR)
        #expect(throws: Errno.EPIPE) { _ = try byte.withUnsafeBytes { try a.write(client, $0) } }
        #expect(throws: Errno.EINVAL) { try a.shutdown(client, how: 7) }
        // EAGAIN on a non-blocking read with no data.
        #expect(throws: Errno.EAGAIN) { _ = try byte.withUnsafeMutableBytes { try a.read(client, into: $0) } }
        // ECONNRESET after the peer aborts (SO_LINGER 0).
        var linger: [Int32] = [1, 0]
        try linger.withUnsafeBytes {
            try hosts.b.setsockopt(server, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_LINGER, value: $0)
        }
        try hosts.b.close(server)
        hosts.run(for: .milliseconds(50))
        #expect(throws: Errno.ECONNRESET) { _ = try byte.withUnsafeMutableBytes { try a.read(client, into: $0) } }
        linger = [0, 0]
        _ = try linger.withUnsafeMutableBytes {
            try hosts.b.getsockopt(
                hosts.b.socket(), level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_LINGER, into: $0)
        }
        #expect(linger == [0, 0])
        // ENOPROTOOPT for an unknown option, logged once.
        var lines: [String] = []
        a.log = { lines.append($0) }
        #expect(throws: Errno.ENOPROTOOPT) { try a.setsockopt(c, level: SocketConstant.SOL_SOCKET, name: 999, 1) }
        #expect(throws: Errno.ENOPROTOOPT) { try a.setsockopt(c, level: SocketConstant.SOL_SOCKET, name: 999, 1) }
        #expect(throws: Errno.ENOPROTOOPT) { _ = try a.getsockopt(c, level: 41, name: 1) }
        #expect(lines.count == 2)
        // ENOTTY for an unknown ioctl.
        var value: Int32 = 0
        #expect(throws: Errno.ENOTTY) { try a.ioctl(c, request: 0x1234, &value) }
    }

    @Test func acceptedSocketsInheritTheListenersOptions() throws {
        let hosts = TwoHosts()
        let b = hosts.b
        typealias C = SocketConstant
        let listener = try b.socket()
        try b.bind(listener, address: .any, port: 80)
        // Some options before listen, some after: both reach connections accepted later.
        try b.setsockopt(listener, level: C.SOL_SOCKET, name: C.SO_RCVBUF, 16384)
        try b.setsockopt(listener, level: C.IPPROTO_TCP, name: C.TCP_NODELAY, 1)
        try b.setsockopt(listener, level: C.SOL_SOCKET, name: C.SO_KEEPALIVE, 1)
        try b.listen(listener, backlog: 4)
        try b.setsockopt(listener, level: C.SOL_SOCKET, name: C.SO_SNDBUF, 32768)
        try b.setsockopt(listener, level: C.IPPROTO_TCP, name: C.TCP_KEEPIDLE, 30)
        try b.setsockopt(listener, level: C.IPPROTO_TCP, name: C.TCP_KEEPINTVL, 7)
        try b.setsockopt(listener, level: C.IPPROTO_TCP, name: C.TCP_KEEPCNT, 3)
        try b.setsockopt(listener, level: C.IPPROTO_TCP, name: C.TCP_CORK, 1)
        var cubic = Array("cubic".utf8) + [0]
        try cubic.withUnsafeBytes {
            try b.setsockopt(listener, level: C.IPPROTO_TCP, name: C.TCP_CONGESTION, value: $0)
        }
        let linger: [Int32] = [1, 5]
        try linger.withUnsafeBytes { try b.setsockopt(listener, level: C.SOL_SOCKET, name: C.SO_LINGER, value: $0) }
        let client = try hosts.a.socket()
        try hosts.a.connect(client, address: addressB, port: 80)
        let server = try b.accept(listener).socket
        let ints: [(Int32, Int32, Int32)] = [
            (C.SOL_SOCKET, C.SO_RCVBUF, 32768), (C.SOL_SOCKET, C.SO_SNDBUF, 65536), (C.IPPROTO_TCP, C.TCP_NODELAY, 1),
            (C.SOL_SOCKET, C.SO_KEEPALIVE, 1), (C.IPPROTO_TCP, C.TCP_KEEPIDLE, 30), (C.IPPROTO_TCP, C.TCP_KEEPINTVL, 7),
            (C.IPPROTO_TCP, C.TCP_KEEPCNT, 3), (C.IPPROTO_TCP, C.TCP_CORK, 1),
        ]
        for (level, name, value) in ints { #expect(try b.getsockopt(server, level: level, name: name) == value) }
        var got = [Int32](repeating: 0, count: 2)
        _ = try got.withUnsafeMutableBytes {
            try b.getsockopt(server, level: C.SOL_SOCKET, name: C.SO_LINGER, into: $0)
        }
        #expect(got == [1, 5])
        cubic = [UInt8](repeating: 0, count: 16)
        _ = try cubic.withUnsafeMutableBytes {
            try b.getsockopt(server, level: C.IPPROTO_TCP, name: C.TCP_CONGESTION, into: $0)
        }
        #expect(Array(cubic[0..<6]) == Array("cubic".utf8) + [0])
        // The connection itself was made with them at the SYN: buffer sizes and congestion
        // control cannot change later, and the client saw the small window in the SYN-ACK.
        let connection = try #require(b.connectionSnapshot(server))
        #expect(connection.configuration.receiveBufferSize == 16384)
        #expect(connection.configuration.sendBufferSize == 32768)
        #expect(connection.configuration.congestionAlgorithm == .cubic)
        #expect(connection.configuration.cork && connection.configuration.noDelay)
        #expect(connection.configuration.keepAlive && connection.configuration.keepAliveCount == 3)
        #expect(try #require(hosts.a.connectionSnapshot(client)).sendWindow <= 16384)
        // A listener without options gives the defaults.
        let plain = try hosts.a.socket()
        try hosts.a.bind(plain, address: .any, port: 81)
        try hosts.a.listen(plain, backlog: 4)
        let other = try b.socket()
        try b.connect(other, address: addressA, port: 81)
        let accepted = try hosts.a.accept(plain).socket
        let defaults = try #require(hosts.a.connectionSnapshot(accepted)).configuration
        #expect(defaults.receiveBufferSize == TCPConfiguration().receiveBufferSize && !defaults.cork)
    }

    @Test func socketIdentityOptionsAndTCPInfo() throws {
        let hosts = TwoHosts()
        let (client, server, listener) = try hosts.connectedPair()
        typealias C = SocketConstant
        let a = hosts.a
        #expect(try a.getsockopt(client, level: C.SOL_SOCKET, name: C.SO_DOMAIN) == C.AF_INET)
        #expect(try a.getsockopt(client, level: C.SOL_SOCKET, name: C.SO_PROTOCOL) == C.IPPROTO_TCP)
        #expect(try a.getsockopt(client, level: C.SOL_SOCKET, name: C.SO_ACCEPTCONN) == 0)
        #expect(try a.getsockopt(client, level: C.SOL_SOCKET, name: C.SO_INCOMING_NAPI_ID) == 0)
        #expect(try hosts.b.getsockopt(listener, level: C.SOL_SOCKET, name: C.SO_ACCEPTCONN) == 1)
        // Some traffic for an RTT sample.
        _ = try pattern(3000, seed: 1).withUnsafeBytes { try a.write(client, $0) }
        hosts.run(for: .milliseconds(100))
        var info = [UInt8](repeating: 0xEE, count: 300)
        func tcpInfo(_ stack: NetworkStack<MemoryPort>, _ id: Int32, length: Int = 300) throws -> Int {
            info = [UInt8](repeating: 0xEE, count: 300)
            return try info.withUnsafeMutableBytes {
                try stack.getsockopt(
                    id, level: C.IPPROTO_TCP, name: C.TCP_INFO,
                    into: UnsafeMutableRawBufferPointer(rebasing: $0[..<length]))
            }
        }
        func u32(_ offset: Int) -> UInt32 {
            info.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
        }
        #expect(try tcpInfo(a, client) == 248)
        #expect(info[248] == 0xEE)
        let snapshot = try #require(a.connectionSnapshot(client))
        #expect(info[0] == 1)  // TCP_ESTABLISHED
        #expect(info[5] == 7)  // timestamps, SACK, window scaling
        #expect(u32(8) == UInt32(snapshot.retransmissionTimeout.nanoseconds / 1000))  // tcpi_rto
        #expect(u32(16) == UInt32(snapshot.effectiveSendMSS) && u32(16) == 1448)  // tcpi_snd_mss
        #expect(u32(20) == 1460)  // tcpi_rcv_mss
        #expect(u32(68) > 0 && u32(68) == UInt32(snapshot.smoothedRTT!.nanoseconds / 1000))  // tcpi_rtt
        #expect(u32(72) == UInt32(snapshot.rttVariance.nanoseconds / 1000))  // tcpi_rttvar
        #expect(u32(80) == UInt32(snapshot.congestionWindow / 1448) && u32(80) >= 10)  // tcpi_snd_cwnd
        #expect(u32(100) == 0)  // tcpi_total_retrans
        #expect(info[104..<228].allSatisfy { $0 == 0 })
        // Short buffers get a prefix, as from Linux.
        #expect(try tcpInfo(a, client, length: 8) == 8)
        #expect(info[0] == 1 && info[8] == 0xEE)
        #expect(try tcpInfo(hosts.b, listener) == 248)
        #expect(info[0] == 10 && u32(8) == 0)  // TCP_LISTEN
        #expect(try tcpInfo(a, a.socket()) == 248)
        #expect(info[0] == 7)  // TCP_CLOSE
        var sink = [UInt8](repeating: 0, count: 4096)
        #expect(try sink.withUnsafeMutableBytes { try hosts.b.read(server, into: $0) } == 3000)
        try hosts.b.close(server)
        hosts.run(for: .milliseconds(10))
        _ = try tcpInfo(a, client)
        #expect(info[0] == 8)  // TCP_CLOSE_WAIT
    }

    @Test func optionsRoundTripAndFIONREAD() throws {
        let hosts = TwoHosts()
        let (client, server, _) = try hosts.connectedPair()
        let a = hosts.a
        typealias C = SocketConstant
        let intOptions: [(Int32, Int32, Int32)] = [
            (C.SOL_SOCKET, C.SO_REUSEADDR, 1), (C.SOL_SOCKET, C.SO_KEEPALIVE, 1), (C.IPPROTO_TCP, C.TCP_NODELAY, 1),
            (C.IPPROTO_TCP, C.TCP_KEEPIDLE, 30), (C.IPPROTO_TCP, C.TCP_KEEPINTVL, 5), (C.IPPROTO_TCP, C.TCP_KEEPCNT, 4),
            (C.SOL_SOCKET, C.SO_REUSEPORT, 1),
        ]
        for (level, name, value) in intOptions {
            try a.setsockopt(client, level: level, name: name, value)
            #expect(try a.getsockopt(client, level: level, name: name) == value)
        }
        try a.setsockopt(client, level: C.SOL_SOCKET, name: C.SO_RCVBUF, 65536)
        #expect(try a.getsockopt(client, level: C.SOL_SOCKET, name: C.SO_RCVBUF) == 131072)
        try a.setsockopt(client, level: C.SOL_SOCKET, name: C.SO_SNDBUF, 32768)
        #expect(try a.getsockopt(client, level: C.SOL_SOCKET, name: C.SO_SNDBUF) == 65536)
        #expect(try a.getsockopt(client, level: C.SOL_SOCKET, name: C.SO_TYPE) == C.SOCK_STREAM)
        #expect(throws: Errno.EINVAL) { try a.setsockopt(client, level: C.IPPROTO_TCP, name: C.TCP_KEEPCNT, 0) }
        for name in ["cubic", "reno"] {
            var bytes = Array(name.utf8) + [0]
            try bytes.withUnsafeBytes {
                try a.setsockopt(client, level: C.IPPROTO_TCP, name: C.TCP_CONGESTION, value: $0)
            }
            bytes = [UInt8](repeating: 0xFF, count: 16)
            let n = try bytes.withUnsafeMutableBytes {
                try a.getsockopt(client, level: C.IPPROTO_TCP, name: C.TCP_CONGESTION, into: $0)
            }
            #expect(n == name.utf8.count + 1)
            #expect(Array(bytes[0..<name.utf8.count]) == Array(name.utf8))
        }
        let bogus = Array("vegas".utf8)
        #expect(throws: Errno.ENOENT) {
            try bogus.withUnsafeBytes {
                try a.setsockopt(client, level: C.IPPROTO_TCP, name: C.TCP_CONGESTION, value: $0)
            }
        }
        // FIONREAD counts bytes waiting; FIONBIO flips blocking mode.
        var value: Int32 = -1
        try a.ioctl(client, request: C.FIONREAD, &value)
        #expect(value == 0)
        _ = try pattern(1234, seed: 5).withUnsafeBytes { try hosts.b.write(server, $0) }
        hosts.run(for: .milliseconds(50))
        try a.ioctl(client, request: C.FIONREAD, &value)
        #expect(value == 1234)
        value = 0
        try a.ioctl(client, request: C.FIONBIO, &value)
        value = 1
        try a.ioctl(client, request: C.FIONBIO, &value)
        var buffer = [UInt8](repeating: 0, count: 2000)
        #expect(try buffer.withUnsafeMutableBytes { try a.read(client, into: $0) } == 1234)
        #expect(throws: Errno.EAGAIN) { _ = try buffer.withUnsafeMutableBytes { try a.read(client, into: $0) } }
        let listener = try a.socket()
        try a.listen(listener, backlog: 1)
        #expect(throws: Errno.EINVAL) { try a.ioctl(listener, request: C.FIONREAD, &value) }
    }
}
