import TCP
import Wire

/// One connection that carries `bytesEachWay` in both directions at once between a client
/// and a server host, each side writing a `BytePattern` and checking every byte it reads.
/// Both sides shut down writing when done and close after reading end of stream.
public final class BulkTransfer {
    public struct Side {
        public var connection: ConnectionID?
        public var sent = 0
        public var received = 0
        public var sentDigest = StreamDigest()
        public var receivedDigest = StreamDigest()
        public var firstMismatch: Int?
        public var endOfStream = false
        public var shutdownSent = false
        public var closed = false
        public var error: TCPError?
        public var finalState: TCPState?
        public var statistics = TCPConnectionStatistics()
    }

    public let bytesEachWay: Int
    public let port: UInt16
    public private(set) var client = Side()
    public private(set) var server = Side()
    let clientPattern: BytePattern
    let serverPattern: BytePattern
    private let buffer: UnsafeMutableRawBufferPointer

    public init(
        client clientHost: SimulatedTCPHost, server serverHost: SimulatedTCPHost, bytesEachWay: Int,
        port: UInt16 = 5001,
        seed: UInt64
    ) throws(TCPEndpointError) {
        self.bytesEachWay = bytesEachWay
        self.port = port
        clientPattern = BytePattern(seed: seed)
        serverPattern = BytePattern(seed: ~seed)
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 8)
        let listener = try serverHost.endpoint.listen(
            address: .wildcard(ipv6: !serverHost.address.isIPv4), port: port, backlog: 16)
        client.connection = try clientHost.endpoint.connect(
            from: clientHost.address, to: serverHost.address, port: port, now: .zero)
        clientHost.application = { [unowned self] host, now in
            self.drive(&self.client, pattern: self.clientPattern, peerPattern: self.serverPattern, host: host, now: now)
        }
        serverHost.application = { [unowned self] host, now in
            if self.server.connection == nil { self.server.connection = host.endpoint.accept(listener) }
            self.drive(&self.server, pattern: self.serverPattern, peerPattern: self.clientPattern, host: host, now: now)
        }
    }

    deinit { buffer.deallocate() }

    /// Both directions delivered byte-exact and both sides saw end of stream.
    public var isComplete: Bool {
        client.endOfStream && server.endOfStream && client.received == bytesEachWay && server.received == bytesEachWay
    }

    public var failed: Bool {
        client.error != nil || server.error != nil || client.firstMismatch != nil || server.firstMismatch != nil
    }

    func drive(_ side: inout Side, pattern: BytePattern, peerPattern: BytePattern, host: SimulatedTCPHost, now: Instant)
    {
        guard let id = side.connection, !side.closed else { return }
        let endpoint = host.endpoint
        if let c = endpoint.connection(id) {
            side.statistics = c.statistics
            side.finalState = c.state
            if let e = c.error { side.error = e }
        }
        // Write as much as the send buffer takes.
        while side.sent < bytesEachWay {
            let n = min(buffer.count, bytesEachWay - side.sent)
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
            pattern.fill(chunk, from: side.sent)
            guard case .bytes(let written) = endpoint.write(id, UnsafeRawBufferPointer(chunk), now: now), written > 0
            else { break }
            side.sentDigest.add(UnsafeRawBufferPointer(rebasing: buffer[0..<written]))
            side.sent += written
        }
        if side.sent == bytesEachWay && !side.shutdownSent {
            endpoint.shutdownWrite(id, now: now)
            side.shutdownSent = true
        }
        // Read everything available and check it.
        readLoop: while true {
            switch endpoint.read(id, into: buffer, now: now) {
            case .bytes(let n):
                let got = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                if side.firstMismatch == nil, let bad = peerPattern.firstMismatch(in: got, at: side.received) {
                    side.firstMismatch = bad
                }
                side.receivedDigest.add(got)
                side.received += n
            case .endOfStream:
                side.endOfStream = true
                break readLoop
            case .wouldBlock:
                break readLoop
            case .failed(let error):
                side.error = error
                break readLoop
            }
        }
        if side.endOfStream && side.shutdownSent, let c = endpoint.connection(id),
            c.unacknowledgedBytes == 0
        {
            side.statistics = c.statistics
            side.finalState = c.state
            endpoint.close(id, now: now)
            side.closed = true
        }
    }
}
