// mtcp-httpd: a small static HTTP/1.1 server on the user-level stack (keep-alive and
// Connection: close, GET and HEAD), one instance per core.
//
//   mtcp-httpd --iface IF --addr A/N --root DIR [--port 80] [--cores N] [--duration SECONDS]
import Glibc
import PacketIO
import Stack
import StackRuntime
import TCP

/// A file under the root with its responses made once: the header for keep-alive and for
/// close, each followed by the body, so a GET is one write of bytes made in advance.
struct CachedFile {
    var path: [UInt8]
    var bodyLength: Int
    /// Header + body, keep-alive and close.
    var get: (keepAlive: [UInt8], close: [UInt8])
    /// The header alone (HEAD).
    var head: (keepAlive: [UInt8], close: [UInt8])

    init(path: [UInt8], status: String, body: [UInt8]) {
        self.path = path
        bodyLength = body.count
        func header(_ keepAlive: Bool) -> [UInt8] {
            Array(
                "HTTP/1.1 \(status)\r\nServer: mtcp-httpd\r\nContent-Type: application/octet-stream\r\nContent-Length: \(body.count)\r\nConnection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n"
                    .utf8)
        }
        head = (header(true), header(false))
        get = (head.keepAlive + body, head.close + body)
    }

    func response(method: HTTPHead.Method, keepAlive: Bool) -> [UInt8] {
        method == .head ? (keepAlive ? head.keepAlive : head.close) : (keepAlive ? get.keepAlive : get.close)
    }
}

/// Files under the root, read once on first request (the examples serve small trees). The
/// last file served is compared first: a benchmark asks for one path over and over.
final class FileCache {
    let root: String
    var files: [CachedFile] = []
    var byPath: [String: Int] = [:]
    var last = -1
    let notFound: CachedFile
    let methodNotAllowed: CachedFile

    init(root: String) {
        self.root = root
        notFound = CachedFile(path: [], status: "404 Not Found", body: Array("not found\n".utf8))
        methodNotAllowed = CachedFile(path: [], status: "405 Method Not Allowed", body: [])
    }

    /// The file for a request target's bytes (without its query).
    func file(_ target: UnsafeRawBufferPointer) -> CachedFile? {
        if last >= 0 && files[last].path.elementsEqual(target) { return files[last] }
        let key = String(decoding: target, as: UTF8.self)
        if let index = byPath[key] {
            last = index
            return files[index]
        }
        guard !key.contains(".."), key.hasPrefix("/"), let body = read(key == "/" ? "/index.html" : key) else {
            return nil
        }
        files.append(CachedFile(path: Array(target), status: "200 OK", body: body))
        byPath[key] = files.count - 1
        last = files.count - 1
        return files[last]
    }

    func read(_ path: String) -> [UInt8]? {
        let fd = open(root + path, O_RDONLY | O_CLOEXEC)
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
        return bytes
    }
}

/// One connection: bytes of requests not yet answered, and the response being sent (shared
/// with the cache, not copied).
struct Client {
    var open = false
    var request: [UInt8] = []
    var response: [UInt8] = []
    var sent = 0
    var closeAfter = false
    /// EPOLLOUT is asked for (the send buffer was full).
    var watchingOutput = false
    var sending: Bool { sent < response.count }
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
        // Indexed by socket id (the stack hands out small, reused numbers).
        var clients: [Client] = []
        let end = duration.map { MonotonicClock.now() + .seconds(UInt64($0)) } ?? .never

        func close(_ socket: Int32) {
            try? stack.epollControl(epfd, op: .delete, socket: socket)
            try? stack.close(socket)
            clients[Int(socket)].open = false
            clients[Int(socket)].request.removeAll(keepingCapacity: true)
            clients[Int(socket)].response = []
        }

        /// Sends what the send buffer takes; returns false when the connection is done.
        func flush(_ socket: Int32) -> Bool {
            let c = Int(socket)
            var waiting = false
            while clients[c].sending {
                do {
                    let sent = clients[c].sent
                    let n = try clients[c].response.withUnsafeBytes {
                        try stack.write(socket, UnsafeRawBufferPointer(rebasing: $0[sent...]))
                    }
                    clients[c].sent += n
                } catch {
                    guard let failure = error as? Errno, failure == .EAGAIN else { return false }
                    waiting = true
                    break
                }
            }
            if waiting {
                if !clients[c].watchingOutput {
                    clients[c].watchingOutput = true
                    try? stack.epollControl(
                        epfd, op: .modify, socket: socket, events: EpollFlags.EPOLLIN | EpollFlags.EPOLLOUT,
                        data: UInt64(socket))
                }
                return true
            }
            if clients[c].watchingOutput {
                clients[c].watchingOutput = false
                try? stack.epollControl(
                    epfd, op: .modify, socket: socket, events: EpollFlags.EPOLLIN, data: UInt64(socket))
            }
            clients[c].response = []
            clients[c].sent = 0
            return !clients[c].closeAfter
        }

        /// Answers every complete request in the buffer (pipelining is served in order).
        func answer(_ socket: Int32) -> Bool {
            let c = Int(socket)
            var consumed = 0
            defer {
                if consumed == clients[c].request.count {
                    clients[c].request.removeAll(keepingCapacity: true)
                } else if consumed > 0 {
                    clients[c].request.removeFirst(consumed)
                }
            }
            while !clients[c].sending {
                let parsed = clients[c].request.withUnsafeBytes { all -> (HTTPHead.Request, CachedFile?)? in
                    let rest = UnsafeRawBufferPointer(rebasing: all[consumed...])
                    guard let request = HTTPHead.request(rest) else { return nil }
                    guard request.wellFormed, request.method != .other else { return (request, nil) }
                    return (request, cache.file(UnsafeRawBufferPointer(rebasing: rest[request.path])))
                }
                guard let (request, found) = parsed else { return true }
                consumed += request.length
                let keepAlive = request.keepAlive && request.wellFormed && request.method != .other
                let file: CachedFile
                if !request.wellFormed || request.method == .other {
                    file = cache.methodNotAllowed
                } else if let found {
                    file = found
                    served += 1
                } else {
                    file = cache.notFound
                    notFound += 1
                }
                clients[c].response = file.response(method: request.method, keepAlive: keepAlive)
                clients[c].sent = 0
                clients[c].closeAfter = !keepAlive
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
                        let c = Int(client)
                        if c >= clients.count {
                            clients.append(contentsOf: repeatElement(Client(), count: c + 1 - clients.count))
                        }
                        clients[c].open = true
                        clients[c].closeAfter = false
                        clients[c].watchingOutput = false
                        accepted += 1
                    }
                    continue
                }
                let c = Int(socket)
                guard c >= 0, c < clients.count, clients[c].open else { continue }
                if clients[c].sending && !flush(socket) {
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
                        clients[c].request.append(contentsOf: buffer[0..<got])
                        if clients[c].request.count > 64 * 1024 {
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
                if !answer(socket) || (!open && !clients[c].sending) {
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
