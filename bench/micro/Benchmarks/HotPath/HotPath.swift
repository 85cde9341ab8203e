// Micro-benchmarks of the per-packet path: checksum, TCP header parsing, one segment through
// two TCPEndpoints (serialized to wire bytes and parsed back, as the stack does), and the
// timer wheel. Each reports time and mallocs per operation: the hot path must allocate nothing.
import Benchmark
import Glibc
import PacketIO
import Stack
import TCP
import Telemetry
import Wire

/// Two endpoints joined by a one-frame "wire": every segment one sends is written with
/// TCPHeader.write (checksum included) and handed to the other through TCPHeader.parse.
final class EndpointPair {
    let clientAddress = IPv4Address(10, 0, 0, 1)
    let serverAddress = IPv4Address(10, 0, 0, 2)
    let client: TCPEndpoint
    let server: TCPEndpoint
    var clientID: ConnectionID?
    var serverID: ConnectionID?
    let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
    let message = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 16)
    var now = Instant(nanoseconds: 1_000_000_000)
    var segments = 0

    struct Forward: TCPEndpointSink {
        let pair: EndpointPair
        let to: TCPEndpoint
        mutating func send(_ segment: TCPSegment, flow: TCPFlow) {
            let length = TCPHeader.write(
                to: pair.frame, sourcePort: flow.localPort, destinationPort: flow.remotePort,
                sequenceNumber: segment.sequenceNumber.rawValue,
                acknowledgmentNumber: segment.acknowledgmentNumber.rawValue, flags: segment.flags,
                window: segment.window, options: segment.options, payload: segment.payload, segment.payloadTail,
                source: flow.localAddress, destination: flow.remoteAddress)
            guard length > 0,
                let (header, payload) = try? TCPHeader.parse(
                    UnsafeRawBufferPointer(rebasing: pair.frame[0..<length]), source: flow.localAddress,
                    destination: flow.remoteAddress)
            else { fatalError("segment did not survive its own wire format") }
            pair.segments += 1
            to.handle(
                header: header, payload: payload, source: flow.localAddress, destination: flow.remoteAddress,
                now: pair.now)
        }
    }

    init() {
        var configuration = TCPConfiguration()
        // Each step sends at once and is answered at once: no Nagle wait, no delayed-ACK timer.
        configuration.noDelay = true
        configuration.delayedAcknowledgments = false
        client = TCPEndpoint(configuration: configuration, secret: (1, 2))
        server = TCPEndpoint(configuration: configuration, secret: (3, 4))
        message.initializeMemory(as: UInt8.self, repeating: 0x61)
        try! server.listen(port: 80, backlog: 16)
        clientID = try! client.connect(from: clientAddress, to: serverAddress, port: 80, now: now)
        for _ in 0..<4 { exchange() }
        serverID = server.accept(port: 80)
        precondition(serverID != nil, "handshake did not complete")
    }

    deinit {
        frame.deallocate()
        readBuffer.deallocate()
        message.deallocate()
    }

    /// Lets each side send what it has, in turn.
    func exchange() {
        var toServer = Forward(pair: self, to: server)
        client.poll(now: now, into: &toServer)
        var toClient = Forward(pair: self, to: client)
        server.poll(now: now, into: &toClient)
        client.drainEvents { _ in }
        server.drainEvents { _ in }
    }

    /// One 64-byte request: write, one data segment out and in, read, its ACK back.
    func oneSegment() {
        now = now + .microseconds(10)
        guard case .bytes(64) = client.write(clientID!, UnsafeRawBufferPointer(message), now: now) else {
            fatalError("write refused")
        }
        exchange()
        guard case .bytes(64) = server.read(serverID!, into: readBuffer, now: now) else { fatalError("no data") }
        exchange()
    }
}

/// A 40-byte TCP header with timestamps (the common case on a busy connection) and 64 bytes.
func makeSegment() -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 32 + 64)
    var options = TCPOptions()
    options.timestamp = TCPTimestampOption(value: 12345, echoReply: 678)
    let source = IPv4Address(10, 0, 0, 1)
    let destination = IPv4Address(10, 0, 0, 2)
    let payload = [UInt8](repeating: 0x62, count: 64)
    bytes.withUnsafeMutableBytes { buffer in
        payload.withUnsafeBytes { body in
            _ = TCPHeader.write(
                to: buffer, sourcePort: 40000, destinationPort: 80, sequenceNumber: 1, acknowledgmentNumber: 2,
                flags: [.ack, .psh], window: 512, options: options, payload: body, source: source,
                destination: destination)
        }
    }
    return bytes
}

let benchmarks = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(1),
        maxIterations: 1_000_000)

    for size in [64, 1460] {
        let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        Benchmark("Internet checksum \(size) bytes") { benchmark in
            data.withUnsafeBytes { bytes in
                for _ in benchmark.scaledIterations {
                    var sum = InternetChecksum()
                    sum.add(bytes)
                    blackHole(sum.value)
                }
            }
        }
    }

    let segment = makeSegment()
    let source = IPv4Address(10, 0, 0, 1)
    let destination = IPv4Address(10, 0, 0, 2)
    Benchmark("TCP header parse with checksum (32-byte header, 64 bytes)") { benchmark in
        segment.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations {
                blackHole(try! TCPHeader.parse(bytes, source: source, destination: destination).header.sequenceNumber)
            }
        }
    }
    Benchmark("TCP header parse without checksum") { benchmark in
        segment.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations {
                blackHole(
                    try! TCPHeader.parse(bytes, source: source, destination: destination, verifyChecksum: false)
                        .header.sequenceNumber)
            }
        }
    }

    let pair = EndpointPair()
    Benchmark("TCPEndpoint 64-byte segment out and in, ACK back (write, 2 segments, read)") { benchmark in
        for _ in benchmark.scaledIterations { pair.oneSegment() }
        blackHole(pair.segments)
    }

    Benchmark("TimerWheel schedule then expire, 1,000 timers") { benchmark in
        var wheel = TimerWheel(start: Instant(nanoseconds: 0))
        var now = Instant(nanoseconds: 0)
        for _ in benchmark.scaledIterations {
            for id in Int32(0)..<1000 {
                wheel.schedule(id, at: now + .milliseconds(UInt64(1 + id % 200)))
            }
            now = now + .milliseconds(201)
            var fired = 0
            wheel.expire(now: now) { _ in fired += 1 }
            precondition(fired == 1000)
        }
    }
    Benchmark("TimerWheel re-arm (schedule replacing a timer)") { benchmark in
        var wheel = TimerWheel(start: Instant(nanoseconds: 0))
        var deadline = Instant(nanoseconds: 200_000_000)
        for id in Int32(0)..<1000 { wheel.schedule(id, at: deadline) }
        var id: Int32 = 0
        for _ in benchmark.scaledIterations {
            deadline = deadline + .microseconds(1)
            wheel.schedule(id, at: deadline)
            id = (id + 1) % 1000
        }
        blackHole(wheel.count)
    }
    // What observability adds (docs/OBSERVABILITY.md): a counter publication runs at most every
    // 20 ms, a socket table every 200 ms, and each frame meets one nil check when capture is off.
    let link = MemoryLink()
    let stack = NetworkStack(
        io: link.a, configuration: StackConfiguration(address: IPv4Address(10, 0, 0, 2), prefixLength: 24),
        secret: (1, 2))
    let listener = try! stack.socket()
    try! stack.bind(listener, address: IPv4Address(10, 0, 0, 2), port: 80)
    try! stack.listen(listener, backlog: 128)
    let region = try! StatsRegion(
        directory: "/tmp", pid: getpid(),
        description: StatsProcessDescription(
            command: "micro", interface: "memory", backend: "memory", host: "bench", address: "10.0.0.2/24"),
        counterNames: stack.counterNames, instances: 1)
    stack.publishStatistics(into: region.instance(0))
    Benchmark("Statistics region: counters published (every counter of a NetworkStack)") { benchmark in
        for _ in benchmark.scaledIterations { stack.publishStatisticsNow(sockets: false) }
    }
    Benchmark("Statistics region: counters and socket table published (1 listener)") { benchmark in
        for _ in benchmark.scaledIterations { stack.publishStatisticsNow(sockets: true) }
        region.remove()
    }
    let ring = CaptureRing(capacity: 1 << 20)
    let frame = [UInt8](repeating: 0x45, count: 64)
    Benchmark("Capture ring: a 64-byte frame recorded and drained") { benchmark in
        frame.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations {
                ring.record(bytes, direction: .inbound, timestamp: 1)
                ring.drain { blackHole($0.bytes.count) }
            }
        }
    }
}
