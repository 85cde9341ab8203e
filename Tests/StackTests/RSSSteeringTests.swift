import PacketIO
import Stack
import TCP
import Testing
import Wire

/// The NIC's view of a TCP/IPv4 frame for these tests, written apart from `RSSSteering`: the
/// Toeplitz hash of (source, destination, source port, destination port) and a round-robin
/// redirection table of `entries` (entry e holds queue e % queues).
private func nicQueue(
    source: IPv4Address, destination: IPv4Address, sourcePort: UInt16, destinationPort: UInt16, queues: Int,
    entries: Int = 128
) -> Int {
    let hash = ToeplitzHash(key: ToeplitzHash.symmetricKey)!.hash(
        source: source, destination: destination, sourcePort: sourcePort, destinationPort: destinationPort)
    return Int(hash & UInt32(entries - 1)) % queues
}

private func steering(queues: Int, entries: Int = 128) -> RSSSteering {
    RSSSteering(key: ToeplitzHash.symmetricKey, redirection: RSSSteering.roundRobin(entries: entries, queues: queues))!
}

/// Host A's instances behind one NIC with RSS (queue i is instance i), host B a single stack:
/// frames from B go to the queue the NIC's hash picks (frames that are not TCP/IPv4, such as
/// ARP, to every queue); everything the instances send reaches B.
final class RSSHosts {
    let clock = FakeClock()
    let queues: [MemoryLink]
    let peer = MemoryLink()
    let instances: [NetworkStack<MemoryPort>]
    let b: NetworkStack<MemoryPort>
    /// TCP frames from B the NIC delivered to each queue.
    var delivered: [Int]

    init(queues count: Int) {
        let nic = MACAddress(0x02, 0, 0, 0, 0, 0x0A)
        queues = (0..<count).map { _ in MemoryLink(macA: nic) }
        let clock = clock
        instances = queues.enumerated().map { index, link in
            let stack = NetworkStack(
                io: link.a, configuration: StackConfiguration(address: addressA, prefixLength: 24),
                secret: (1, UInt64(index)), clock: { clock.now })
            stack.log = { _ in }
            return stack
        }
        b = NetworkStack(
            io: peer.b, configuration: StackConfiguration(address: addressB, prefixLength: 24), secret: (3, 4),
            clock: { clock.now })
        b.log = { _ in }
        delivered = Array(repeating: 0, count: count)
    }

    /// Frames on the wire: the instances' to B, B's through the NIC to their queue.
    func moveFrames() {
        for link in queues { _ = link.b.receive(limit: .max) { peer.b.deliver($0) } }
        _ = peer.a.receive(limit: .max) { frame in
            guard let queue = queue(of: frame) else {
                for link in queues { link.a.deliver(frame) }
                return
            }
            delivered[queue] += 1
            queues[queue].a.deliver(frame)
        }
    }

    func queue(of frame: UnsafeRawBufferPointer) -> Int? {
        guard frame.count >= 54, frame[12] == 0x08, frame[13] == 0x00, frame[23] == 6 else { return nil }
        func word(_ at: Int) -> UInt32 {
            UInt32(frame[at]) << 24 | UInt32(frame[at + 1]) << 16 | UInt32(frame[at + 2]) << 8 | UInt32(frame[at + 3])
        }
        let tcp = 14 + Int(frame[14] & 0x0F) * 4
        return nicQueue(
            source: IPv4Address(rawValue: word(26)), destination: IPv4Address(rawValue: word(30)),
            sourcePort: UInt16(frame[tcp]) << 8 | UInt16(frame[tcp + 1]),
            destinationPort: UInt16(frame[tcp + 2]) << 8 | UInt16(frame[tcp + 3]), queues: queues.count)
    }

    var quiet: Bool { queues.allSatisfy { $0.a.pending == 0 && $0.b.pending == 0 } && peer.a.pending == 0 }

    /// Steps until `condition` holds or `limit` of simulated time passes.
    func run(for limit: Interval, until condition: () -> Bool) -> Bool {
        let end = clock.now + limit
        while clock.now < end {
            if condition() { return true }
            for stack in instances { stack.poll() }
            b.poll()
            moveFrames()
            if quiet {
                let next = instances.reduce(b.nextDeadline) { min($0, $1.nextDeadline) }
                clock.now = min(end, next > clock.now ? next : clock.now + .milliseconds(1))
            }
        }
        return condition()
    }
}

/// Active opens on RSS queues: the instance on queue i picks source ports whose replies the
/// NIC hashes to queue i, and both directions of each flow hash to that queue.
@Suite struct RSSSteeringTests {
    @Test(arguments: [2, 4])
    func everyChosenPortRepliesToTheCallingQueue(queues: Int) throws {
        for queue in 0..<queues {
            let hosts = TwoHosts()
            hosts.a.activeOpenSteering = .rss(steering(queues: queues), queue: queue)
            for remotePort: UInt16 in [80, 8080, 443] {
                for _ in 0..<16 {
                    let client = try hosts.a.socket()
                    try hosts.a.setNonBlocking(client)
                    #expect(throws: Errno.EINPROGRESS) {
                        try hosts.a.connect(client, address: addressB, port: remotePort)
                    }
                    let local = try hosts.a.getsockname(client).port
                    let reply = nicQueue(
                        source: addressB, destination: addressA, sourcePort: remotePort, destinationPort: local,
                        queues: queues)
                    let forward = nicQueue(
                        source: addressA, destination: addressB, sourcePort: local, destinationPort: remotePort,
                        queues: queues)
                    #expect(reply == queue, "port \(local) to \(remotePort)")
                    #expect(forward == queue, "port \(local) to \(remotePort)")
                }
            }
        }
    }

    @Test func aLargerRedirectionTableIsRead() throws {
        // 512 entries filled over 3 queues: entry = hash % 512, not hash % 128.
        let hosts = TwoHosts()
        hosts.a.activeOpenSteering = .rss(steering(queues: 3, entries: 512), queue: 2)
        for _ in 0..<32 {
            let client = try hosts.a.socket()
            try hosts.a.setNonBlocking(client)
            #expect(throws: Errno.EINPROGRESS) { try hosts.a.connect(client, address: addressB, port: 80) }
            let local = try hosts.a.getsockname(client).port
            #expect(
                nicQueue(
                    source: addressB, destination: addressA, sourcePort: 80, destinationPort: local, queues: 3,
                    entries: 512) == 2)
        }
    }

    /// Instances behind an RSS NIC each open connections to B and exchange data: all complete,
    /// each on the instance that opened it.
    @Test(arguments: [2, 4])
    func instancesBehindRSSCompleteTheirOwnConnections(queues: Int) throws {
        let hosts = RSSHosts(queues: queues)
        let table = steering(queues: queues)
        for (index, stack) in hosts.instances.enumerated() { stack.activeOpenSteering = .rss(table, queue: index) }
        let (clients, accepted) = try openAndEcho(hosts, perInstance: 6)
        #expect(accepted == queues * 6)
        for (index, stack) in hosts.instances.enumerated() {
            for client in clients[index] { #expect(stack.tcpState(client) == .established) }
            #expect(hosts.delivered[index] > 0)
        }
    }

    @Test func withoutSteeringRepliesStray() throws {
        // The control: the same set-up with any source port loses connections to the wrong queue.
        let hosts = RSSHosts(queues: 2)
        let (clients, _) = try openAndEcho(hosts, perInstance: 6, expectSuccess: false)
        let established = zip(hosts.instances, clients).reduce(0) { sum, pair in
            sum + pair.1.filter { pair.0.tcpState($0) == .established }.count
        }
        #expect(established < 12)
    }

    /// Each instance connects `perInstance` times to B:7 and sends 100 bytes; B echoes them.
    /// Returns each instance's client sockets and how many B accepted.
    func openAndEcho(_ hosts: RSSHosts, perInstance: Int, expectSuccess: Bool = true) throws -> (
        [[Int32]], Int
    ) {
        let b = hosts.b
        let listener = try b.socket()
        try b.bind(listener, address: .any, port: 7)
        try b.listen(listener, backlog: 64)
        try b.setNonBlocking(listener)
        var clients: [[Int32]] = []
        for stack in hosts.instances {
            var mine: [Int32] = []
            for _ in 0..<perInstance {
                let client = try stack.socket()
                try stack.setNonBlocking(client)
                #expect(throws: Errno.EINPROGRESS) { try stack.connect(client, address: addressB, port: 7) }
                mine.append(client)
            }
            clients.append(mine)
        }
        var servers: [Int32] = []
        let total = hosts.instances.count * perInstance
        let connected = hosts.run(for: .seconds(5)) {
            while let (server, _, _) = try? b.accept(listener) {
                try? b.setNonBlocking(server)
                servers.append(server)
            }
            return servers.count == total
                && zip(hosts.instances, clients).allSatisfy { stack, mine in
                    mine.allSatisfy { stack.tcpState($0) == .established }
                }
        }
        guard expectSuccess else { return (clients, servers.count) }
        try #require(connected)
        let message = pattern(100, seed: 9)
        for (stack, mine) in zip(hosts.instances, clients) {
            for client in mine { #expect(try message.withUnsafeBytes { try stack.write(client, $0) } == 100) }
        }
        var echoed = [Int: Int]()
        var buffer = [UInt8](repeating: 0, count: 256)
        let done = hosts.run(for: .seconds(5)) {
            for server in servers {
                if let got = try? buffer.withUnsafeMutableBytes({ try b.read(server, into: $0) }), got > 0 {
                    _ = buffer.withUnsafeBytes { try? b.write(server, UnsafeRawBufferPointer(rebasing: $0[0..<got])) }
                }
            }
            for (index, (stack, mine)) in zip(hosts.instances, clients).enumerated() {
                for client in mine {
                    // Socket numbers repeat across instances.
                    let key = index << 16 | Int(client)
                    let offset = echoed[key, default: 0]
                    if let got = try? buffer.withUnsafeMutableBytes({ try stack.read(client, into: $0) }), got > 0 {
                        #expect(offset + got <= 100)
                        #expect(Array(buffer[0..<got]) == Array(message[min(offset, 100)...].prefix(got)))
                        echoed[key] = offset + got
                    }
                }
            }
            return echoed.count == total && echoed.values.allSatisfy { $0 == 100 }
        }
        #expect(done)
        return (clients, servers.count)
    }
}
