import PacketIO
import Stack
import TCP
import Testing
import Wire

@Suite struct ARPTests {
    @Test func firstSYNWaitsForARPAndIsNotLost() throws {
        let hosts = TwoHosts()
        let (client, _, _) = try hosts.connectedPair()
        let frames = hosts.sentByA.compactMap(SentFrame.init)
        // ARP request first, then exactly one SYN (flushed from the pending queue, not retransmitted).
        #expect(frames.first?.arp?.operation == ARPPacket.request)
        #expect(frames.first?.ethernet.destination == .broadcast)
        let syns = frames.filter { $0.tcp?.flags.contains(.syn) == true }
        #expect(syns.count == 1)
        #expect(syns.first?.ethernet.destination == hosts.link.b.macAddress)
        #expect(hosts.a.statistics.pendingFlushed == 1)
        #expect(hosts.a.statistics.arpRequestsSent == 1)
        #expect(hosts.b.statistics.arpRepliesSent == 1)
        // b learned a from the request: its SYN-ACK needed no ARP of its own.
        #expect(hosts.b.statistics.arpRequestsSent == 0)
        #expect(hosts.a.arp.entry(for: IPAddress(addressB))?.mac == hosts.link.b.macAddress)
        #expect(hosts.a.tcpState(client) == .established)
    }

    @Test func entriesAgeOutAndAreReResolved() throws {
        let hosts = TwoHosts { $0.arpEntryLifetime = .seconds(5) }
        let (client, server, _) = try hosts.connectedPair()
        #expect(hosts.a.arp.entry(for: IPAddress(addressB))?.state == .reachable)
        // Idle past the lifetime: the unused entries are forgotten.
        hosts.run(for: .seconds(11))
        #expect(hosts.a.arp.entry(for: IPAddress(addressB)) == nil)
        let requestsBefore = hosts.a.statistics.arpRequestsSent
        // New data re-resolves; the data waits and arrives.
        let data = pattern(100, seed: 1)
        _ = try data.withUnsafeBytes { try hosts.a.write(client, $0) }
        var received = [UInt8](repeating: 0, count: 200)
        var got = 0
        hosts.run {
            if let n = try? received.withUnsafeMutableBytes({ try hosts.b.read(server, into: $0) }) { got += n }
            return got == 100
        }
        #expect(got == 100)
        #expect(Array(received[0..<100]) == data)
        #expect(hosts.a.statistics.arpRequestsSent == requestsBefore + 1)
        #expect(hosts.a.arp.entry(for: IPAddress(addressB))?.state == .reachable)
    }

    @Test func entryInUseIsProbedWhenItAges() throws {
        let hosts = TwoHosts { $0.arpEntryLifetime = .seconds(5) }
        let (client, server, _) = try hosts.connectedPair()
        let before = hosts.a.statistics.arpRequestsSent
        // Traffic every second keeps the entry in use; at the lifetime it is re-resolved in place.
        var buffer = [UInt8](repeating: 0, count: 64)
        for _ in 0..<7 {
            _ = try [UInt8](repeating: 7, count: 10).withUnsafeBytes { try hosts.a.write(client, $0) }
            hosts.run(for: .seconds(1))
            _ = try? buffer.withUnsafeMutableBytes { try hosts.b.read(server, into: $0) }
        }
        #expect(hosts.a.statistics.arpRequestsSent > before)
        #expect(hosts.a.arp.entry(for: IPAddress(addressB))?.state == .reachable)
        #expect(hosts.a.statistics.arpResolutionFailures == 0)
    }

    @Test func silentAddressDropsPendingPacketsAfterRetries() throws {
        let hosts = TwoHosts()
        let socket = try hosts.a.socket()
        try hosts.a.setNonBlocking(socket)
        #expect(throws: Errno.EINPROGRESS) { try hosts.a.connect(socket, address: IPv4Address(10, 0, 0, 99), port: 80) }
        hosts.run(for: .milliseconds(2_900))
        #expect(hosts.a.statistics.arpRequestsSent == 3)
        #expect(hosts.a.statistics.arpResolutionFailures == 0)
        #expect(hosts.a.arp.pendingFrames >= 1)
        hosts.run(for: .milliseconds(200))
        // Three requests, one second apart, then the waiting SYN and its retransmissions (at 1 s
        // and, backed off, at 3 s just before the last request expires) are dropped and counted.
        #expect(hosts.a.statistics.arpResolutionFailures == 3)
        #expect(hosts.a.arp.pendingFrames == 0)
    }

    @Test func pendingQueueLimitsAreCounted() {
        let cache = ARPCache(
            lifetime: .seconds(60), retryInterval: .seconds(1), retries: 3, pendingPerAddress: 2, poolSize: 3,
            capacity: 4, frameCapacity: 64)
        let now = Instant(nanoseconds: 1)
        func enqueue(_ address: IPv4Address) -> ARPCache.EnqueueResult {
            cache.enqueue(for: IPAddress(address), now: now) { buffer in
                buffer[0] = 42
                return 20
            }
        }
        guard case .queued(true) = enqueue(addressB) else { Issue.record("first packet must start resolution"); return }
        guard case .queued(false) = enqueue(addressB) else { Issue.record("second packet queues"); return }
        guard case .overflow = enqueue(addressB) else { Issue.record("per-address limit"); return }
        guard case .queued(true) = enqueue(IPv4Address(10, 0, 0, 3)) else { Issue.record("other address"); return }
        guard case .overflow = enqueue(IPv4Address(10, 0, 0, 3)) else { Issue.record("pool limit"); return }
        var flushed = 0
        cache.learn(IPAddress(addressB), mac: MACAddress(2, 0, 0, 0, 0, 2), now: now, create: true) { frame in
            #expect(frame.count == 20 && frame[0] == 42)
            flushed += 1
        }
        #expect(flushed == 2)
        #expect(cache.pendingFrames == 1)
    }

    @Test func gratuitousARPUpdatesKnownNeighbour() throws {
        let hosts = TwoHosts()
        _ = try hosts.connectedPair()
        let newMAC = MACAddress(0x02, 0, 0, 0, 0, 0x77)
        var frame = [UInt8](repeating: 0, count: 60)
        frame.withUnsafeMutableBytes { raw in
            EthernetHeader(destination: .broadcast, source: newMAC, etherType: EtherType.arp).write(to: raw)
            ARPPacket(
                operation: ARPPacket.request, senderMAC: newMAC, senderIP: addressB, targetMAC: .zero,
                targetIP: addressB
            ).write(to: UnsafeMutableRawBufferPointer(rebasing: raw[14...]))
        }
        frame.withUnsafeBytes { hosts.link.a.deliver($0) }
        hosts.a.poll()
        #expect(hosts.a.statistics.arpGratuitous == 1)
        #expect(hosts.a.arp.entry(for: IPAddress(addressB))?.mac == newMAC)
        // A gratuitous ARP about a stranger adds nothing.
        frame.withUnsafeMutableBytes { raw in
            ARPPacket(
                operation: ARPPacket.request, senderMAC: newMAC, senderIP: IPv4Address(10, 0, 0, 50),
                targetMAC: .zero, targetIP: IPv4Address(10, 0, 0, 50)
            ).write(to: UnsafeMutableRawBufferPointer(rebasing: raw[14...]))
        }
        frame.withUnsafeBytes { hosts.link.a.deliver($0) }
        hosts.a.poll()
        #expect(hosts.a.arp.entry(for: IPAddress(IPv4Address(10, 0, 0, 50))) == nil)
        #expect(hosts.a.statistics.arpIgnored == 1)
    }
}
