import TCP
import Testing
import Wire

@Suite struct SYNCookieTests {
    let codec = SYNCookieCodec(secret: (0x1111_2222_3333_4444, 0x5555_6666_7777_8888))
    let start = Instant(nanoseconds: 1_000 * 1_000_000_000)
    let clientISN = SequenceNumber(0xdead_beef)

    func encode(mss: UInt16, clientISN: SequenceNumber? = nil, at t: Instant) -> (
        isn: SequenceNumber, encodedMSS: UInt16
    ) {
        codec.encode(
            localAddress: IPAddress(IPv4Address(rawValue: 0xc0a8_0001)), localPort: 443,
            remoteAddress: IPAddress(IPv4Address(rawValue: 0xc0a8_0002)), remotePort: 51_000,
            clientISN: clientISN ?? self.clientISN, mss: mss, now: t)
    }

    func decode(
        _ cookie: SequenceNumber, codec: SYNCookieCodec? = nil, remotePort: UInt16 = 51_000,
        clientISN: SequenceNumber? = nil, at t: Instant
    ) -> UInt16? {
        (codec ?? self.codec).decode(
            cookie: cookie, localAddress: IPAddress(IPv4Address(rawValue: 0xc0a8_0001)), localPort: 443,
            remoteAddress: IPAddress(IPv4Address(rawValue: 0xc0a8_0002)),
            remotePort: remotePort, clientISN: clientISN ?? self.clientISN, now: t)
    }

    @Test func picksLargestTableEntryNotAboveMSS() {
        let cases: [(UInt16, UInt16)] = [
            (1460, 1460), (9000, 1460), (1459, 1440), (1440, 1440), (1400, 1300), (1300, 1300),
            (1299, 536), (536, 536), (100, 536),
        ]
        for (mss, expected) in cases {
            let (cookie, encoded) = encode(mss: mss, at: start)
            #expect(encoded == expected, "mss \(mss)")
            #expect(decode(cookie, at: start) == expected, "mss \(mss)")
        }
    }

    @Test func validForTheCurrentAndNextPeriodOnly() {
        let period = SYNCookieCodec.period
        // Made at the very start of a period (1024 s = 16 periods).
        let made = Instant(nanoseconds: 16 * period.nanoseconds)
        let (cookie, _) = encode(mss: 1460, at: made)
        #expect(decode(cookie, at: made + .seconds(63)) == 1460)
        #expect(decode(cookie, at: made + period) == 1460)
        #expect(decode(cookie, at: made + period + .seconds(63)) == 1460)
        #expect(decode(cookie, at: made + period * 2) == nil)
        #expect(decode(cookie, at: made + period * 200) == nil)
        // A cookie from the future (clock earlier than when it was made) is rejected.
        #expect(decode(cookie, at: Instant(nanoseconds: made.nanoseconds - 1)) == nil)
    }

    @Test func rejectsCookiesForOtherConnectionsOrSecrets() {
        let (cookie, _) = encode(mss: 1460, at: start)
        #expect(decode(cookie, remotePort: 51_001, at: start) == nil)
        #expect(decode(cookie, clientISN: clientISN + 1, at: start) == nil)
        let otherCodec = SYNCookieCodec(secret: (0x1111_2222_3333_4444, 0x5555_6666_7777_8889))
        #expect(decode(cookie, codec: otherCodec, at: start) == nil)
        #expect(decode(cookie + 0x0100_0000, at: start) == nil)
        #expect(decode(cookie + 4, at: start) == nil)
    }

    @Test func forgedCookiesAreMostlyRejected() {
        // Random guesses pass only if the low 24 bits hit one of 4 values in a valid period:
        // about 8 in 2^32; none of 10,000 fixed guesses should.
        var accepted = 0
        var x: UInt32 = 0x1234_5678
        for _ in 0..<10_000 {
            x = x &* 1_664_525 &+ 1_013_904_223
            if decode(SequenceNumber(x), at: start) != nil { accepted += 1 }
        }
        #expect(accepted == 0)
    }

    @Test func differentClientsGetDifferentCookies() {
        let a = encode(mss: 1460, at: start).isn
        let b = encode(mss: 1460, clientISN: clientISN + 1, at: start).isn
        #expect(a != b)
        #expect(decode(b, clientISN: clientISN + 1, at: start) == 1460)
    }

    @Test func timestampCarriesWindowScaleAndSACK() {
        let now = Instant(nanoseconds: 123_456_789_000_000)
        let clock = now.milliseconds32
        for wscale: UInt8? in [nil, 0, 7, 14] {
            for sack in [false, true] {
                let ts = codec.encodeTimestamp(wscale: wscale, sackPermitted: sack, now: now)
                #expect(ts <= clock && clock - ts < 64)
                let decoded = codec.decodeTimestamp(ts)
                #expect(decoded.wscale == wscale)
                #expect(decoded.sackPermitted == sack)
            }
        }
        // Scales above RFC 7323's limit of 14 are clamped.
        #expect(codec.decodeTimestamp(codec.encodeTimestamp(wscale: 20, sackPermitted: false, now: now)).wscale == 14)
    }
}
