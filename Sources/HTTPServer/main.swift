// mtcp-httpd: a small static HTTP/1.1 server on the user-level stack (keep-alive and
// Connection: close, GET and HEAD), one instance per core.
//
//   mtcp-httpd --iface IF --addr A/N --root DIR [--port 80] [--cores N] [--duration SECONDS]
import Glibc
import PacketIO
import Stack
import StackRuntime
import TCP

/// Files under the root, read once on first request (the examples serve small trees).
final class FileCache {
    let root: String
    var files: [String: [UInt8]] = [:]
    init(root: String) { self.root = root }

    func file(_ path: Substring) -> [UInt8]? {
        let key = String(path)
        if let cached = files[key] { return cached }
        guard !key.contains(".."), key.hasPrefix("/") else { return nil }
        let full = root + (key == "/" ? "/index.html" : key)
        let fd = open(full, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            guard n > 0 else { return nil }
            done += n
        }
        files[key] = bytes
        return bytes
    }
}

struct Client {
    var request: [UInt8] = []
    var response: [UInt8] = []
    var body: [UInt8] = []
    var sent = 0
    var closeAfter = false
    var sending: Bool { sent < response.count + body.count }
}

final class HTTPServer: StackApplication {
    let port: UInt16
    let root: String
    let duration: Int?

    init(port: UInt16, root: String, duration: Int?) {
        self.port = port
        self.root = root
        self.duration = duration
    }

    func run<IO: PacketIO>(stack: NetworkStack<IO>, instance: Int, count: Int) {
        let cache = FileCache(root: root)
        var served = 0
        var notFound = 0
        var accepted = 0
        let listener: Int32
        let epfd: Int32
        do {
            (listener, epfd) = try stack.openListener(port: port)
        } catch {
            say("mtcp-httpd[\(instance)]: cannot listen on port \(port): \(error)")
            StopSignal.request()
            return
        }
        say("mtcp-httpd[\(instance)]: serving \(root) on \(stack.configuration.address):\(port)")
        let events = UnsafeMutableBufferPointer<EpollEvent>.allocate(capacity: 256)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 16)
        defer {
            events.deallocate()
            buffer.deallocate()
        }
        var clients: [Int32: Client] = [:]
        let end = duration.map { MonotonicClock.now() + .seconds(UInt64($0)) } ?? .never

        func close(_ socket: Int32) {
            try? stack.epollControl(epfd, op: .delete, socket: socket)
            try? stack.close(socket)
            clients[socket] = nil
        }

        /// Sends what the send buffer takes; returns false when the connection is done.
        func flush(_ socket: Int32) -> Bool {
            guard var client = clients[socket] else { return false }
            defer { clients[socket] = client }
            while client.sending {
                let headerLeft = client.response.count - client.sent
                do {
                    let n: Int
                    if headerLeft > 0 {
                        n = try client.response.withUnsafeBytes {
                            try stack.write(socket, UnsafeRawBufferPointer(rebasing: $0[client.sent...]))
                        }
                    } else {
                        let offset = client.sent - client.response.count
                        n = try client.body.withUnsafeBytes {
                            try stack.write(socket, UnsafeRawBufferPointer(rebasing: $0[offset...]))
                        }
                    }
                    client.sent += n
                } catch {
                    guard let failure = error as? Errno, failure == .EAGAIN else { return false }
                    try? stack.epollControl(
                        epfd, op: .modify, socket: socket, events: EpollFlags.EPOLLIN | EpollFlags.EPOLLOUT,
                        data: UInt64(socket))
                    return true
                }
            }
            try? stack.epollControl(
                epfd, op: .modify, socket: socket, events: EpollFlags.EPOLLIN, data: UInt64(socket))
            return !client.closeAfter
        }

        /// Answers every complete request in the buffer (pipelining is served in order).
        func answer(_ socket: Int32) -> Bool {
            while var client = clients[socket], !client.sending,
                let end = httpHeaderEnd(client.request)
            {
                let head = String(decoding: client.request[..<end], as: UTF8.self)
                client.request.removeFirst(end + 4)
                let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
                let parts = lines.first?.split(separator: " ") ?? []
                var keepAlive = parts.count == 3 && parts[2] == "HTTP/1.1"
                for line in lines.dropFirst() {
                    let lower = line.lowercased()
                    if lower.hasPrefix("connection:") {
                        if lower.contains("close") { keepAlive = false }
                        if lower.contains("keep-alive") { keepAlive = true }
                    }
                }
                var status = "200 OK"
                var body: [UInt8] = []
                if parts.count < 2 || (parts[0] != "GET" && parts[0] != "HEAD") {
                    status = "405 Method Not Allowed"
                    keepAlive = false
                } else if let file = cache.file(parts[1].split(separator: "?").first ?? "/") {
                    body = file
                    served += 1
                } else {
                    status = "404 Not Found"
                    body = Array("not found\n".utf8)
                    notFound += 1
                }
                let length = body.count
                if parts.first == "HEAD" { body = [] }
                client.response = Array(
                    "HTTP/1.1 \(status)\r\nServer: mtcp-httpd\r\nContent-Type: application/octet-stream\r\nContent-Length: \(length)\r\nConnection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n"
                        .utf8)
                client.body = body
                client.sent = 0
                client.closeAfter = !keepAlive
                clients[socket] = client
                if !flush(socket) { return false }
            }
            return true
        }

        while !StopSignal.requested && MonotonicClock.now() < end {
            let n: Int
            do { n = try stack.epollWait(epfd, into: events, timeout: 100) } catch { continue }
            for event in events[0..<n] {
                let socket = Int32(truncatingIfNeeded: event.data)
                if socket == listener {
                    while let (client, _, _) = try? stack.accept(listener) {
                        try? stack.setNonBlocking(client)
                        try? stack.epollControl(
                            epfd, op: .add, socket: client, events: EpollFlags.EPOLLIN, data: UInt64(client))
                        clients[client] = Client()
                        accepted += 1
                    }
                    continue
                }
                guard clients[socket] != nil else { continue }
                if clients[socket]!.sending && !flush(socket) {
                    close(socket)
                    continue
                }
                var open = true
                reading: while true {
                    do {
                        let got = try stack.read(socket, into: buffer)
                        if got == 0 {
                            open = false
                            break reading
                        }
                        clients[socket]!.request.append(contentsOf: buffer[0..<got])
                        if clients[socket]!.request.count > 64 * 1024 {
                            open = false
                            break reading
                        }
                    } catch .EAGAIN {
                        break reading
                    } catch {
                        open = false
                        break reading
                    }
                }
                if !answer(socket) || (!open && !(clients[socket]?.sending ?? false)) {
                    close(socket)
                }
            }
        }
        let s = stack.statistics
        say("mtcp-httpd[\(instance)]: accepted=\(accepted) served=\(served) not_found=\(notFound) \(s.summary)")
    }
}

StopSignal.install()
var arguments = Array(CommandLine.arguments.dropFirst())
do {
    let options = try StackOptions.parse(&arguments)
    let usage = "usage: mtcp-httpd --root DIR [--port P] [--duration S]\n\(StackOptions.usage)"
    let flags = try ProgramArguments(arguments, known: ["--root", "--port", "--duration"], usage: usage)
    let port = try flags.int("--port", default: 80)
    guard port > 0 && port < 65536 else { throw OptionsError("bad port") }
    try StackLauncher.run(
        options,
        HTTPServer(
            port: UInt16(port), root: flags.string("--root", default: "."),
            duration: try flags.optionalInt("--duration")
        ))
} catch {
    say("mtcp-httpd: \(error)")
    exit(2)
}
