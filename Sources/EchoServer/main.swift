// mtcp-echo: an epoll echo server on the user-level stack, one instance per core (like
// mTCP's epserver, minus HTTP). Every byte read is written back.
//
//   mtcp-echo --iface IF --addr A/N [--cores N] [--port 7] [--duration SECONDS]
import Glibc
import PacketIO
import Stack
import StackRuntime
import Synchronization
import TCP

final class EchoServer: StackApplication {
    let port: UInt16
    let duration: Int?
    let report = Mutex<[String]>([])

    init(port: UInt16, duration: Int?) {
        self.port = port
        self.duration = duration
    }

    func run<IO: PacketIO>(stack: NetworkStack<IO>, instance: Int, count: Int) {
        var accepted = 0
        var bytes = 0
        var closed = 0
        var resets = 0
        let listener: Int32
        let epfd: Int32
        do {
            (listener, epfd) = try stack.openListener(port: port)
        } catch {
            say("mtcp-echo[\(instance)]: cannot listen on port \(port): \(error)")
            StopSignal.request()
            return
        }
        say("mtcp-echo[\(instance)]: listening on \(stack.configuration.address):\(port)")
        let events = UnsafeMutableBufferPointer<EpollEvent>.allocate(capacity: 256)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer {
            events.deallocate()
            buffer.deallocate()
        }
        // Bytes read but not yet written back, per socket (when the send buffer was full). A
        // socket's buffer is kept, emptied, until it closes, so that owing again allocates nothing
        // (the allocations test counts the process's mallocs against the traffic).
        var backlog: [Int32: [UInt8]] = [:]
        func owes(_ socket: Int32) -> Bool { !(backlog[socket]?.isEmpty ?? true) }
        let end = duration.map { MonotonicClock.now() + .seconds(UInt64($0)) } ?? .never

        func close(_ socket: Int32) {
            try? stack.epollControl(epfd, op: .delete, socket: socket)
            try? stack.close(socket)
            backlog[socket] = nil
            clients.remove(socket)
            closed += 1
        }

        /// Writes `bytes` back; keeps what does not fit. Returns false when the socket failed.
        func send(_ socket: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
            var offset = 0
            while offset < bytes.count {
                do {
                    offset += try stack.write(socket, UnsafeRawBufferPointer(rebasing: bytes[offset...]))
                } catch .EAGAIN {
                    backlog[socket, default: []].append(contentsOf: bytes[offset...])
                    // Stop reading until the peer takes what we owe it: wait for EPOLLOUT only,
                    // or level-triggered EPOLLIN would wake the loop for data we will not read.
                    try? stack.epollControl(
                        epfd, op: .modify, socket: socket, events: EpollFlags.EPOLLOUT, data: UInt64(socket))
                    return true
                } catch {
                    return false
                }
            }
            return true
        }

        let debug = getenv("MTCP_DEBUG") != nil
        var nextReport = MonotonicClock.now() + .seconds(1)
        var clients: Set<Int32> = []
        while !StopSignal.requested && MonotonicClock.now() < end {
            if debug && MonotonicClock.now() >= nextReport {
                nextReport = MonotonicClock.now() + .seconds(1)
                for c in clients {
                    var readable: Int32 = 0
                    try? stack.ioctl(c, request: SocketConstant.FIONREAD, &readable)
                    say(
                        "debug: socket \(c) state \(String(describing: stack.tcpState(c))) backlog \(backlog[c]?.count ?? -1) readable \(readable) readiness \(stack.readinessMask(c))"
                    )
                    if let k = stack.connectionSnapshot(c) {
                        say(
                            "debug:   una \(k.sendUnacknowledged) nxt \(k.sendNext) max \(k.sendMax) wnd \(k.sendWindow) cwnd \(k.congestionWindow) unacked \(k.unacknowledgedBytes) writable \(k.writableBytes) rcvnxt \(k.receiveNext) deadline \(k.nextDeadline.nanoseconds) now \(MonotonicClock.now().nanoseconds) rto \(k.retransmissionTimeout)"
                        )
                    }
                }
            }
            let n: Int
            do { n = try stack.epollWait(epfd, into: events, timeout: 100) } catch { continue }
            for event in events[0..<n] {
                let socket = Int32(truncatingIfNeeded: event.data)
                if socket == listener {
                    while let (client, _, _) = try? stack.accept(listener) {
                        try? stack.setNonBlocking(client)
                        try? stack.epollControl(
                            epfd, op: .add, socket: client, events: EpollFlags.EPOLLIN | EpollFlags.EPOLLRDHUP,
                            data: UInt64(client))
                        accepted += 1
                        clients.insert(client)
                    }
                    continue
                }
                if event.events & EpollFlags.EPOLLOUT != 0, owes(socket) {
                    var sent = 0
                    var failed = false
                    backlog[socket]!.withUnsafeBytes { owed in
                        while sent < owed.count {
                            do throws(Errno) {
                                sent += try stack.write(socket, UnsafeRawBufferPointer(rebasing: owed[sent...]))
                            } catch .EAGAIN {
                                break
                            } catch {
                                failed = true
                                break
                            }
                        }
                    }
                    if failed {
                        close(socket)
                        continue
                    }
                    backlog[socket]!.removeFirst(sent)
                    if !owes(socket) {
                        try? stack.epollControl(
                            epfd, op: .modify, socket: socket, events: EpollFlags.EPOLLIN | EpollFlags.EPOLLRDHUP,
                            data: UInt64(socket))
                    }
                }
                // Read only while nothing waits to be written, so a slow reader holds the sender back.
                var finished = false
                while !owes(socket) {
                    do {
                        let got = try stack.read(socket, into: buffer)
                        if got == 0 {
                            finished = true
                            break
                        }
                        bytes += got
                        if !send(socket, UnsafeRawBufferPointer(rebasing: buffer[0..<got])) {
                            finished = true
                            resets += 1
                            break
                        }
                    } catch .EAGAIN {
                        break
                    } catch {
                        finished = true
                        resets += 1
                        break
                    }
                }
                if finished
                    || (event.events & (EpollFlags.EPOLLHUP | EpollFlags.EPOLLERR) != 0 && !owes(socket))
                {
                    close(socket)
                }
            }
        }
        let s = stack.statistics
        let line =
            "mtcp-echo[\(instance)]: accepted=\(accepted) closed=\(closed) resets=\(resets) echoed_bytes=\(bytes) \(s.summary) \(stack.endpoint.releasedConnectionTotals.summary)"
        report.withLock { $0.append(line) }
        say(line)
    }
}

StopSignal.install()
var arguments = Array(CommandLine.arguments.dropFirst())
do {
    let options = try StackOptions.parse(&arguments)
    var port: UInt16 = 7
    var duration: Int?
    var index = 0
    while index < arguments.count {
        switch arguments[index] {
        case "--port" where index + 1 < arguments.count:
            guard let p = UInt16(arguments[index + 1]) else { throw OptionsError("bad port") }
            port = p
            index += 2
        case "--duration" where index + 1 < arguments.count:
            guard let d = Int(arguments[index + 1]) else { throw OptionsError("bad duration") }
            duration = d
            index += 2
        default:
            throw OptionsError(
                "unknown argument \(arguments[index])\nusage: mtcp-echo [--port P] [--duration S]\n\(StackOptions.usage)"
            )
        }
    }
    try StackLauncher.run(options, EchoServer(port: port, duration: duration))
} catch {
    say("mtcp-echo: \(error)")
    exit(2)
}
