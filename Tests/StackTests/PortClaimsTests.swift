import PacketIO
import Stack
import TCP
import Testing
import Wire

/// A shared Ethernet segment: every frame a port flushes reaches every other port, as on a
/// hub (each stack filters by MAC itself). Test-only; it allocates freely.
final class Hub {
    var ports: [HubPort] = []

    func port(mac: MACAddress) -> HubPort {
        let port = HubPort(hub: self, macAddress: mac)
        ports.append(port)
        return port
    }
}

final class HubPort: PacketIO {
    unowned let hub: Hub
    let macAddress: MACAddress
    let mtu = 1500
    var waitDescriptor: Int32 { -1 }
    var statistics = PacketIOStatistics()
    var inbox: [[UInt8]] = []
    var outgoing: [[UInt8]] = []
    /// Every frame this port sent, in order.
    var sent: [[UInt8]] = []
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1514, alignment: 16)

    init(hub: Hub, macAddress: MACAddress) {
        self.hub = hub
        self.macAddress = macAddress
    }

    deinit { buffer.deallocate() }

    func receive(limit: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> Int {
        let n = min(limit, inbox.count)
        let taken = inbox.prefix(n)
        inbox.removeFirst(n)
        for frame in taken { frame.withUnsafeBytes { body($0) } }
        return n
    }

    func nextTransmitBuffer() -> UnsafeMutableRawBufferPointer? { buffer }

    func commitTransmit(length: Int) { outgoing.append(Array(buffer[0..<length])) }

    func flush() {
        for frame in outgoing {
            sent.append(frame)
            for port in hub.ports where port !== self { port.inbox.append(frame) }
        }
        outgoing.removeAll()
    }
}

let sharedMAC = MACAddress(0x02, 0, 0, 0, 0, 0x0A)
let peerMAC = MACAddress(0x02, 0, 0, 0, 0, 0x0B)

/// Two processes (fake pids 101 and 102) with one MAC and address 10.0.0.1, sharing one
/// PortClaims table, and a peer 10.0.0.2 on the same segment.
final class ForkedProcesses {
    let clock = FakeClock()
    let hub = Hub()
    let memory: UnsafeMutableRawPointer
    var alive: Set<Int32> = [101, 102]
    let first: NetworkStack<HubPort>
    let second: NetworkStack<HubPort>
    let peer: NetworkStack<HubPort>
    /// Processes that still run (a dead one no longer polls).
    var running: [Bool] = [true, true]

    init() throws {
        memory = try #require(PortClaims.mapShared())
        let clock = clock
        let config = StackConfiguration(address: addressA, prefixLength: 24)
        first = NetworkStack(io: hub.port(mac: sharedMAC), configuration: config, secret: (1, 2), clock: { clock.now })
        second = NetworkStack(
            io: hub.port(mac: sharedMAC), configuration: config, secret: (5, 6), clock: { clock.now })
        peer = NetworkStack(
            io: hub.port(mac: peerMAC), configuration: StackConfiguration(address: addressB, prefixLength: 24),
            secret: (3, 4), clock: { clock.now })
        for stack in [first, second, peer] { stack.log = { _ in } }
        first.portClaims = PortClaims(memory: memory, pid: 101) { [unowned self] in alive.contains($0) }
        second.portClaims = PortClaims(memory: memory, pid: 102) { [unowned self] in alive.contains($0) }
        first.portClaims!.activate()
        second.portClaims!.activate()
    }

    func step() {
        if running[0] { first.poll() }
        if running[1] { second.poll() }
        peer.poll()
        // A dead process's inbox fills up unread; only live ones keep the link busy.
        let busy = hub.ports.indices.contains { $0 == 2 || running[$0] ? !hub.ports[$0].inbox.isEmpty : false }
        if !busy {
            var next = peer.nextDeadline
            if running[0] { next = min(next, first.nextDeadline) }
            if running[1] { next = min(next, second.nextDeadline) }
            let target = min(next, clock.now + .seconds(1))
            clock.now = target > clock.now ? target : clock.now + .milliseconds(10)
        }
    }

    @discardableResult
    func run(limit: Int = 20_000, until condition: () -> Bool) -> Bool {
        for _ in 0..<limit {
            if condition() { return true }
            step()
        }
        return condition()
    }

    func run(for interval: Interval) {
        let end = clock.now + interval
        while clock.now < end { step() }
    }

    /// Frames either process sent that match `predicate`.
    func sentByProcesses(_ predicate: (SentFrame) -> Bool) -> Int {
        hub.ports[0...1].reduce(0) { total, port in
            total + port.sent.compactMap { SentFrame($0) }.filter(predicate).count
        }
    }

    func resets() -> Int { sentByProcesses { $0.tcp?.flags.contains(.rst) == true } }

    /// A non-blocking connect from the peer.
    func peerConnect(port: UInt16) throws -> Int32 {
        let client = try peer.socket()
        try peer.setNonBlocking(client)
        #expect(throws: Errno.EINPROGRESS) { try self.peer.connect(client, address: addressA, port: port) }
        return client
    }

    func listen(_ stack: NetworkStack<HubPort>, port: UInt16) throws -> Int32 {
        let listener = try stack.socket()
        try stack.bind(listener, address: .any, port: port)
        try stack.listen(listener, backlog: 8)
        try stack.setNonBlocking(listener)
        return listener
    }
}

@Suite struct PortClaimsTests {
    @Test func tableClaimsAndReleases() throws {
        let memory = try #require(PortClaims.mapShared())
        var alive: Set<Int32> = [7, 8]
        let a = PortClaims(memory: memory, pid: 7) { alive.contains($0) }
        let b = PortClaims(memory: memory, pid: 8) { alive.contains($0) }
        a.activate()
        #expect(a.isPrimary && !a.isShared)
        a.activate()
        #expect(!a.isShared)
        b.activate()
        #expect(a.isShared && b.isShared && !b.isPrimary)
        #expect(a.claim(80) && a.owner(of: 80) == 7)
        #expect(!b.claim(80))
        #expect(b.claim(80, replacing: 7) && b.owner(of: 80) == 8)
        a.release(80)
        #expect(b.owner(of: 80) == 8)
        b.release(80)
        #expect(a.owner(of: 80) == 0)
        #expect(a.claim(81))
        alive.remove(7)
        #expect(b.claim(81) && b.takePrimaryIfVacant() && b.isPrimary)
    }

    @Test func onlyTheOwnerAcceptsAndTheOtherStaysSilent() throws {
        let p = try ForkedProcesses()
        let l1 = try p.listen(p.first, port: 80)
        let l2 = try p.listen(p.second, port: 80)
        p.first.markInterested(l1)
        p.second.markInterested(l2)
        #expect(p.first.portClaims!.owner(of: 80) == 101)
        let client = try p.peerConnect(port: 80)
        var accepted: Int32 = -1
        #expect(
            p.run {
                if accepted < 0, let a = try? p.first.accept(l1) {
                    accepted = a.socket
                    try? p.first.setNonBlocking(accepted)
                }
                return accepted >= 0 && p.peer.tcpState(client) == .established
            })
        #expect(throws: Errno.EAGAIN) { _ = try p.second.accept(l2) }
        let message = pattern(5000, seed: 3)
        #expect(try message.withUnsafeBytes { try p.peer.write(client, $0) } == message.count)
        var got: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        #expect(
            p.run {
                if let n = try? buffer.withUnsafeMutableBytes({ try p.first.read(accepted, into: $0) }), n > 0 {
                    got += buffer[0..<n]
                }
                return got.count == message.count
            })
        #expect(got == message)
        #expect(p.resets() == 0)
        #expect(p.second.statistics.segmentsForOtherProcesses > 0)
        #expect(p.first.statistics.segmentsForOtherProcesses == 0)
        #expect(p.second.endpoint.connectionCount == 0)
        // ARP: the peer's request was answered once, by the primary.
        #expect(p.sentByProcesses { $0.arp?.operation == ARPPacket.reply } == 1)
        #expect(p.second.statistics.leftToPrimary >= 1)
        #expect(p.second.statistics.summary.contains("other_process_segments="))
    }

    @Test func aListenerTakesOverFromADeadOwnerOnlyWhenInterested() throws {
        let p = try ForkedProcesses()
        _ = try p.listen(p.first, port: 80)
        let l2 = try p.listen(p.second, port: 80)
        #expect(p.first.portClaims!.owner(of: 80) == 101)
        // The owner dies; the second process is not waiting on its listener yet.
        p.alive.remove(101)
        p.running[0] = false
        let client = try p.peerConnect(port: 80)
        p.run(for: .seconds(2))
        #expect(p.peer.tcpState(client) == .synSent)
        #expect(p.second.endpoint.connectionCount == 0)
        #expect(p.second.statistics.segmentsForOtherProcesses >= 2)
        #expect(p.resets() == 0)
        // Once the application waits on it, the next SYN (a retransmission) takes the port.
        p.second.markInterested(l2)
        var accepted: Int32 = -1
        #expect(
            p.run {
                if accepted < 0, let a = try? p.second.accept(l2) { accepted = a.socket }
                return accepted >= 0 && p.peer.tcpState(client) == .established
            })
        #expect(p.second.portClaims!.owner(of: 80) == 102)
        #expect(p.second.statistics.portTakeovers == 1)
        // Closing the listener gives the port back.
        try p.second.close(l2)
        #expect(p.second.portClaims!.owner(of: 80) == 0)
    }

    @Test func unknownFlowsGetExactlyOneReset() throws {
        let p = try ForkedProcesses()
        let client = try p.peerConnect(port: 9999)
        var refused = false
        #expect(
            p.run {
                var error: Int32 = 0
                if let e = try? p.peer.getsockopt(
                    client, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_ERROR)
                {
                    error = e
                }
                if error == Errno.ECONNREFUSED.rawValue { refused = true }
                return refused
            })
        p.run(for: .milliseconds(100))
        #expect(p.resets() == 1)
        #expect(p.first.endpoint.statistics.resetsSentForUnknownFlows == 1)
        #expect(p.second.statistics.segmentsForOtherProcesses >= 1)
        // A port the second process owns (an ephemeral port of its own) is reset by it alone.
        let owned = try p.second.socket()
        try p.second.bind(owned, address: .any, port: 0)
        let port = try p.second.getsockname(owned).port
        #expect(p.second.portClaims!.owner(of: port) == 102)
        let stray = try p.peerConnect(port: port)
        #expect(p.run { p.peer.tcpState(stray) == nil || p.peer.tcpState(stray) == .closed })
        p.run(for: .milliseconds(100))
        #expect(p.resets() == 2)
        #expect(p.second.endpoint.statistics.resetsSentForUnknownFlows == 1)
    }

    @Test func echoRequestsAreAnsweredOnce() throws {
        let p = try ForkedProcesses()
        let data: [UInt8] = Array("ping".utf8)
        var icmp = [UInt8](repeating: 0, count: 8 + data.count)
        data.withUnsafeBytes { payload in
            icmp.withUnsafeMutableBytes { raw in
                _ = ICMPEcho.write(to: raw, type: ICMPType.echoRequest, identifier: 1, sequence: 1, payload: payload)
            }
        }
        var frame = [UInt8](repeating: 0, count: 34 + icmp.count)
        frame.withUnsafeMutableBytes { raw in
            EthernetHeader(destination: sharedMAC, source: peerMAC, etherType: EtherType.ipv4).write(to: raw)
            IPv4Header.write(
                to: UnsafeMutableRawBufferPointer(rebasing: raw[14...]), source: addressB, destination: addressA,
                protocol: IPProtocol.icmp, payloadLength: icmp.count, identification: 1)
            UnsafeMutableRawBufferPointer(rebasing: raw[34...]).copyBytes(from: icmp)
        }
        p.hub.ports[0].inbox.append(frame)
        p.hub.ports[1].inbox.append(frame)
        p.step()
        #expect(p.first.statistics.icmpEchoRepliesSent + p.second.statistics.icmpEchoRepliesSent == 1)
        #expect(p.first.statistics.icmpEchoRepliesSent == 1)
        #expect(p.second.statistics.leftToPrimary == 1)
    }

    @Test func ephemeralPortsNeverCollideAcrossProcesses() throws {
        let p = try ForkedProcesses()
        let listener = try p.peer.socket()
        try p.peer.bind(listener, address: .any, port: 80)
        try p.peer.listen(listener, backlog: 64)
        var ports: [Int32: [UInt16]] = [101: [], 102: []]
        var sockets: [(NetworkStack<HubPort>, Int32)] = []
        for round in 0..<10 {
            for stack in [p.first, p.second] {
                let s = try stack.socket()
                try stack.setNonBlocking(s)
                #expect(throws: Errno.EINPROGRESS) { try stack.connect(s, address: addressB, port: 80) }
                ports[stack.portClaims!.pid]!.append(try stack.getsockname(s).port)
                sockets.append((stack, s))
            }
            // bind(port 0) takes claims too.
            if round == 0 {
                for stack in [p.first, p.second] {
                    let s = try stack.socket()
                    try stack.bind(s, address: .any, port: 0)
                    ports[stack.portClaims!.pid]!.append(try stack.getsockname(s).port)
                }
            }
        }
        #expect(Set(ports[101]!).isDisjoint(with: ports[102]!))
        for (pid, list) in ports {
            for port in list { #expect(p.first.portClaims!.owner(of: port) == pid) }
        }
        #expect(p.run { sockets.allSatisfy { $0.0.tcpState($0.1) == .established } })
        #expect(p.resets() == 0)
        #expect(p.peer.endpoint.connectionCount == 20)
    }
}
