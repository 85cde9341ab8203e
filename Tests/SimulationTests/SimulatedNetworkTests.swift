import Simulation
import TCP
import Testing
import Wire

@Suite struct SimulatedNetworkTests {
    /// Two connected test nodes A and B with the given profile both ways.
    func pair(_ profile: LinkProfile = .perfect, seed: UInt64 = 1) -> (SimulatedNetwork, TestNode, TestNode) {
        let network = SimulatedNetwork(seed: seed)
        let a = TestNode(addressA)
        let b = TestNode(addressB)
        network.connect(a, b, profile: profile)
        return (network, a, b)
    }

    @Test func deliversAfterExactDelay() {
        let (network, a, b) = pair(LinkProfile(delay: .milliseconds(5)))
        b.echo = true
        let packet = makePacket(from: addressA, to: addressB, tag: 7)
        a.queue(packet)
        let finished = network.run(until: .ms(100))
        #expect(!finished)
        #expect(network.now == .ms(100))
        #expect(b.received.count == 1)
        #expect(b.received.first?.time == .ms(5))
        #expect(b.received.first?.bytes == packet)
        #expect(a.received.map(\.time) == [.ms(10)])
        let stats = network.statistics(from: a, to: b)
        #expect(stats.sent == 1 && stats.delivered == 1 && stats.bytesDelivered == packet.count)
        #expect(network.statistics(from: b, to: a).delivered == 1)
    }

    @Test func perfectProfileIsOneMillisecond() {
        let (network, a, b) = pair()
        a.queue(makePacket(from: addressA, to: addressB, tag: 1), at: .ms(3))
        network.run(until: .ms(10))
        #expect(b.received.map(\.time) == [.ms(4)])
    }

    @Test func serializationSpacesPacketsByBandwidth() {
        // 1500 bytes at 12 Mbit/s take exactly 1 ms on the wire.
        let (network, a, b) = pair(LinkProfile(delay: .milliseconds(1), bitsPerSecond: 12_000_000))
        for i in 0..<5 { a.queue(makePacket(from: addressA, to: addressB, tag: UInt32(i), size: 1500)) }
        network.run(until: .ms(50))
        #expect(b.received.map(\.time) == [.ms(2), .ms(3), .ms(4), .ms(5), .ms(6)])
        #expect(b.receivedTags == [0, 1, 2, 3, 4])
    }

    @Test func queueLimitTailDrops() {
        let profile = LinkProfile(delay: .milliseconds(1), bitsPerSecond: 12_000_000, queueLimit: 3)
        let (network, a, b) = pair(profile)
        for i in 0..<10 { a.queue(makePacket(from: addressA, to: addressB, tag: UInt32(i), size: 1500)) }
        // After the queue has drained the link accepts packets again.
        a.queue(makePacket(from: addressA, to: addressB, tag: 99, size: 1500), at: .ms(10))
        network.run(until: .ms(50))
        // One packet is serialized at once, three wait, six are dropped.
        #expect(b.receivedTags == [0, 1, 2, 3, 99])
        #expect(b.received.last?.time == .ms(12))
        let stats = network.statistics(from: a, to: b)
        #expect(stats.sent == 11)
        #expect(stats.queueDrops == 6)
        #expect(stats.delivered == 5)
    }

    @Test func lossRateIsWithinBounds() {
        let (network, a, b) = pair(LinkProfile(lossRate: 0.1), seed: 5)
        for i in 0..<10_000 { a.queue(makePacket(from: addressA, to: addressB, tag: UInt32(i))) }
        network.run(until: .ms(10))
        let stats = network.statistics(from: a, to: b)
        #expect(stats.sent == 10_000)
        #expect(stats.dropped > 800 && stats.dropped < 1200)
        #expect(stats.delivered + stats.dropped == 10_000)
        #expect(b.received.count == stats.delivered)
    }

    @Test func duplicatesAreCountedAndDeliveredTwice() {
        let (network, a, b) = pair(LinkProfile(duplicateRate: 1.0))
        var sent: [[UInt8]] = []
        for i in 0..<50 {
            let packet = makePacket(from: addressA, to: addressB, tag: UInt32(i))
            sent.append(packet)
            a.queue(packet)
        }
        network.run(until: .ms(10))
        let stats = network.statistics(from: a, to: b)
        #expect(stats.duplicated == 50)
        #expect(stats.delivered == 100)
        #expect(b.received.count == 100)
        for packet in sent {
            #expect(b.received.filter { $0.bytes == packet }.count == 2)
        }
    }

    @Test func corruptionFlipsExactlyOneBit() {
        let (network, a, b) = pair(LinkProfile(corruptRate: 1.0), seed: 3)
        var sent: [[UInt8]] = []
        for i in 0..<100 {
            let packet = makePacket(from: addressA, to: addressB, tag: UInt32(i), size: 40 + i)
            sent.append(packet)
            a.queue(packet)
        }
        network.run(until: .ms(10))
        #expect(network.statistics(from: a, to: b).corrupted == 100)
        try? #require(b.received.count == 100)
        // Without jitter packets arrive in send order, so compare pairwise (the tag may be the corrupted part).
        for (original, arrival) in zip(sent, b.received) {
            #expect(original.count == arrival.bytes.count)
            let flipped = zip(original, arrival.bytes).reduce(0) { $0 + ($1.0 ^ $1.1).nonzeroBitCount }
            #expect(flipped == 1)
        }
    }

    @Test func reorderingReorders() {
        let (network, a, b) = pair(LinkProfile(reorderRate: 0.3, reorderDelay: .milliseconds(5)), seed: 4)
        for i in 0..<100 { a.queue(makePacket(from: addressA, to: addressB, tag: UInt32(i))) }
        network.run(until: .ms(20))
        let tags = b.receivedTags
        let reordered = network.statistics(from: a, to: b).reordered
        #expect(reordered > 10 && reordered < 60)
        #expect(tags.count == 100)
        #expect(tags != tags.sorted())
        #expect(tags.sorted() == (0..<100).map { UInt32($0) })
        #expect(b.received.filter { $0.time == .ms(6) }.count == reordered)
    }

    @Test func jitterStaysWithinBounds() {
        let (network, a, b) = pair(LinkProfile(delay: .milliseconds(1), jitter: .milliseconds(1)), seed: 8)
        for i in 0..<1000 { a.queue(makePacket(from: addressA, to: addressB, tag: UInt32(i))) }
        network.run(until: .ms(10))
        let times = b.received.map(\.time)
        #expect(times.count == 1000)
        #expect(times.allSatisfy { $0 >= .ms(1) && $0 <= .ms(2) })
        #expect(Set(times).count > 900)
        #expect(times == times.sorted())
    }

    /// The arrival trace of an impaired echo exchange.
    func trace(seed: UInt64) -> [String] {
        let profile = LinkProfile(
            delay: .milliseconds(2), jitter: .milliseconds(3), bitsPerSecond: 10_000_000, queueLimit: 20,
            lossRate: 0.05, duplicateRate: 0.05, reorderRate: 0.1, corruptRate: 0.02)
        let (network, a, b) = pair(profile, seed: seed)
        b.echo = true
        for i in 0..<300 {
            a.queue(makePacket(from: addressA, to: addressB, tag: UInt32(i), size: 100 + i), at: .us(UInt64(i) * 150))
        }
        var events: [String] = []
        network.tap = { time, from, to, size in events.append("\(time.nanoseconds) \(from)>\(to) \(size)") }
        network.run(until: .s(1))
        events += a.received.map { "A \($0.time.nanoseconds) \($0.bytes)" }
        events += b.received.map { "B \($0.time.nanoseconds) \($0.bytes)" }
        return events
    }

    @Test func sameSeedSameTraceDifferentSeedDifferentTrace() {
        let first = trace(seed: 1234)
        #expect(first.count > 500)
        #expect(first == trace(seed: 1234))
        #expect(first != trace(seed: 1235))
    }

    @Test func wakeupsFireAtRequestedInstants() {
        let network = SimulatedNetwork(seed: 1)
        let node = TestNode(addressA)
        network.add(node)
        let odd = Instant(nanoseconds: 7_000_500)
        node.wakeups = [.ms(3), .ms(7), odd]
        network.run(until: .ms(20))
        #expect(node.firedWakeups == [.ms(3), .ms(7), odd])
        // One transmit at the start of the run, then one per wake-up.
        #expect(node.transmitCalls == [.zero, .ms(3), .ms(7), odd])
    }

    @Test func runStopsAtDeadlineAndResumes() {
        let network = SimulatedNetwork(seed: 1)
        let node = PeriodicNode(addressA, period: .milliseconds(1))
        network.add(node)
        let deadline = Instant(nanoseconds: 10_500_000)
        #expect(network.run(until: deadline) == false)
        #expect(network.now == deadline)
        #expect(node.fired == (1...10).map { Instant.ms($0) })
        network.run(until: .ms(12))
        #expect(node.fired.count == 12)
        #expect(network.now == .ms(12))
        #expect(network.run(until: .ms(100)) { node.fired.count >= 15 })
        #expect(network.now == .ms(15))
        #expect(node.fired.last == .ms(15))
    }

    @Test func idleNetworkStopsEarly() {
        let (network, a, b) = pair(LinkProfile(delay: .milliseconds(2)))
        b.echo = true
        a.queue(makePacket(from: addressA, to: addressB, tag: 1))
        #expect(network.runUntilIdle(deadline: .s(10)))
        #expect(network.now == .ms(4))
        #expect(a.received.count == 1)
        // run(until:) on an idle network moves the clock to the deadline.
        #expect(network.run(until: .ms(50)) == false)
        #expect(network.now == .ms(50))
    }

    @Test func runUntilIdleHonoursDeadline() {
        let network = SimulatedNetwork(seed: 1)
        network.add(PeriodicNode(addressA, period: .milliseconds(1)))
        #expect(network.runUntilIdle(deadline: .ms(5)) == false)
        #expect(network.now == .ms(5))
    }

    @Test func unroutableAndMalformedAreCounted() {
        let network = SimulatedNetwork(seed: 1)
        let a = TestNode(addressA)
        let b = TestNode(addressB)
        let c = TestNode(addressC)
        network.connect(a, b, .perfect)
        network.add(c)
        a.queue(makePacket(from: addressA, to: addressC, tag: 1))  // a node, but no link to it
        a.queue(makePacket(from: addressA, to: IPv4Address(10, 9, 9, 9), tag: 2))  // no such node
        a.queue([UInt8](repeating: 0x45, count: 19))  // too short for a destination
        a.queue(makePacket(from: addressA, to: addressB, tag: 3))
        network.run(until: .ms(10))
        #expect(network.unroutable == 2)
        #expect(network.malformed == 1)
        #expect(b.receivedTags == [3])
        #expect(c.received.isEmpty)
    }

    @Test func oversizePacketsAreDropped() {
        let (network, a, b) = pair()
        a.queue(makePacket(from: addressA, to: addressB, tag: 1, size: 1501))
        a.queue(makePacket(from: addressA, to: addressB, tag: 2, size: 1500))
        network.run(until: .ms(10))
        #expect(b.receivedTags == [2])
        let stats = network.statistics(from: a, to: b)
        #expect(stats.oversize == 1 && stats.sent == 2 && stats.delivered == 1)
    }

    @Test func profileChangesMidRun() {
        let (network, a, b) = pair()
        for i in 0..<10 {
            a.queue(makePacket(from: addressA, to: addressB, tag: UInt32(i)), at: .ms(UInt64(i)))
        }
        network.run(until: Instant(nanoseconds: 4_500_000))
        network.setProfile(from: a, to: b, LinkProfile(lossRate: 1.0))
        #expect(network.profile(from: a, to: b)?.lossRate == 1.0)
        network.run(until: .ms(20))
        #expect(b.receivedTags == [0, 1, 2, 3, 4])
        #expect(network.statistics(from: a, to: b).dropped == 5)
    }

    @Test func stuckWakeupStillAdvancesTime() {
        let network = SimulatedNetwork(seed: 1)
        let node = StuckNode(addressA)
        network.add(node)
        #expect(network.run(until: .us(50)) == false)
        #expect(network.now == .us(50))
        #expect(node.transmitCount >= 50 * SimulatedNetwork.maximumStepsWithoutAdvance)
    }

    @Test func tapSeesDeliveries() {
        let (network, a, _) = pair(LinkProfile(delay: .milliseconds(3)))
        var seen: [(Instant, IPAddress, IPAddress, Int)] = []
        network.tap = { seen.append(($0, $1, $2, $3)) }
        a.queue(makePacket(from: addressA, to: addressB, tag: 1, size: 80))
        network.run(until: .ms(10))
        #expect(seen.count == 1)
        #expect(seen.first?.0 == .ms(3))
        #expect(seen.first?.1 == IPAddress(addressA) && seen.first?.2 == IPAddress(addressB) && seen.first?.3 == 80)
    }

    @Test func statisticsOfUnknownLinkAreZero() {
        let network = SimulatedNetwork(seed: 1)
        #expect(network.statistics(from: TestNode(addressA), to: TestNode(addressB)) == LinkStatistics())
    }
}
