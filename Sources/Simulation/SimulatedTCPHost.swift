import TCP
import Wire

/// A host in the simulator: IPv4 or IPv6 (by its address) + TCP over a `TCPEndpoint`, with the real Wire parser and
/// builder on both paths, so checksums, option encoding and corruption detection are the
/// ones the stack uses. An optional application runs at every wake-up.
public final class SimulatedTCPHost: SimulatedNode {
    public let address: IPAddress
    public let endpoint: TCPEndpoint
    /// Packets refused before reaching TCP, by reason.
    public private(set) var refused: [WireError: Int] = [:]
    public private(set) var packetsReceived = 0
    public private(set) var packetsSent = 0
    public private(set) var notForThisHost = 0
    public private(set) var notTCP = 0
    /// Runs before each output round; it may read, write, connect and close.
    public var application: ((SimulatedTCPHost, Instant) -> Void)?
    /// An extra wake-up the application asks for (e.g. to start work at a given time).
    public var applicationWakeup: Instant?
    /// Sees every TCP segment this host parses (`outgoing` false) or builds (true); for debugging.
    public var trace:
        ((_ now: Instant, _ outgoing: Bool, _ flow: TCPFlow, _ header: TCPHeader, _ payloadLength: Int) -> Void)?
    private var clock = Instant.zero
    private let scratch: UnsafeMutableRawBufferPointer
    private var identification: UInt16 = 0

    public init(address: IPAddress, configuration: TCPConfiguration = TCPConfiguration(), secret: UInt64 = 1) {
        self.address = address
        endpoint = TCPEndpoint(configuration: configuration, secret: (secret, ~secret &* 31))
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536 + 40, alignment: 8)
    }

    public convenience init(
        address: IPv4Address, configuration: TCPConfiguration = TCPConfiguration(), secret: UInt64 = 1
    ) {
        self.init(address: IPAddress(address), configuration: configuration, secret: secret)
    }

    deinit { scratch.deallocate() }

    public var refusedTotal: Int { refused.values.reduce(0, +) }

    public func receive(packet: UnsafeRawBufferPointer, now: Instant) {
        packetsReceived += 1
        do {
            let source: IPAddress
            let destination: IPAddress
            let proto: UInt8
            let ipPayload: UnsafeRawBufferPointer
            if address.isIPv4 {
                let ip: IPv4Header
                (ip, ipPayload) = try IPv4Header.parse(packet)
                (source, destination, proto) = (IPAddress(ip.source), IPAddress(ip.destination), ip.protocol)
            } else {
                let ip: IPv6Header
                (ip, ipPayload) = try IPv6Header.parse(packet)
                (source, destination, proto) = (ip.source, ip.destination, ip.upperProtocol)
            }
            guard destination == address else {
                notForThisHost += 1
                return
            }
            guard proto == IPProtocol.tcp else {
                notTCP += 1
                return
            }
            let (tcp, payload) = try TCPHeader.parse(ipPayload, source: source, destination: destination)
            if let trace {
                let flow = TCPFlow(
                    localAddress: destination, localPort: tcp.destinationPort, remoteAddress: source,
                    remotePort: tcp.sourcePort)
                trace(now, false, flow, tcp, payload.count)
            }
            endpoint.handle(header: tcp, payload: payload, source: source, destination: destination, now: now)
        } catch {
            refused[error, default: 0] += 1
        }
    }

    public func transmit(now: Instant, send: (UnsafeRawBufferPointer) -> Void) {
        clock = now
        if let wake = applicationWakeup, wake <= now { applicationWakeup = nil }
        withoutActuallyEscaping(send) { send in
            var sink = PacketSink(host: self, send: send)
            // Let the application react to what output produced (e.g. a connection that
            // just closed) within the same instant, a bounded number of times.
            for _ in 0..<4 {
                application?(self, now)
                endpoint.poll(now: now, into: &sink)
                var changed = false
                endpoint.drainEvents { _ in changed = true }
                if !changed && endpoint.nextDeadline > now { break }
            }
        }
    }

    public var nextWakeup: Instant? {
        var next = endpoint.nextDeadline
        if let wake = applicationWakeup { next = min(next, wake) }
        return next == .never ? nil : next
    }

    struct PacketSink: TCPEndpointSink {
        let host: SimulatedTCPHost
        let send: (UnsafeRawBufferPointer) -> Void

        mutating func send(_ segment: TCPSegment, flow: TCPFlow) {
            host.serialize(segment, flow: flow, send: send)
        }
    }

    func serialize(_ segment: TCPSegment, flow: TCPFlow, send: (UnsafeRawBufferPointer) -> Void) {
        let ipLength = flow.isIPv4 ? IPv4Header.minimumLength : IPv6Header.length
        let tcpArea = UnsafeMutableRawBufferPointer(rebasing: scratch[ipLength...])
        let length = TCPHeader.write(
            to: tcpArea, sourcePort: flow.localPort, destinationPort: flow.remotePort,
            sequenceNumber: segment.sequenceNumber.rawValue,
            acknowledgmentNumber: segment.acknowledgmentNumber.rawValue, flags: segment.flags,
            window: segment.window, options: segment.options, payload: segment.payload, segment.payloadTail,
            source: flow.localAddress, destination: flow.remoteAddress)
        guard length > 0 else { return }
        if let trace,
            let parsed = try? TCPHeader.parse(
                UnsafeRawBufferPointer(rebasing: tcpArea[0..<length]), source: flow.localAddress,
                destination: flow.remoteAddress)
        {
            trace(clock, true, flow, parsed.header, parsed.payload.count)
        }
        if let source = flow.localAddress.ipv4, let destination = flow.remoteAddress.ipv4 {
            identification &+= 1
            _ = IPv4Header.write(
                to: scratch, source: source, destination: destination, protocol: IPProtocol.tcp,
                payloadLength: length, identification: identification)
        } else {
            _ = IPv6Header.write(
                to: scratch, source: flow.localAddress, destination: flow.remoteAddress, nextHeader: IPProtocol.tcp,
                payloadLength: length)
        }
        packetsSent += 1
        send(UnsafeRawBufferPointer(rebasing: scratch[0..<(ipLength + length)]))
    }
}
