import TCP
import Wire

// libFuzzer target: a TCPEndpoint (the server) fed hostile segments around a live connection.
// A client endpoint and the server make a connection over a perfect in-memory path; then the
// input is a list of operations: deliver or drop or duplicate what either side sent, inject a
// segment built from the fuzzer's bytes relative to the live connection's sequence numbers,
// application reads, writes and closes, and time passing. After every operation the
// endpoints' invariants must hold: buffer accounting within the configured sizes, and every
// byte the client reads exactly what the server's application wrote (segments are injected
// toward the server only, so nothing may corrupt the server-to-client stream).


/// A segment with its payload copied out of the sender's buffers.
struct Captured {
    var segment: TCPSegment
    var payload: [UInt8]
    var flow: TCPFlow
}

struct CaptureSink: TCPEndpointSink {
    var out: [Captured] = []
    mutating func send(_ segment: TCPSegment, flow: TCPFlow) {
        var bytes = Array(segment.payload)
        bytes.append(contentsOf: segment.payloadTail)
        var copy = segment
        copy.payload = UnsafeRawBufferPointer(start: nil, count: 0)
        copy.payloadTail = UnsafeRawBufferPointer(start: nil, count: 0)
        out.append(Captured(segment: copy, payload: bytes, flow: flow))
    }
}


final class Session {
    var now = Instant(nanoseconds: 1_000_000_000)
    let configuration: TCPConfiguration
    let client: TCPEndpoint
    let server: TCPEndpoint
    let listener: ListenerKey
    var clientSink = CaptureSink()
    var serverSink = CaptureSink()
    var clientID: ConnectionID?
    var serverID: ConnectionID?
    /// What the server's application wrote, and how much of it the client has read.
    var serverWrote: [UInt8] = []
    var clientRead = 0
    /// The last segment the client sent toward the server: the base of injected ones.
    var lastToServer: Captured?

    init(ipv6: Bool) {
        var configuration = TCPConfiguration()
        configuration.receiveBufferSize = 16 * 1024
        configuration.sendBufferSize = 16 * 1024
        self.configuration = configuration
        client = TCPEndpoint(configuration: configuration, secret: (1, 2))
        server = TCPEndpoint(configuration: configuration, secret: (3, 4))
        let serverAddress = ipv6 ? IPAddress("fd00::2")! : IPAddress(IPv4Address(10, 0, 0, 2))
        let clientAddress = ipv6 ? IPAddress("fd00::1")! : IPAddress(IPv4Address(10, 0, 0, 1))
        listener = try! server.listen(address: .wildcard(ipv6: ipv6), port: 80, backlog: 4)
        clientID = try? client.connect(from: clientAddress, to: serverAddress, port: 80, now: now)
    }

    func pollBoth() {
        client.poll(now: now, into: &clientSink)
        server.poll(now: now, into: &serverSink)
        client.drainEvents { _ in }
        server.drainEvents { _ in }
        if serverID == nil { serverID = server.accept(listener) }
    }

    /// Delivers (or drops, or duplicates) the first `count` segments each side has sent.
    func exchange(_ mode: UInt8, count: Int) {
        for _ in 0..<count {
            pollBoth()
            if !clientSink.out.isEmpty {
                let c = clientSink.out.removeFirst()
                lastToServer = c
                if mode % 4 != 1 { deliver(c, to: server) }
                if mode % 4 == 2 { deliver(c, to: server) }
            }
            if !serverSink.out.isEmpty {
                let c = serverSink.out.removeFirst()
                if mode % 4 != 3 { deliver(c, to: client) }
            }
        }
        pollBoth()
    }

    func deliver(_ captured: Captured, to endpoint: TCPEndpoint) {
        let flow = TCPFlow(
            localAddress: captured.flow.remoteAddress, localPort: captured.flow.remotePort,
            remoteAddress: captured.flow.localAddress, remotePort: captured.flow.localPort)
        captured.payload.withUnsafeBytes { bytes in
            var segment = captured.segment
            segment.payload = bytes
            endpoint.handle(segment, flow: flow, now: now)
        }
    }

    /// A segment toward the server built from the last real one: sequence and acknowledgment
    /// moved by the fuzzer's deltas, its flags, window, options and payload.
    func inject(_ r: inout Reader) {
        guard let base = lastToServer else { return }
        var segment = base.segment
        let seqDelta = Int32(bitPattern: r.long()) >> Int32(r.byte() % 24)
        let ackDelta = Int32(bitPattern: r.long()) >> Int32(r.byte() % 24)
        segment.sequenceNumber = segment.sequenceNumber + Int(seqDelta)
        segment.acknowledgmentNumber = segment.acknowledgmentNumber + Int(ackDelta)
        segment.flags = TCPFlags(rawValue: r.byte())
        segment.window = r.word()
        let optionBytes = r.take(Int(r.byte() % 41))
        segment.options = optionBytes.withUnsafeBytes { (try? TCPOptions.parse($0)) ?? TCPOptions() }
        let payload = r.take(Int(r.word() % 2048))
        let flow = TCPFlow(
            localAddress: base.flow.remoteAddress, localPort: base.flow.remotePort,
            remoteAddress: base.flow.localAddress, remotePort: base.flow.localPort)
        payload.withUnsafeBytes { bytes in
            segment.payload = bytes
            server.handle(segment, flow: flow, now: now)
        }
        pollBoth()
    }

    func serverWrite(_ count: Int) {
        guard let id = serverID else { return }
        let start = serverWrote.count
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: (start + $0) &* 31 &+ 7) }
        let result = bytes.withUnsafeBytes { server.write(id, $0, now: now) }
        if case .bytes(let n) = result { serverWrote.append(contentsOf: bytes[0..<n]) }
        pollBoth()
    }

    func clientReadAll() {
        guard let id = clientID else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let result = buffer.withUnsafeMutableBytes { client.read(id, into: $0, now: now) }
            guard case .bytes(let n) = result, n > 0 else { return }
            require(clientRead + n <= serverWrote.count, "the client reads no more than the server wrote")
            for i in 0..<n {
                require(buffer[i] == serverWrote[clientRead + i], "the client reads what the server wrote")
            }
            clientRead += n
        }
    }

    func serverReadAll() {
        guard let id = serverID else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<64 {
            let result = buffer.withUnsafeMutableBytes { server.read(id, into: $0, now: now) }
            guard case .bytes(let n) = result, n > 0 else { return }
        }
    }

    func checkInvariants() {
        for endpoint in [client, server] {
            endpoint.forEachConnection { _, d, _ in
                require(d.readableBytes >= 0 && d.readableBytes <= configuration.receiveBufferSize, "receive buffer")
                require(
                    d.unacknowledgedBytes >= 0 && d.unacknowledgedBytes <= configuration.sendBufferSize,
                    "send buffer")
                require(d.congestionWindow > 0, "congestion window positive")
                require(d.sendWindow >= 0, "send window not negative")
                require(d.sendMSS > 0, "segment size positive")
            }
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTCP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    var r = Reader(bytes: UnsafeRawBufferPointer(start: data, count: size))
    let session = Session(ipv6: r.byte() & 1 == 1)
    session.exchange(0, count: 4)  // the handshake
    var steps = 0
    while !r.done && steps < 256 {
        steps += 1
        switch r.byte() % 8 {
        case 0, 1: session.inject(&r)
        case 2: session.exchange(r.byte(), count: Int(r.byte() % 8) + 1)
        case 3: session.serverWrite(Int(r.word() % 8192))
        case 4: session.clientReadAll()
        case 5: session.serverReadAll()
        case 6:
            session.now = session.now + .milliseconds(UInt64(r.word()))
            session.pollBoth()
        default:
            switch r.byte() % 4 {
            case 0: if let id = session.serverID { session.server.shutdownWrite(id, now: session.now) }
            case 1: if let id = session.clientID { session.client.close(id, now: session.now) }
            case 2: if let id = session.serverID { session.server.close(id, now: session.now) }
            default: if let id = session.serverID { session.server.abort(id, now: session.now) }
            }
            session.pollBoth()
        }
        session.checkInvariants()
    }
    return 0
}
