import TCP
import Wire

/// Many short connections in the style of mTCP's epwget/epserver: each client connection
/// sends a request, the server answers and closes, the client reads to end of stream and
/// closes. Every byte is checked against a `BytePattern`.
public final class RequestResponseLoad {
    public struct Counters: Sendable {
        public var opened = 0
        public var completed = 0
        public var failed = 0
        public var corrupted = 0
        public var served = 0
        public var errors: [TCPError] = []
    }

    enum ClientPhase { case sending, receiving, done }

    struct ClientConnection {
        var id: ConnectionID
        var index: Int
        var sent = 0
        var received = 0
        var phase = ClientPhase.sending
    }

    struct ServerConnection {
        var id: ConnectionID
        var requestReceived = 0
        var responseSent = 0
        /// The client's index, from the first 8 bytes of its request.
        var requestIndex = 0
    }

    public let connections: Int
    public let concurrency: Int
    public let requestSize: Int
    public let responseSize: Int
    public let port: UInt16
    public let serverAddress: IPAddress
    /// The server's listener (its family is the server's address's).
    let listener: ListenerKey
    public private(set) var counters = Counters()
    var started = 0
    var clients: [ClientConnection] = []
    var servers: [ServerConnection] = []
    let requestPattern: BytePattern
    let responsePattern: BytePattern
    private let buffer: UnsafeMutableRawBufferPointer

    /// - Parameters:
    ///   - connections: total connections to complete.
    ///   - concurrency: how many are open at once.
    public init(
        client clientHost: SimulatedTCPHost, server serverHost: SimulatedTCPHost, connections: Int, concurrency: Int,
        requestSize: Int = 64, responseSize: Int = 512, port: UInt16 = 80, backlog: Int = 128, seed: UInt64 = 1
    ) throws(TCPEndpointError) {
        self.connections = connections
        self.concurrency = max(concurrency, 1)
        self.requestSize = max(requestSize, 8)
        self.responseSize = responseSize
        self.port = port
        serverAddress = serverHost.address
        requestPattern = BytePattern(seed: seed)
        responsePattern = BytePattern(seed: seed ^ 0xABCD)
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 8)
        listener = try serverHost.endpoint.listen(
            address: .wildcard(ipv6: !serverHost.address.isIPv4), port: port,
            backlog: backlog)
        clientHost.application = { [unowned self] host, now in self.driveClient(host, now: now) }
        serverHost.application = { [unowned self] host, now in self.driveServer(host, now: now) }
    }

    deinit { buffer.deallocate() }

    public var isFinished: Bool { counters.completed + counters.failed >= connections }

    /// The request of connection `index` starts at this offset of the request pattern, so the
    /// server can tell which client it serves from the first 8 bytes.
    func requestOffset(_ index: Int) -> Int { index * requestSize }

    func driveClient(_ host: SimulatedTCPHost, now: Instant) {
        let endpoint = host.endpoint
        while started < connections && clients.count < concurrency {
            do {
                let id = try endpoint.connect(
                    from: host.address, to: serverAddress, port: port, now: now)
                clients.append(ClientConnection(id: id, index: started))
                started += 1
                counters.opened += 1
            } catch {
                counters.failed += 1
                started += 1
            }
        }
        var i = 0
        while i < clients.count {
            if step(&clients[i], endpoint: endpoint, now: now) {
                endpoint.close(clients[i].id, now: now)
                clients.swapAt(i, clients.count - 1)
                clients.removeLast()
            } else {
                i += 1
            }
        }
    }

    /// Advances one client connection; returns true when it is finished.
    func step(_ c: inout ClientConnection, endpoint: TCPEndpoint, now: Instant) -> Bool {
        if c.phase == .sending {
            while c.sent < requestSize {
                let n = min(buffer.count, requestSize - c.sent)
                let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
                fillRequest(chunk, index: c.index, from: c.sent)
                switch endpoint.write(c.id, UnsafeRawBufferPointer(chunk), now: now) {
                case .bytes(let w): c.sent += w
                case .wouldBlock: return false
                case .failed(let e):
                    counters.failed += 1
                    counters.errors.append(e)
                    return true
                }
            }
            c.phase = .receiving
        }
        while true {
            switch endpoint.read(c.id, into: buffer, now: now) {
            case .bytes(let n):
                let got = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                if responsePattern.firstMismatch(in: got, at: c.index * responseSize + c.received) != nil {
                    counters.corrupted += 1
                }
                c.received += n
            case .endOfStream:
                if c.received == responseSize { counters.completed += 1 } else { counters.failed += 1 }
                return true
            case .wouldBlock:
                return false
            case .failed(let e):
                counters.failed += 1
                counters.errors.append(e)
                return true
            }
        }
    }

    func driveServer(_ host: SimulatedTCPHost, now: Instant) {
        let endpoint = host.endpoint
        while let id = endpoint.accept(listener) {
            servers.append(ServerConnection(id: id))
        }
        var i = 0
        while i < servers.count {
            if serve(&servers[i], endpoint: endpoint, now: now) {
                endpoint.close(servers[i].id, now: now)
                servers.swapAt(i, servers.count - 1)
                servers.removeLast()
            } else {
                i += 1
            }
        }
    }

    /// Reads the request, writes the response; returns true when the connection can be closed.
    func serve(_ s: inout ServerConnection, endpoint: TCPEndpoint, now: Instant) -> Bool {
        while s.requestReceived < requestSize {
            switch endpoint.read(s.id, into: buffer, now: now) {
            case .bytes(let n):
                for k in 0..<n {
                    let at = s.requestReceived + k
                    if at < 8 {
                        s.requestIndex |= Int(buffer[k]) << (8 * at)
                    } else if at < requestSize
                        && buffer[k] != requestPattern.byte(at: requestOffset(s.requestIndex) + at)
                    {
                        counters.corrupted += 1
                    }
                }
                s.requestReceived += n
            case .wouldBlock:
                return false
            case .endOfStream, .failed:
                return true
            }
        }
        while s.responseSent < responseSize {
            let n = min(buffer.count, responseSize - s.responseSent)
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
            responsePattern.fill(chunk, from: s.requestIndex * responseSize + s.responseSent)
            switch endpoint.write(s.id, UnsafeRawBufferPointer(chunk), now: now) {
            case .bytes(let w): s.responseSent += w
            case .wouldBlock: return false
            case .failed: return true
            }
        }
        counters.served += 1
        return true
    }

    /// Request bytes [from, from + chunk.count): the client index in 8 little-endian bytes,
    /// then the request pattern.
    func fillRequest(_ chunk: UnsafeMutableRawBufferPointer, index: Int, from: Int) {
        for k in 0..<chunk.count {
            let at = from + k
            chunk[k] =
                at < 8
                ? UInt8(truncatingIfNeeded: index >> (8 * at)) : requestPattern.byte(at: requestOffset(index) + at)
        }
    }
}
