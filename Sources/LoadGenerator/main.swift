// mtcp-load: an HTTP load generator on the user-level stack (as mTCP's epwget): many
// connections at once, a new connection per request or persistent ones, counting
// transactions per second. Connections are split over the instances (cores).
//
//   mtcp-load --iface IF --addr A/N --server ADDR [--port 80] [--path /] [--connections N]
//             [--concurrency C] [--requests-per-connection R] [--duration SECONDS] [--cores N]
import Glibc
import PacketIO
import Stack
import StackRuntime
import Synchronization
import TCP
import Wire

struct Totals {
    var completed = 0
    var non2xx = 0
    var errors = 0
    var connections = 0
    var bytes = 0
    var errorKinds: [String: Int] = [:]
}

final class LoadGenerator: StackApplication {
    let server: IPAddress
    let port: UInt16
    let path: String
    let connections: Int
    let concurrency: Int
    let requestsPerConnection: Int
    let duration: Int
    let totals = Mutex(Totals())

    init(
        server: IPAddress, port: UInt16, path: String, connections: Int, concurrency: Int,
        requestsPerConnection: Int, duration: Int
    ) {
        self.server = server
        self.port = port
        self.path = path
        self.connections = connections
        self.concurrency = concurrency
        self.requestsPerConnection = requestsPerConnection
        self.duration = duration
    }

    struct Flow {
        var open = false
        var requestsDone = 0
        /// Bytes of responses not yet complete.
        var response: [UInt8] = []
        /// The head of the response being read, once it has arrived.
        var head: HTTPHead.Response?
        var connected = false
    }

    func run<IO: PacketIO>(stack: NetworkStack<IO>, instance: Int, count: Int) {
        // This instance's share of the work.
        let share = connections / count + (instance < connections % count ? 1 : 0)
        let parallel = max(1, concurrency / count + (instance < concurrency % count ? 1 : 0))
        var local = Totals()
        var started = 0
        // Indexed by socket id (the stack hands out small, reused numbers).
        var flows: [Flow] = []
        var active = 0
        let epfd = stack.epollCreate()
        let events = UnsafeMutableBufferPointer<EpollEvent>.allocate(capacity: 256)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer {
            events.deallocate()
            buffer.deallocate()
        }
        let keepAlive = requestsPerConnection > 1
        let request = Array(
            "GET \(path) HTTP/1.1\r\nHost: \(server)\r\nUser-Agent: mtcp-load\r\nConnection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n"
                .utf8)
        let begin = MonotonicClock.now()
        let end = begin + .seconds(UInt64(duration))

        func finish(_ socket: Int32) {
            try? stack.epollControl(epfd, op: .delete, socket: socket)
            try? stack.close(socket)
            flows[Int(socket)].open = false
            flows[Int(socket)].response.removeAll(keepingCapacity: true)
            active -= 1
        }

        func fail(_ socket: Int32, _ why: String) {
            local.errors += 1
            local.errorKinds[why, default: 0] += 1
            finish(socket)
        }

        func open() {
            started += 1
            do {
                let socket = try stack.socket(inet6: !server.isIPv4)
                try stack.setNonBlocking(socket)
                do {
                    try stack.connect(socket, address: server, port: port)
                } catch .EINPROGRESS {}
                let f = Int(socket)
                if f >= flows.count { flows.append(contentsOf: repeatElement(Flow(), count: f + 1 - flows.count)) }
                flows[f].open = true
                flows[f].requestsDone = 0
                flows[f].head = nil
                flows[f].connected = false
                active += 1
                local.connections += 1
                try stack.epollControl(
                    epfd, op: .add, socket: socket, events: EpollFlags.EPOLLOUT | EpollFlags.EPOLLIN,
                    data: UInt64(socket))
            } catch {
                local.errors += 1
                local.errorKinds["connect \(error)", default: 0] += 1
            }
        }

        func sendRequest(_ socket: Int32) -> Bool {
            do {
                let n = try request.withUnsafeBytes { try stack.write(socket, $0) }
                return n == request.count
            } catch {
                return false
            }
        }

        /// Parses what arrived; returns true when a whole response is in.
        func complete(_ flow: inout Flow) -> Bool {
            if flow.head == nil {
                flow.head = flow.response.withUnsafeBytes { HTTPHead.response($0) }
            }
            guard let head = flow.head, let length = head.contentLength else { return false }
            return flow.response.count >= head.length + length
        }

        while !StopSignal.requested && MonotonicClock.now() < end {
            while started < share && active < parallel { open() }
            if active == 0 && started >= share { break }
            let n: Int
            do { n = try stack.epollWait(epfd, into: events, timeout: 100) } catch { continue }
            for event in events[0..<n] {
                let socket = Int32(truncatingIfNeeded: event.data)
                let f = Int(socket)
                guard f >= 0, f < flows.count, flows[f].open else { continue }
                // Worked on outside the array (moved, not copied) and put back below.
                var flow = flows[f]
                flows[f].response = []
                if !flow.connected {
                    if event.events & (EpollFlags.EPOLLERR | EpollFlags.EPOLLHUP) != 0 {
                        let code = (try? stack.getsockopt(socket, level: SOL_SOCKET, name: SO_ERROR)) ?? -1
                        fail(socket, "connect errno \(code)")
                        continue
                    }
                    guard event.events & EpollFlags.EPOLLOUT != 0 else { continue }
                    flow.connected = true
                    guard sendRequest(socket) else {
                        fail(socket, "write")
                        continue
                    }
                    try? stack.epollControl(
                        epfd, op: .modify, socket: socket, events: EpollFlags.EPOLLIN, data: UInt64(socket))
                }
                var closedByPeer = false
                var failed = false
                reading: while true {
                    do {
                        let got = try stack.read(socket, into: buffer)
                        if got == 0 {
                            closedByPeer = true
                            break reading
                        }
                        flow.response.append(contentsOf: buffer[0..<got])
                        local.bytes += got
                    } catch .EAGAIN {
                        break reading
                    } catch {
                        failed = true
                        break reading
                    }
                }
                var done = false
                while complete(&flow), let head = flow.head {
                    if (200..<300).contains(head.status) { local.completed += 1 } else { local.non2xx += 1 }
                    flow.requestsDone += 1
                    let used = head.length + (head.contentLength ?? 0)
                    if used == flow.response.count {
                        flow.response.removeAll(keepingCapacity: true)
                    } else {
                        flow.response.removeFirst(used)
                    }
                    flow.head = nil
                    if flow.requestsDone >= requestsPerConnection || !keepAlive {
                        done = true
                        break
                    }
                    guard sendRequest(socket) else {
                        failed = true
                        break
                    }
                }
                flows[f] = flow
                if done {
                    finish(socket)
                } else if failed {
                    fail(socket, "read")
                } else if closedByPeer {
                    // A server that closes without a length ends the body at end of stream.
                    if let head = flow.head, head.contentLength == nil, (200..<300).contains(head.status) {
                        local.completed += 1
                        finish(socket)
                    } else {
                        fail(socket, "closed early")
                    }
                }
            }
        }
        let elapsed = Double((MonotonicClock.now() - begin).nanoseconds) / 1e9
        say(
            "mtcp-load[\(instance)]: completed=\(local.completed) non2xx=\(local.non2xx) errors=\(local.errors) connections=\(local.connections) seconds=\(elapsed) \(local.errorKinds)"
        )
        totals.withLock { t in
            t.completed += local.completed
            t.non2xx += local.non2xx
            t.errors += local.errors
            t.connections += local.connections
            t.bytes += local.bytes
            for (k, v) in local.errorKinds { t.errorKinds[k, default: 0] += v }
        }
    }
}

StopSignal.install()
var arguments = Array(CommandLine.arguments.dropFirst())
do {
    let options = try StackOptions.parse(&arguments)
    let usage =
        "usage: mtcp-load --server ADDR [--port P] [--path /] [--connections N] [--concurrency C] [--requests-per-connection R] [--duration S]\n\(StackOptions.usage)"
    let flags = try ProgramArguments(
        arguments,
        known: [
            "--server", "--port", "--path", "--connections", "--concurrency", "--requests-per-connection", "--duration",
        ],
        usage: usage)
    guard let server = IPAddress(flags.string("--server", default: "")) else {
        throw OptionsError("--server ADDR is required")
    }
    let port = try flags.int("--port", default: 80)
    let generator = LoadGenerator(
        server: server, port: UInt16(clamping: port), path: flags.string("--path", default: "/"),
        connections: try flags.int("--connections", default: 1000),
        concurrency: try flags.int("--concurrency", default: 100),
        requestsPerConnection: max(1, try flags.int("--requests-per-connection", default: 1)),
        duration: try flags.int("--duration", default: 60))
    let begin = MonotonicClock.now()
    try StackLauncher.run(options, generator)
    let t = generator.totals.withLock { $0 }
    let seconds = Double((MonotonicClock.now() - begin).nanoseconds) / 1e9
    say(
        "mtcp-load: completed=\(t.completed) non2xx=\(t.non2xx) errors=\(t.errors) connections=\(t.connections) bytes=\(t.bytes) seconds=\(seconds) transactions_per_second=\(Int(Double(t.completed) / max(seconds, 1e-9)))"
    )
    exit(t.errors == 0 && t.non2xx == 0 && t.completed > 0 ? 0 : 1)
} catch {
    say("mtcp-load: \(error)")
    exit(2)
}
