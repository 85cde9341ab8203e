import PacketIO
import Stack
import TCP
import Testing
import Wire

/// A clock tests move by hand.
final class FakeClock {
    var now = Instant(nanoseconds: 1_000_000_000)
}

let addressA = IPv4Address(10, 0, 0, 1)
let addressB = IPv4Address(10, 0, 0, 2)

/// Two stacks on one in-memory link, 10.0.0.1/24 (a) and 10.0.0.2/24 (b), with a driver loop
/// that runs both and moves simulated time to the next timer when the link is quiet.
final class TwoHosts {
    let clock = FakeClock()
    let link = MemoryLink()
    let a: NetworkStack<MemoryPort>
    let b: NetworkStack<MemoryPort>
    /// Frames each side put on the link, as copies.
    var sentByA: [[UInt8]] = []
    var sentByB: [[UInt8]] = []

    init(
        tcp: TCPConfiguration = TCPConfiguration(), gatewayA: IPv4Address? = nil,
        configure: (inout StackConfiguration) -> Void = { _ in }
    ) {
        var configA = StackConfiguration(address: addressA, prefixLength: 24, gateway: gatewayA, tcp: tcp)
        var configB = StackConfiguration(address: addressB, prefixLength: 24, tcp: tcp)
        configure(&configA)
        configure(&configB)
        let clock = clock
        a = NetworkStack(io: link.a, configuration: configA, secret: (1, 2), clock: { clock.now })
        b = NetworkStack(io: link.b, configuration: configB, secret: (3, 4), clock: { clock.now })
        a.log = { _ in }
        b.log = { _ in }
        link.a.onSend = { [unowned self] frame in sentByA.append(Array(frame)) }
        link.b.onSend = { [unowned self] frame in sentByB.append(Array(frame)) }
        a.waitHook = { [unowned self] wake in idle(driving: b, until: wake) }
        b.waitHook = { [unowned self] wake in idle(driving: a, until: wake) }
    }

    /// What a blocked stack does instead of sleeping: run the peer, and move time when quiet.
    func idle(driving peer: NetworkStack<MemoryPort>, until wake: Instant) {
        peer.poll()
        if link.a.pending == 0 && link.b.pending == 0 {
            advance(toward: min(wake, peer.nextDeadline))
        }
    }

    func advance(toward target: Instant) {
        if target == .never {
            clock.now = clock.now + .milliseconds(10)
        } else if target > clock.now {
            clock.now = target
        }
    }

    /// One driver step: both stacks poll; a quiet link lets time jump to the next timer
    /// (at most `maximumJump` ahead).
    func step(maximumJump: Interval = .seconds(1)) {
        a.poll()
        b.poll()
        if link.a.pending == 0 && link.b.pending == 0 {
            let next = min(a.nextDeadline, b.nextDeadline)
            advance(toward: min(next, clock.now + maximumJump))
        }
    }

    /// Steps until `condition` holds; false if it never does within `limit` steps.
    @discardableResult
    func run(limit: Int = 200_000, until condition: () -> Bool) -> Bool {
        for _ in 0..<limit {
            if condition() { return true }
            step()
        }
        return condition()
    }

    /// Runs the stacks for `interval` of simulated time.
    func run(for interval: Interval) {
        let end = clock.now + interval
        while clock.now < end {
            a.poll()
            b.poll()
            if link.a.pending == 0 && link.b.pending == 0 {
                let next = min(min(a.nextDeadline, b.nextDeadline), end)
                clock.now = next > clock.now ? next : clock.now + .milliseconds(1)
            }
        }
        a.poll()
        b.poll()
    }

    /// A listener on b:port and a connected pair (client on a, server on b), non-blocking.
    func connectedPair(port: UInt16 = 80) throws -> (client: Int32, server: Int32, listener: Int32) {
        let listener = try b.socket()
        try b.bind(listener, address: .any, port: port)
        try b.listen(listener, backlog: 16)
        try b.setNonBlocking(listener)
        let client = try a.socket()
        try a.setNonBlocking(client)
        #expect(throws: Errno.EINPROGRESS) { try self.a.connect(client, address: addressB, port: port) }
        var server: Int32 = -1
        let done = run {
            if server < 0, let accepted = try? b.accept(listener) { server = accepted.socket }
            return server >= 0 && a.tcpState(client) == .established
        }
        try #require(done)
        try b.setNonBlocking(server)
        return (client, server, listener)
    }
}

/// Bytes of a deterministic pattern.
func pattern(_ count: Int, seed: UInt8) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ ($0 >> 8)) }
}

/// Parsed pieces of an IPv4 frame a stack sent, for assertions.
struct SentFrame {
    var ethernet: EthernetHeader
    var ip: IPv4Header?
    var tcp: TCPHeader?
    var arp: ARPPacket?
    var payloadLength = 0

    init?(_ bytes: [UInt8]) {
        guard
            let parsed: SentFrame = bytes.withUnsafeBytes({ raw in
                guard let (eth, payload) = try? EthernetHeader.parse(raw) else { return nil }
                var frame = SentFrame(ethernet: eth)
                if eth.etherType == EtherType.arp {
                    frame.arp = try? ARPPacket.parse(payload)
                } else if let (ip, ipPayload) = try? IPv4Header.parse(payload) {
                    frame.ip = ip
                    if ip.protocol == IPProtocol.tcp,
                        let (tcp, data) = try? TCPHeader.parse(
                            ipPayload, source: ip.source, destination: ip.destination)
                    {
                        frame.tcp = tcp
                        frame.payloadLength = data.count
                    }
                }
                return frame
            })
        else { return nil }
        self = parsed
    }

    init(ethernet: EthernetHeader) { self.ethernet = ethernet }
}
