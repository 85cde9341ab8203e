import PacketIO
import Testing
import Wire

/// A clock the test moves by hand.
final class ManualClock {
    var now: UInt64 = 1_000_000_000
}

/// Sends frames numbered `range` (the number sits after the Ethernet header) and flushes.
func sendNumbered<IO: PacketIO>(_ io: IO, _ range: Range<Int>) {
    for i in range {
        guard let buffer = io.nextTransmitBuffer() else { continue }
        EthernetHeader(destination: .broadcast, source: io.macAddress, etherType: 0x88B5).write(to: buffer)
        buffer.storeBytes(of: UInt32(i).bigEndian, toByteOffset: 14, as: UInt32.self)
        for j in 18..<64 { buffer[j] = UInt8(truncatingIfNeeded: i &* 31 &+ j) }
        io.commitTransmit(length: 64)
    }
    io.flush()
}

/// Receives everything waiting and returns the frame numbers in arrival order.
func receiveNumbers<IO: PacketIO>(_ io: IO) -> [Int] {
    var numbers: [Int] = []
    while io.receive(
        limit: 64,
        { frame in numbers.append(Int(UInt32(bigEndian: frame.loadUnaligned(fromByteOffset: 14, as: UInt32.self)))) })
        > 0
    {}
    return numbers
}

@Suite struct ImpairedPacketIOTests {
    @Test func noImpairmentPassesEverythingInOrder() {
        let link = MemoryLink()
        let impaired = ImpairedPacketIO(base: link.a, seed: 1)
        sendNumbered(impaired, 0..<100)
        #expect(receiveNumbers(link.b) == Array(0..<100))
        #expect(impaired.transmitCounters.passed == 100)
    }

    @Test func lossRateStaysWithinBounds() {
        let link = MemoryLink(capacity: 20_000)
        let impaired = ImpairedPacketIO(base: link.a, transmit: Impairment(lossRate: 0.1), seed: 7)
        sendNumbered(impaired, 0..<10_000)
        let received = receiveNumbers(link.b)
        #expect(received.count + impaired.transmitCounters.dropped == 10_000)
        #expect((8_700...9_300).contains(received.count), "received \(received.count) of 10000 at 10% loss")
        #expect(received == received.sorted())
    }

    @Test func sameSeedSameFaultsOtherSeedOthers() {
        func run(seed: UInt64) -> [Int] {
            let link = MemoryLink(capacity: 4096)
            let clock = ManualClock()
            let rules = Impairment(lossRate: 0.1, duplicateRate: 0.1, reorderRate: 0.1, corruptRate: 0.1)
            let impaired = ImpairedPacketIO(base: link.a, transmit: rules, seed: seed, clock: { clock.now })
            sendNumbered(impaired, 0..<1000)
            clock.now += 10_000_000
            impaired.flush()
            return receiveNumbers(link.b)
        }
        #expect(run(seed: 42) == run(seed: 42))
        #expect(run(seed: 42) != run(seed: 43))
    }

    @Test func corruptionFlipsExactlyOneBitAfterTheEthernetHeader() throws {
        let link = MemoryLink()
        let impaired = ImpairedPacketIO(base: link.b, receive: Impairment(corruptRate: 1), seed: 3)
        var original = [UInt8](repeating: 0, count: 64)
        for i in 0..<64 { original[i] = UInt8(truncatingIfNeeded: i &* 37) }
        for _ in 0..<50 {
            original.withUnsafeBytes { link.b.deliver($0) }
            var received: [UInt8] = []
            #expect(impaired.receive(limit: 8) { received = Array($0) } == 1)
            try #require(received.count == 64)
            let flipped = zip(original, received).map { ($0 ^ $1).nonzeroBitCount }
            #expect(flipped.reduce(0, +) == 1)
            #expect(flipped[0..<14].allSatisfy { $0 == 0 })
        }
        #expect(impaired.receiveCounters.corrupted == 50)
    }

    @Test func reorderingHappensAndLosesNothing() {
        let link = MemoryLink(capacity: 4096)
        let clock = ManualClock()
        let rules = Impairment(reorderRate: 0.2, reorderDepth: 3)
        let impaired = ImpairedPacketIO(base: link.a, transmit: rules, seed: 11, clock: { clock.now })
        sendNumbered(impaired, 0..<1000)
        // Frames reordered near the end wait for their timeout.
        clock.now += rules.reorderTimeout
        impaired.flush()
        let received = receiveNumbers(link.b)
        #expect(received.sorted() == Array(0..<1000))
        let inversions = zip(received, received.dropFirst()).filter { $0 > $1 }.count
        #expect(inversions > 100, "\(inversions) inversions")
        #expect((150...250).contains(impaired.transmitCounters.reordered))
        #expect(impaired.heldFrames.transmit == 0)
    }

    @Test func duplicatesArriveTwice() {
        let link = MemoryLink(capacity: 4096)
        let impaired = ImpairedPacketIO(base: link.a, transmit: Impairment(duplicateRate: 0.5), seed: 5)
        sendNumbered(impaired, 0..<1000)
        let received = receiveNumbers(link.b)
        #expect(received.count == 1000 + impaired.transmitCounters.duplicated)
        #expect((400...600).contains(impaired.transmitCounters.duplicated))
        #expect(Set(received).count == 1000)
    }

    @Test func receiveDelayHoldsFramesUntilTheClockPassesIt() {
        let link = MemoryLink()
        let clock = ManualClock()
        let impaired = ImpairedPacketIO(
            base: link.b, receive: Impairment(delay: 5_000_000), seed: 9, clock: { clock.now })
        sendNumbered(link.a, 0..<10)
        #expect(receiveNumbers(impaired).isEmpty)
        #expect(impaired.heldFrames.receive == 10)
        #expect(impaired.nextReleaseTime == clock.now + 5_000_000)
        clock.now += 4_999_999
        #expect(receiveNumbers(impaired).isEmpty)
        clock.now += 1
        #expect(receiveNumbers(impaired) == Array(0..<10))
        #expect(impaired.receiveCounters.delayed == 10)
        #expect(impaired.nextReleaseTime == nil)
    }

    @Test func fullPoolDropsAndCounts() {
        let link = MemoryLink()
        let clock = ManualClock()
        let impaired = ImpairedPacketIO(
            base: link.b, receive: Impairment(delay: 1_000), seed: 9, poolCapacity: 4, clock: { clock.now })
        sendNumbered(link.a, 0..<10)
        #expect(receiveNumbers(impaired).isEmpty)
        #expect(impaired.receiveCounters.overflowed == 6)
        #expect(impaired.statistics.receiveDrops == 6)
        clock.now += 1_000
        #expect(receiveNumbers(impaired) == [0, 1, 2, 3])
    }

    @Test func receiveLimitIsKeptWhenDuplicating() {
        let link = MemoryLink()
        let impaired = ImpairedPacketIO(base: link.b, receive: Impairment(duplicateRate: 1), seed: 2)
        sendNumbered(link.a, 0..<3)
        var got: [Int] = []
        for _ in 0..<10 {
            let n = impaired.receive(limit: 2) { frame in
                got.append(Int(UInt32(bigEndian: frame.loadUnaligned(fromByteOffset: 14, as: UInt32.self))))
            }
            #expect(n <= 2)
        }
        #expect(got == [0, 0, 1, 1, 2, 2])
    }
}
