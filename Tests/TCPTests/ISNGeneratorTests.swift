import TCP
import Testing
import Wire

@Suite struct ISNGeneratorTests {
    let generator = ISNGenerator(secret: (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210))
    let now = Instant(nanoseconds: 5_000_000_000)

    func isn(_ g: ISNGenerator, localPort: UInt16 = 80, remotePort: UInt16 = 40_000, at t: Instant) -> SequenceNumber {
        g.isn(
            localAddress: IPAddress(IPv4Address(rawValue: 0x0a00_0001)), localPort: localPort,
            remoteAddress: IPAddress(IPv4Address(rawValue: 0x0a00_0002)), remotePort: remotePort, now: t)
    }

    @Test func deterministicForSameInputs() {
        #expect(isn(generator, at: now) == isn(generator, at: now))
    }

    @Test func differentTuplesDiffer() {
        var seen = Set<UInt32>()
        for port in UInt16(40_000)..<40_100 { seen.insert(isn(generator, remotePort: port, at: now).rawValue) }
        #expect(seen.count == 100)
        #expect(isn(generator, localPort: 81, at: now) != isn(generator, at: now))
        let swapped = generator.isn(
            localAddress: IPAddress(IPv4Address(rawValue: 0x0a00_0002)), localPort: 80,
            remoteAddress: IPAddress(IPv4Address(rawValue: 0x0a00_0001)), remotePort: 40_000, now: now)
        #expect(swapped != isn(generator, at: now))
    }

    @Test func sameTupleLaterIsLarger() {
        let earlier = isn(generator, at: now)
        let later = isn(generator, at: now + .milliseconds(1))
        #expect(earlier < later)
        // The clock ticks every 4 microseconds: 1 ms is 250 ticks.
        #expect(later - earlier == 250)
        #expect(isn(generator, at: now + .microseconds(3)) == earlier)
        #expect(isn(generator, at: now + .microseconds(4)) == earlier + 1)
    }

    @Test func counterWrapsModulo32Bits() {
        // 2^32 ticks of 4 us later the clock part is the same again.
        let wrapped = Instant(nanoseconds: now.nanoseconds + (UInt64(1) << 32) * 4_000)
        #expect(isn(generator, at: wrapped) == isn(generator, at: now))
    }

    @Test func secretMatters() {
        let other = ISNGenerator(secret: (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3211))
        #expect(isn(other, at: now) != isn(generator, at: now))
    }
}
