import PacketIO
import Stack
import TCP
import Wire

// libFuzzer target: a whole NetworkStack (IPv4 10.0.0.1/24 and IPv6 fd00::1/64) on an
// in-memory link, fed frames built from the fuzzer's bytes: random ones, and ones around
// valid templates (ARP, IPv4 with options, ICMP, TCP to a listener and to live connections,
// IPv6 with extension headers, ICMPv6 echo, neighbour solicitations, advertisements and router
// advertisements), while time passes and the application reads, writes, accepts, connects and
// closes. The harness plays the peer 10.0.0.2 / fd00::2 of two live connections it opened
// itself. After every step:
//   - every frame the stack sent parses back with the Wire parsers, checksums verified, from
//     our MAC and our addresses;
//   - the counters (the stack's, the link's, the TCP endpoint's) never go down;
//   - lent connection buffers and pending ARP frames stay within the pools;
//   - a live connection's bytes reach the peer exactly as the application wrote them (the
//     fuzzer's frames go toward the stack, so they may end a connection, never change what
//     it sends).
// At the end every socket is closed and time runs on: every connection must go, and with
// them every buffer back to the pool and every pending frame.



final class FakeClock {
    var now = Instant(nanoseconds: 1_000_000_000)
}

// MARK: Frame building

extension Array where Element == UInt8 {
    mutating func put16(_ v: UInt16) { append(contentsOf: [UInt8(v >> 8), UInt8(v & 0xFF)]) }
    mutating func put32(_ v: UInt32) {
        put16(UInt16(v >> 16))
        put16(UInt16(v & 0xFFFF))
    }
    mutating func put(_ mac: MACAddress) {
        for shift in stride(from: 40, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: mac.rawValue >> shift)) }
    }
    mutating func put(_ address: IPAddress) {
        for word in [address.high, address.low] {
            for shift in stride(from: 56, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: word >> shift)) }
        }
    }
    mutating func set16(_ v: UInt16, at offset: Int) {
        self[offset] = UInt8(v >> 8)
        self[offset + 1] = UInt8(v & 0xFF)
    }
}

func checksum(_ bytes: [UInt8], pseudo: InternetChecksum = InternetChecksum()) -> UInt16 {
    var sum = pseudo
    bytes.withUnsafeBytes { sum.add($0) }
    return sum.value
}

func ethernet(to destination: MACAddress, from source: MACAddress, type: UInt16, _ payload: [UInt8]) -> [UInt8] {
    var frame: [UInt8] = []
    frame.put(destination)
    frame.put(source)
    frame.put16(type)
    frame += payload
    return frame
}

/// An IPv4 packet: header options, flags and fragment offset, TTL, a total length off by
/// `lengthDelta`, and a checksum that is right unless `badChecksum`.
func ipv4(
    from source: IPv4Address, to destination: IPv4Address, protocol proto: UInt8, _ payload: [UInt8],
    options: [UInt8] = [], flagsOffset: UInt16 = 0x4000, ttl: UInt8 = 64, lengthDelta: Int = 0,
    badChecksum: Bool = false
) -> [UInt8] {
    let optionBytes = options + [UInt8](repeating: 0, count: (4 - options.count % 4) % 4)
    let headerLength = 20 + min(optionBytes.count, 40)
    var header: [UInt8] = [0x40 | UInt8(headerLength / 4), 0]
    header.put16(UInt16(truncatingIfNeeded: max(0, headerLength + payload.count + lengthDelta)))
    header.put16(0x1234)
    header.put16(flagsOffset)
    header += [ttl, proto, 0, 0]
    header.put32(source.rawValue)
    header.put32(destination.rawValue)
    header += optionBytes.prefix(40)
    header.set16(checksum(header) ^ (badChecksum ? 0x0101 : 0), at: 10)
    return header + payload
}

/// An IPv6 packet whose payload starts with `extensions` (already chained to `nextHeader`).
func ipv6(
    from source: IPAddress, to destination: IPAddress, nextHeader: UInt8, _ payload: [UInt8], hopLimit: UInt8 = 64,
    lengthDelta: Int = 0
) -> [UInt8] {
    var header: [UInt8] = [0x60, 0, 0, 0]
    header.put16(UInt16(truncatingIfNeeded: max(0, payload.count + lengthDelta)))
    header += [nextHeader, hopLimit]
    header.put(source)
    header.put(destination)
    return header + payload
}

func pseudoHeader(_ source: IPAddress, _ destination: IPAddress, _ proto: UInt8, _ length: Int) -> InternetChecksum {
    InternetChecksum.pseudoHeader(source: source, destination: destination, protocol: proto, length: length)
}

struct Segment {
    var sourcePort: UInt16
    var destinationPort: UInt16
    var sequence: UInt32
    var acknowledgment: UInt32
    var flags: TCPFlags
    var window: UInt16 = 65535
    var options: [UInt8] = []
    var payload: [UInt8] = []
    var badChecksum = false
    var urgent: UInt16 = 0

    func bytes(from source: IPAddress, to destination: IPAddress) -> [UInt8] {
        let optionBytes = Array((options + [UInt8](repeating: 1, count: (4 - options.count % 4) % 4)).prefix(40))
        var segment: [UInt8] = []
        segment.put16(sourcePort)
        segment.put16(destinationPort)
        segment.put32(sequence)
        segment.put32(acknowledgment)
        segment.put16(UInt16((20 + optionBytes.count) / 4) << 12 | UInt16(flags.rawValue))
        segment.put16(window)
        segment.put16(0)
        segment.put16(urgent)
        segment += optionBytes + payload
        let sum = checksum(segment, pseudo: pseudoHeader(source, destination, IPProtocol.tcp, segment.count))
        segment.set16(sum ^ (badChecksum ? 0x8000 : 0), at: 16)
        return segment
    }
}

func icmpv6(_ type: UInt8, code: UInt8 = 0, _ body: [UInt8], from source: IPAddress, to destination: IPAddress)
    -> [UInt8]
{
    var message: [UInt8] = [type, code, 0, 0] + body
    message.set16(checksum(message, pseudo: pseudoHeader(source, destination, IPProtocol.icmpv6, message.count)), at: 2)
    return message
}

/// A neighbour discovery link-layer address option (source 1, target 2).
func linkLayerOption(_ type: UInt8, _ mac: MACAddress) -> [UInt8] {
    var option: [UInt8] = [type, 1]
    option.put(mac)
    return option
}

// MARK: The peer

/// A connection the harness opened as the peer: what the stack's application wrote into it,
/// and how much of that reached the peer in order.
final class Live {
    let peer: IPAddress
    let stack: IPAddress
    let peerPort: UInt16
    let stackPort: UInt16
    let timestamps: Bool
    var socket: Int32 = -1
    /// The stack's ISN is known (its SYN-ACK was seen); the next byte the peer expects.
    var synchronized = false
    var receiveNext: UInt32 = 0
    /// The peer's next sequence number, and the stack's last acknowledgment and window.
    var sendNext: UInt32
    var stackAcknowledged: UInt32
    var stackWindow = 0
    var stackWindowShift = 0
    var lastTimestamp: UInt32 = 0
    /// Still checked: not reset, not closed by the application (a later connection on the
    /// same ports would be another stream).
    var checked = true
    var finReceived = false
    var wrote: [UInt8] = []
    var received = 0
    let seed: UInt8

    init(peer: IPAddress, stack: IPAddress, peerPort: UInt16, stackPort: UInt16, timestamps: Bool, seed: UInt8) {
        self.peer = peer
        self.stack = stack
        self.peerPort = peerPort
        self.stackPort = stackPort
        self.timestamps = timestamps
        self.seed = seed
        sendNext = 0x1000_0000 &* UInt32(seed)
        stackAcknowledged = sendNext
    }

    func options(_ syn: Bool, now: Instant) -> [UInt8] {
        var options: [UInt8] = []
        if syn { options += [2, 4, 0x04, 0xB0, 4, 2] }  // MSS 1200, SACK permitted
        if timestamps {
            options += [1, 1, 8, 10]
            options.put32(now.milliseconds32)
            options.put32(lastTimestamp)
            if syn { options += [1, 3, 3, 2] }  // window scale 2
        }
        return options
    }

    /// Takes one segment the stack sent on this connection.
    func receive(_ tcp: TCPHeader, _ payload: UnsafeRawBufferPointer) {
        if tcp.flags.contains(.rst) { checked = false }
        if tcp.flags.contains(.ack) {
            stackAcknowledged = tcp.acknowledgmentNumber
            stackWindow = Int(tcp.window) << (tcp.flags.contains(.syn) ? 0 : stackWindowShift)
        }
        if let ts = tcp.options.timestamp { lastTimestamp = ts.value }
        if tcp.flags.contains(.syn) {
            if !synchronized {
                synchronized = true
                receiveNext = tcp.sequenceNumber &+ 1
                if timestamps, tcp.options.windowScale != nil { stackWindowShift = Int(tcp.options.windowScale!) }
            }
            return
        }
        guard synchronized, checked else { return }
        // Where the segment starts in the stream of data (the FIN, once held, is after it).
        let dataNext = receiveNext &- (finReceived ? 1 : 0)
        let offset = Int(Int32(bitPattern: tcp.sequenceNumber &- dataNext))
        guard offset <= 0 else { return }  // beyond what the peer holds: dropped, as if lost
        // A retransmission carries what was sent at those positions before.
        for k in 0..<payload.count {
            let position = received + offset + k
            require(position >= 0, "no data before the stream's first byte")
            require(position < wrote.count, "the stack sends no more than was written")
            require(payload[k] == wrote[position], "the peer receives what the application wrote")
        }
        let fresh = payload.count + offset
        if fresh > 0 {
            require(!finReceived, "no data after the FIN")
            received += fresh
            receiveNext = receiveNext &+ UInt32(fresh)
        }
        if tcp.flags.contains(.fin) && fresh >= 0 && !finReceived {
            finReceived = true
            receiveNext = receiveNext &+ 1
        }
    }
}

// MARK: The session

final class Session {
    static let stackMAC = MACAddress(0x02, 0, 0, 0, 0, 0x0A)
    static let peerMAC = MACAddress(0x02, 0, 0, 0, 0, 0x0B)
    static let stack4 = IPv4Address(10, 0, 0, 1)
    static let peer4 = IPv4Address(10, 0, 0, 2)
    static let stack6 = IPAddress("fd00::1")!
    static let peer6 = IPAddress("fd00::2")!
    static let router6 = IPAddress("fe80::1")!

    let clock = FakeClock()
    let link = MemoryLink(capacity: 128)
    let stack: NetworkStack<MemoryPort>
    var sent: [[UInt8]] = []
    var listeners: [Int32] = []
    var lives: [Live] = []
    /// Sockets accepted or connected by the application beside the live ones.
    var others: [Int32] = []
    /// Flows the stack sent on, with its last sequence and acknowledgment numbers: where
    /// injected segments aim.
    var flows: [(stack: IPAddress, peer: IPAddress, stackPort: UInt16, peerPort: UInt16, seq: UInt32, ack: UInt32)] =
        []
    var counters: [Int] = []
    let configuration: StackConfiguration

    init(_ r: inout Reader) {
        var tcp = TCPConfiguration()
        tcp.receiveBufferSize = 16 * 1024
        tcp.sendBufferSize = 16 * 1024
        var configuration = StackConfiguration(
            address: Self.stack4, prefixLength: 24, gateway: IPv4Address(10, 0, 0, 254), tcp: tcp)
        configuration.ipv6 = IPv6Interface(address: Self.stack6, prefixLength: 64)
        configuration.pendingPoolSize = 16
        configuration.pendingPacketsPerAddress = 4
        configuration.arpCacheCapacity = 8
        self.configuration = configuration
        let clock = clock
        stack = NetworkStack(io: link.a, configuration: configuration, secret: (7, 8), clock: { clock.now })
        stack.log = { _ in }
        // Every socket here is non-blocking: a call that would wait is a harness mistake.
        stack.waitHook = { _ in require(false, "nothing blocks") }
        link.a.onSend = { [unowned self] frame in sent.append(Array(frame)) }
        stack.announce()
        // A listener per family: IPv4 on 80, dual-stack on 8080, both non-blocking, small backlogs.
        for (inet6, port) in [(false, UInt16(80)), (true, UInt16(8080))] {
            let id = try! stack.socket(inet6: inet6)
            try! stack.bind(id, address: .wildcard(ipv6: inet6), port: port)
            try! stack.listen(id, backlog: Int(r.byte() % 4) + 1)
            try! stack.setNonBlocking(id)
            listeners.append(id)
        }
        let timestamps = r.flag()
        // The peer introduces itself (ARP, a neighbour solicitation) and opens one connection
        // per family.
        deliver(
            ethernet(
                to: .broadcast, from: Self.peerMAC, type: EtherType.arp,
                arp(ARPPacket.request, senderMAC: Self.peerMAC, sender: Self.peer4, target: Self.stack4)))
        let solicitedNode = Self.stack6.solicitedNode
        deliver(
            ethernet(
                to: solicitedNode.multicastMAC, from: Self.peerMAC, type: EtherType.ipv6,
                ipv6(
                    from: Self.peer6, to: solicitedNode, nextHeader: IPProtocol.icmpv6,
                    icmpv6(
                        ICMPv6Type.neighborSolicitation,
                        [0, 0, 0, 0] + addressBytes(Self.stack6) + linkLayerOption(1, Self.peerMAC),
                        from: Self.peer6, to: solicitedNode), hopLimit: 255)))
        for (k, (peer, local, port)) in [
            (IPAddress(Self.peer4), IPAddress(Self.stack4), UInt16(80)), (Self.peer6, Self.stack6, UInt16(8080)),
        ].enumerated() {
            let live = Live(
                peer: peer, stack: local, peerPort: 40000 + UInt16(k), stackPort: port, timestamps: timestamps,
                seed: UInt8(k + 1))
            lives.append(live)
            sendFromPeer(live, flags: .syn, payload: [])
            live.sendNext = live.sendNext &+ 1
            sendFromPeer(live, flags: .ack, payload: [])
            if let accepted = try? stack.accept(listeners[k]) {
                live.socket = accepted.socket
                try? stack.setNonBlocking(accepted.socket)
            }
        }
        counters = allCounters()
    }

    func addressBytes(_ address: IPAddress) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.put(address)
        return bytes
    }

    func arp(
        _ operation: UInt16, senderMAC: MACAddress, sender: IPv4Address, targetMAC: MACAddress = .zero,
        target: IPv4Address
    ) -> [UInt8] {
        var packet: [UInt8] = [0, 1, 0x08, 0, 6, 4]
        packet.put16(operation)
        packet.put(senderMAC)
        packet.put32(sender.rawValue)
        packet.put(targetMAC)
        packet.put32(target.rawValue)
        return packet
    }

    /// Puts a frame on the link toward the stack and runs one loop round.
    func deliver(_ frame: [UInt8]) {
        frame.withUnsafeBytes { link.a.deliver($0) }
        poll()
    }

    func poll() {
        stack.poll(now: clock.now)
        takeSent()
    }

    /// A segment from the peer on a live connection, at its own sequence numbers.
    func sendFromPeer(_ live: Live, flags: TCPFlags, payload: [UInt8], window: UInt16 = 65535) {
        let segment = Segment(
            sourcePort: live.peerPort, destinationPort: live.stackPort, sequence: live.sendNext,
            acknowledgment: flags.contains(.ack) ? live.receiveNext : 0, flags: flags, window: window,
            options: live.options(flags.contains(.syn), now: clock.now), payload: payload)
        deliver(ip(segment.bytes(from: live.peer, to: live.stack), from: live.peer, to: live.stack, IPProtocol.tcp))
    }

    /// The packet in an Ethernet frame from the peer's MAC.
    func ip(_ payload: [UInt8], from source: IPAddress, to destination: IPAddress, _ proto: UInt8) -> [UInt8] {
        if let s = source.ipv4, let d = destination.ipv4 {
            return ethernet(
                to: Self.stackMAC, from: Self.peerMAC, type: EtherType.ipv4,
                ipv4(from: s, to: d, protocol: proto, payload))
        }
        return ethernet(
            to: Self.stackMAC, from: Self.peerMAC, type: EtherType.ipv6,
            ipv6(from: source, to: destination, nextHeader: proto, payload))
    }

    // MARK: What the stack sends

    func takeSent() {
        let frames = sent
        sent.removeAll()
        for frame in frames { frame.withUnsafeBytes { check($0) } }
    }

    /// Every frame the stack sends is well formed, from us, checksums right.
    func check(_ frame: UnsafeRawBufferPointer) {
        require(frame.count <= link.a.mtu + EthernetHeader.length, "a frame within the MTU")
        guard let (ethernet, payload) = try? EthernetHeader.parse(frame) else {
            require(false, "a sent frame parses")
            return
        }
        require(ethernet.source == Self.stackMAC, "sent from our MAC")
        switch ethernet.etherType {
        case EtherType.arp:
            require(frame.count >= 60, "ARP padded to Ethernet's minimum")
            guard let packet = try? ARPPacket.parse(payload) else {
                require(false, "a sent ARP packet parses")
                return
            }
            require(packet.senderMAC == Self.stackMAC && packet.senderIP == Self.stack4, "ARP speaks for us")
        case EtherType.ipv4:
            guard let (ip, segment) = try? IPv4Header.parse(payload) else {
                require(false, "a sent IPv4 packet parses, header checksum right")
                return
            }
            require(ip.source == Self.stack4, "IPv4 from our address")
            switch ip.protocol {
            case IPProtocol.tcp: checkTCP(segment, source: IPAddress(ip.source), destination: IPAddress(ip.destination))
            case IPProtocol.icmp:
                guard let (echo, _) = try? ICMPEcho.parse(segment) else {
                    require(false, "sent ICMP parses, checksum right")
                    return
                }
                require(echo.type == ICMPType.echoReply, "the stack's ICMP is echo replies")
            default: require(false, "IPv4 carries TCP or ICMP")
            }
        case EtherType.ipv6:
            guard let (ip, message) = try? IPv6Header.parse(payload) else {
                require(false, "a sent IPv6 packet parses")
                return
            }
            require(ip.extensionHeaderLength == 0, "no extension headers sent")
            let ours = ip.source == Self.stack6 || ip.source == stack.linkLocalAddress || ip.source.isUnspecified
            require(ours, "IPv6 from our addresses (:: only for address detection)")
            switch ip.upperProtocol {
            case IPProtocol.tcp:
                require(!ip.source.isUnspecified, "TCP from an address")
                checkTCP(message, source: ip.source, destination: ip.destination)
            case IPProtocol.icmpv6:
                guard let header = try? ICMPv6Header.parse(message, source: ip.source, destination: ip.destination)
                else {
                    require(false, "sent ICMPv6 parses, checksum right")
                    return
                }
                switch header.type {
                case ICMPv6Type.echoReply:
                    require(!ip.source.isUnspecified, "an echo reply from an address")
                case ICMPv6Type.neighborSolicitation:
                    let parsed = try? NeighborSolicitation.parse(
                        message, hopLimit: ip.hopLimit, source: ip.source, destination: ip.destination)
                    require(parsed != nil, "a sent solicitation parses")
                case ICMPv6Type.neighborAdvertisement:
                    let parsed = try? NeighborAdvertisement.parse(
                        message, hopLimit: ip.hopLimit, source: ip.source, destination: ip.destination)
                    require(parsed?.targetLinkLayer == Self.stackMAC, "a sent advertisement parses, for our MAC")
                default: require(false, "the stack's ICMPv6 is echo replies and neighbour discovery")
                }
            default: require(false, "IPv6 carries TCP or ICMPv6")
            }
        default:
            require(false, "ARP, IPv4 or IPv6")
        }
    }

    func checkTCP(_ bytes: UnsafeRawBufferPointer, source: IPAddress, destination: IPAddress) {
        guard let (tcp, payload) = try? TCPHeader.parse(bytes, source: source, destination: destination) else {
            require(false, "a sent TCP segment parses, checksum right")
            return
        }
        require(!(tcp.flags.contains(.syn) && tcp.flags.contains(.fin)), "never SYN and FIN together")
        require(payload.count <= configuration.tcp.maximumSegmentSize, "within the MSS")
        let end = tcp.sequenceNumber &+ UInt32(payload.count)
        if let k = flows.firstIndex(where: {
            $0.stack == source && $0.peer == destination && $0.stackPort == tcp.sourcePort
                && $0.peerPort == tcp.destinationPort
        }) {
            flows[k].seq = end
            flows[k].ack = tcp.acknowledgmentNumber
        } else {
            flows.append((source, destination, tcp.sourcePort, tcp.destinationPort, end, tcp.acknowledgmentNumber))
            if flows.count > 8 { flows.removeFirst() }
        }
        for live in lives
        where live.stack == source && live.peer == destination && live.stackPort == tcp.sourcePort
            && live.peerPort == tcp.destinationPort
        {
            live.receive(tcp, payload)
        }
    }

    // MARK: Invariants

    /// Every counter the stack, its link and its endpoint keep, in a fixed order: read as the
    /// Ints the structs are made of (reflection on every step took a third of the time).
    func allCounters() -> [Int] {
        var values: [Int] = []
        func add<T>(_ counters: T) {
            require(Self.onlyInts(counters), "counter structs hold Ints only")
            withUnsafeBytes(of: counters) { values += $0.bindMemory(to: Int.self) }
        }
        add(stack.statistics)
        add(link.a.statistics)
        add(stack.endpoint.statistics)
        return values
    }

    /// Whether `counters` is Ints all through (nested structs included), by reflection once per type.
    nonisolated(unsafe) static var checkedTypes: Set<ObjectIdentifier> = []
    static func onlyInts<T>(_ counters: T) -> Bool {
        if checkedTypes.contains(ObjectIdentifier(T.self)) { return true }
        var ints = 0
        func walk(_ value: Any) -> Bool {
            if value is Int {
                ints += 1
                return true
            }
            let children = Mirror(reflecting: value).children
            return !children.isEmpty && children.allSatisfy { walk($0.value) }
        }
        guard walk(counters), ints * MemoryLayout<Int>.stride == MemoryLayout<T>.size else { return false }
        checkedTypes.insert(ObjectIdentifier(T.self))
        return true
    }

    func checkInvariants() {
        let now = allCounters()
        require(now.count == counters.count, "the same counters")
        for (a, b) in zip(counters, now) { require(b >= a, "counters only grow") }
        counters = now
        let pool = stack.endpoint.memoryPoolStatistics
        require(pool.inUse + pool.available == pool.slabs * pool.chunksPerSlab, "pool chunks lent or free")
        require(pool.inUse <= stack.endpoint.connectionCount, "a lent chunk per connection at most")
        require(stack.arp.pendingFrames <= configuration.pendingPoolSize, "pending frames within their pool")
        require(stack.arp.count <= configuration.arpCacheCapacity, "neighbours within the cache")
    }

    /// Closes everything and lets time run until every connection has gone.
    func finish() {
        for id in listeners + others + lives.map(\.socket) where id >= 0 { try? stack.close(id) }
        for live in lives { live.checked = false }
        poll()
        for _ in 0..<2000 {
            if stack.endpoint.connectionCount == 0 && stack.arp.pendingFrames == 0 { break }
            let next = stack.nextDeadline
            guard next != .never else { break }
            clock.now = max(next, clock.now + .milliseconds(1))
            poll()
        }
        checkInvariants()
        require(stack.socketCount == 0, "every socket closed")
        require(stack.endpoint.connectionCount == 0, "every connection goes once the peer is silent")
        require(stack.endpoint.memoryPoolStatistics.inUse == 0, "every buffer back in the pool")
        require(stack.arp.pendingFrames == 0, "every pending frame sent or dropped")
    }

    // MARK: Steps

    func step(_ r: inout Reader) {
        switch r.byte() % 16 {
        case 0: randomFrame(&r)
        case 1: arpTemplate(&r)
        case 2: ipv4Template(&r)
        case 3, 4: tcpTemplate(&r)
        case 5: ndTemplate(&r)
        case 6: ipv6Template(&r)
        case 7, 8: peerStep(&r)
        case 9, 10: application(&r)
        case 11:
            // Time passes: a little, a lot, or to the next timer.
            switch r.byte() % 3 {
            case 0: clock.now = clock.now + .milliseconds(UInt64(r.byte()))
            case 1: clock.now = clock.now + .milliseconds(UInt64(r.word()) * 16)
            default:
                let next = stack.nextDeadline
                if next != .never && next > clock.now { clock.now = next }
            }
            poll()
        default: tcpTemplate(&r)
        }
        checkInvariants()
    }

    /// Any bytes, or any payload after an Ethernet header to us, broadcast or a group.
    func randomFrame(_ r: inout Reader) {
        let raw = r.flag()
        let bytes = r.take(Int(r.word() % 1600))
        if raw {
            deliver(bytes)
            return
        }
        let destination: MACAddress = [Self.stackMAC, .broadcast, Self.stack6.solicitedNode.multicastMAC][
            Int(r.byte() % 3)]
        let type: UInt16 = [EtherType.ipv4, EtherType.ipv6, EtherType.arp, EtherType.vlan, r.word()][Int(r.byte() % 5)]
        deliver(ethernet(to: destination, from: Self.peerMAC, type: type, bytes))
    }

    func fuzzedMAC(_ r: inout Reader) -> MACAddress {
        switch r.byte() % 4 {
        case 0: return Self.peerMAC
        case 1: return Self.stackMAC
        case 2: return MACAddress(0x02, 0, 0, 0, 0, r.byte())
        default: return MACAddress(rawValue: UInt64(r.long()) << 16 | UInt64(r.word()))
        }
    }

    func fuzzedIPv4(_ r: inout Reader) -> IPv4Address {
        switch r.byte() % 5 {
        case 0: return Self.peer4
        case 1: return Self.stack4
        case 2: return IPv4Address(10, 0, 0, r.byte())
        case 3: return .any
        default: return IPv4Address(rawValue: r.long())
        }
    }

    func fuzzedIPv6(_ r: inout Reader) -> IPAddress {
        switch r.byte() % 8 {
        case 0: return Self.peer6
        case 1: return Self.stack6
        case 2: return stack.linkLocalAddress
        case 3: return Self.router6
        case 4: return .unspecified
        case 5: return .allNodes
        case 6: return Self.stack6.solicitedNode
        default:
            return IPAddress(
                high: UInt64(r.long()) << 32 | UInt64(r.long()), low: UInt64(r.long()) << 32 | UInt64(r.byte()))
        }
    }

    func arpTemplate(_ r: inout Reader) {
        let operation = r.byte() % 4 == 0 ? r.word() : (r.flag() ? ARPPacket.request : ARPPacket.reply)
        let senderMAC = fuzzedMAC(&r)
        let packet = arp(
            operation, senderMAC: senderMAC, sender: fuzzedIPv4(&r), targetMAC: fuzzedMAC(&r), target: fuzzedIPv4(&r))
        var frame = ethernet(to: r.flag() ? .broadcast : Self.stackMAC, from: senderMAC, type: EtherType.arp, packet)
        mutate(&frame, &r)
        deliver(frame)
    }

    /// A few bytes of a frame changed (its checksums then mostly wrong).
    func mutate(_ frame: inout [UInt8], _ r: inout Reader) {
        for _ in 0..<Int(r.byte() % 4) where !frame.isEmpty {
            frame[Int(r.word()) % frame.count] ^= r.byte()
        }
        if r.byte() % 8 == 0 { frame.removeLast(min(frame.count, Int(r.byte() % 16))) }
    }

    func ipv4Template(_ r: inout Reader) {
        let proto: UInt8 = [IPProtocol.icmp, IPProtocol.tcp, IPProtocol.udp, r.byte()][Int(r.byte() % 4)]
        var payload: [UInt8]
        if proto == IPProtocol.icmp {
            // An echo request (or another type), checksum right unless the fuzzer says.
            payload = [r.byte() % 2 == 0 ? ICMPType.echoRequest : r.byte(), r.byte() % 4 == 0 ? r.byte() : 0, 0, 0]
            payload.put32(r.long())
            payload += r.take(Int(r.word() % 1500))
            payload.set16(checksum(payload) ^ (r.byte() % 8 == 0 ? 1 : 0), at: 2)
        } else {
            payload = r.take(Int(r.word() % 200))
        }
        let options = r.byte() % 4 == 0 ? r.take(Int(r.byte() % 44)) : []
        let flagsOffset: UInt16 = r.byte() % 4 == 0 ? r.word() : 0x4000
        let lengthDelta = r.byte() % 8 == 0 ? Int(Int8(bitPattern: r.byte())) : 0
        let packet = ipv4(
            from: fuzzedIPv4(&r), to: r.byte() % 4 == 0 ? fuzzedIPv4(&r) : Self.stack4, protocol: proto, payload,
            options: options, flagsOffset: flagsOffset, ttl: r.byte(), lengthDelta: lengthDelta,
            badChecksum: r.byte() % 16 == 0)
        var frame = ethernet(to: Self.stackMAC, from: Self.peerMAC, type: EtherType.ipv4, packet)
        if r.byte() % 4 == 0 { mutate(&frame, &r) }
        // Ethernet padding after the packet.
        frame += [UInt8](repeating: 0, count: Int(r.byte() % 4) * 8)
        deliver(frame)
    }

    /// A TCP segment: to a listener from anywhere, or on a flow the stack sends on, with the
    /// fuzzer's deltas from its numbers, flags, window, options and payload.
    func tcpTemplate(_ r: inout Reader) {
        let mode = r.byte()
        var source: IPAddress
        var destination: IPAddress
        var segment: Segment
        if mode % 2 == 0, !flows.isEmpty {
            let flow = flows[Int(r.byte()) % flows.count]
            source = flow.peer
            destination = flow.stack
            let seqDelta = Int32(bitPattern: r.long()) >> Int32(r.byte() % 32)
            let ackDelta = Int32(bitPattern: r.long()) >> Int32(r.byte() % 32)
            segment = Segment(
                sourcePort: flow.peerPort, destinationPort: flow.stackPort,
                sequence: flow.ack &+ UInt32(bitPattern: seqDelta),
                acknowledgment: flow.seq &+ UInt32(bitPattern: ackDelta), flags: TCPFlags(rawValue: r.byte()))
        } else {
            let ipv6 = r.flag()
            source = ipv6 ? fuzzedIPv6(&r) : IPAddress(fuzzedIPv4(&r))
            destination = ipv6 ? (r.byte() % 4 == 0 ? fuzzedIPv6(&r) : Self.stack6) : IPAddress(Self.stack4)
            let port: UInt16 = [80, 8080, r.word()][Int(r.byte() % 3)]
            segment = Segment(
                sourcePort: r.word(), destinationPort: port, sequence: r.long(), acknowledgment: r.long(),
                flags: r.byte() % 2 == 0 ? .syn : TCPFlags(rawValue: r.byte()))
        }
        segment.window = r.word()
        segment.options = r.take(Int(r.byte() % 44))
        segment.payload = r.take(Int(r.word() % 1400))
        segment.badChecksum = r.byte() % 16 == 0
        segment.urgent = r.byte() % 8 == 0 ? r.word() : 0
        deliver(ip(segment.bytes(from: source, to: destination), from: source, to: destination, IPProtocol.tcp))
    }

    /// ICMPv6: echo requests, neighbour solicitations and advertisements, router
    /// advertisements with their options, other types; hop limit 255 or not.
    func ndTemplate(_ r: inout Reader) {
        let source = fuzzedIPv6(&r)
        let destination = r.byte() % 3 == 0 ? fuzzedIPv6(&r) : Self.stack6
        let type: UInt8
        var body: [UInt8] = []
        switch r.byte() % 6 {
        case 0:
            type = ICMPv6Type.echoRequest
            body.put32(r.long())
            body += r.take(Int(r.word() % 1400))
        case 1:
            type = ICMPv6Type.neighborSolicitation
            body = [0, 0, 0, 0] + addressBytes(r.flag() ? Self.stack6 : fuzzedIPv6(&r))
        case 2:
            type = ICMPv6Type.neighborAdvertisement
            body = [r.byte(), 0, 0, 0] + addressBytes(fuzzedIPv6(&r))
        case 3:
            type = ICMPv6Type.routerAdvertisement
            body = [64, r.byte()]
            body.put16(r.word())  // router lifetime
            body.put32(r.long())
            body.put32(r.long())
        default:
            type = r.byte()
            body = r.take(Int(r.byte()))
        }
        // Options: link-layer addresses, a prefix, an MTU, or any bytes.
        for _ in 0..<Int(r.byte() % 3) {
            switch r.byte() % 4 {
            case 0: body += linkLayerOption(r.flag() ? 1 : 2, fuzzedMAC(&r))
            case 1:
                body +=
                    [3, 4, 64, 0xC0] + [UInt8](repeating: 0xFF, count: 8) + [0, 0, 0, 0] + addressBytes(Self.stack6)
            case 2: body += [5, 1, 0, 0, 0, 0, 0x05, 0xDC]
            default: body += r.take(Int(r.byte() % 24))
            }
        }
        var message = icmpv6(type, code: r.byte() % 8 == 0 ? r.byte() : 0, body, from: source, to: destination)
        if r.byte() % 8 == 0 { message[2] ^= 1 }
        let hopLimit: UInt8 = r.byte() % 4 == 0 ? r.byte() : 255
        let destinationMAC = destination.isMulticast ? destination.multicastMAC : Self.stackMAC
        var frame = ethernet(
            to: destinationMAC, from: fuzzedMAC(&r), type: EtherType.ipv6,
            ipv6(from: source, to: destination, nextHeader: IPProtocol.icmpv6, message, hopLimit: hopLimit))
        if r.byte() % 8 == 0 { mutate(&frame, &r) }
        deliver(frame)
    }

    /// IPv6 with extension headers before TCP, ICMPv6 or nothing, and a payload length that
    /// may lie.
    func ipv6Template(_ r: inout Reader) {
        var upper: UInt8 = [IPProtocol.tcp, IPProtocol.icmpv6, IPProtocol.noNextHeader, r.byte()][Int(r.byte() % 4)]
        let source = r.flag() ? Self.peer6 : fuzzedIPv6(&r)
        let destination = r.flag() ? Self.stack6 : fuzzedIPv6(&r)
        var payload: [UInt8]
        if upper == IPProtocol.tcp {
            let segment = Segment(
                sourcePort: r.word(), destinationPort: r.flag() ? 8080 : r.word(), sequence: r.long(),
                acknowledgment: r.long(), flags: TCPFlags(rawValue: r.byte()), payload: r.take(Int(r.byte())))
            payload = segment.bytes(from: source, to: destination)
        } else if upper == IPProtocol.icmpv6 {
            var body: [UInt8] = []
            body.put32(r.long())
            payload = icmpv6(ICMPv6Type.echoRequest, body + r.take(Int(r.byte())), from: source, to: destination)
        } else {
            payload = r.take(Int(r.byte()))
        }
        // Extension headers, innermost last: hop-by-hop, destination options, routing,
        // fragment, or any next header number with any length.
        for _ in 0..<Int(r.byte() % 4) {
            let kind = [
                IPProtocol.hopByHop, IPProtocol.destinationOptions, IPProtocol.routing, IPProtocol.fragment,
                r.byte(),
            ][Int(r.byte() % 5)]
            let units = Int(r.byte() % 3)
            var header: [UInt8] = [upper, kind == IPProtocol.fragment ? 0 : UInt8(units)]
            let length = kind == IPProtocol.fragment ? 8 : 8 * (units + 1)
            header +=
                r.byte() % 2 == 0
                ? [1, UInt8(length - 4)] + [UInt8](repeating: 0, count: length - 4) : r.take(length - 2)
            header += [UInt8](repeating: 0, count: max(0, length - header.count))
            payload = header + payload
            upper = kind
        }
        let lengthDelta = r.byte() % 8 == 0 ? Int(Int8(bitPattern: r.byte())) : 0
        let hopLimit = r.byte()
        deliver(
            ethernet(
                to: destination.isMulticast ? destination.multicastMAC : Self.stackMAC, from: Self.peerMAC,
                type: EtherType.ipv6,
                ipv6(
                    from: source, to: destination, nextHeader: upper, payload, hopLimit: hopLimit,
                    lengthDelta: lengthDelta)))
    }

    /// The peer acknowledges what it holds, sends data within the stack's window, goes back
    /// to what the stack acknowledged, or closes its side.
    func peerStep(_ r: inout Reader) {
        let live = lives[Int(r.byte()) % lives.count]
        guard live.synchronized else { return }
        let window: UInt16 = r.byte() % 8 == 0 ? UInt16(r.byte()) : 65535
        switch r.byte() % 5 {
        case 0, 1:
            sendFromPeer(live, flags: .ack, payload: [], window: window)
        case 2:
            let room = max(0, live.stackWindow - Int(Int32(bitPattern: live.sendNext &- live.stackAcknowledged)))
            let count = min(Int(r.word() % 2048), room, 1200)
            let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(live.sendNext)) }
            sendFromPeer(live, flags: [.ack, .psh], payload: payload, window: window)
            live.sendNext = live.sendNext &+ UInt32(count)
        case 3:
            live.sendNext = live.stackAcknowledged
            sendFromPeer(live, flags: .ack, payload: [], window: window)
        default:
            sendFromPeer(live, flags: [.ack, .fin], payload: [], window: window)
            live.sendNext = live.sendNext &+ 1
        }
    }

    /// The application: writes, reads, accepts, connects, shuts down and closes.
    func application(_ r: inout Reader) {
        switch r.byte() % 6 {
        case 0, 1:
            let live = lives[Int(r.byte()) % lives.count]
            guard live.checked, live.socket >= 0 else { return }
            let start = live.wrote.count
            let bytes = (0..<Int(r.word() % 8192)).map {
                UInt8(truncatingIfNeeded: ($0 + start) &* 31 &+ Int(live.seed))
            }
            if let n = try? bytes.withUnsafeBytes({ try stack.write(live.socket, $0) }) {
                live.wrote += bytes[0..<n]
            }
        case 2:
            var buffer = [UInt8](repeating: 0, count: 4096)
            for id in lives.map(\.socket) + others where id >= 0 {
                _ = try? buffer.withUnsafeMutableBytes { try stack.read(id, into: $0) }
            }
        case 3:
            for listener in listeners {
                if let accepted = try? stack.accept(listener) {
                    try? stack.setNonBlocking(accepted.socket)
                    others.append(accepted.socket)
                }
            }
        case 4:
            // An active open to a host that may never answer ARP or neighbour discovery.
            let ipv6 = r.flag()
            guard others.count < 8, let id = try? stack.socket(inet6: ipv6) else { return }
            try? stack.setNonBlocking(id)
            let destination =
                ipv6
                ? IPAddress("fd00::\(r.byte() % 4 + 2)")!
                : IPAddress(IPv4Address(10, 0, r.byte() % 2, r.byte() % 4 + 2))
            try? stack.connect(id, address: destination, port: r.word())
            others.append(id)
        default:
            if r.flag(), !others.isEmpty {
                try? stack.close(others.remove(at: Int(r.byte()) % others.count))
            } else {
                let live = lives[Int(r.byte()) % lives.count]
                guard live.socket >= 0 else { return }
                if r.flag() {
                    try? stack.shutdown(live.socket, how: SocketConstant.SHUT_WR)
                } else {
                    // A closed socket's number may come back for another connection.
                    try? stack.close(live.socket)
                    live.socket = -1
                    live.checked = false
                }
            }
        }
        poll()
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStack(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    var r = Reader(bytes: UnsafeRawBufferPointer(start: data, count: size))
    let session = Session(&r)
    session.checkInvariants()
    var steps = 0
    while !r.done && steps < 192 {
        steps += 1
        session.step(&r)
    }
    session.finish()
    return 0
}
