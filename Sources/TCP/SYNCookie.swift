import Wire

/// Stateless SYN cookies in the manner of Linux: the server's ISN carries a 64-second time
/// counter (top 8 bits) and an index into a table of four MSS values (low 24 bits, hidden
/// under a keyed hash), so a listener under SYN flood keeps no state until the final ACK.
///
///     isn = H1(4-tuple) + clientISN + (counter << 24) + ((H2(4-tuple, clientISN, counter) + index) mod 2^24)
public struct SYNCookieCodec: Sendable {
    /// MSS values a cookie can express, ascending.
    public static let mssTable: (UInt16, UInt16, UInt16, UInt16) = (536, 1300, 1440, 1460)
    /// Length of one counter period.
    public static let period = Interval.seconds(64)
    /// A cookie is accepted while the counter advanced by less than this many periods
    /// since it was made (as Linux's MAX_SYNCOOKIE_AGE), i.e. for 64 to 128 seconds.
    public static let maximumAge: UInt32 = 2

    private let key0: UInt64
    private let key1: UInt64

    /// Creates a codec with a 128-bit secret (pick it at random once per boot).
    public init(secret: (UInt64, UInt64)) {
        key0 = secret.0
        key1 = secret.1
    }

    private static func mss(at index: UInt32) -> UInt16? {
        switch index {
        case 0: return mssTable.0
        case 1: return mssTable.1
        case 2: return mssTable.2
        case 3: return mssTable.3
        default: return nil
        }
    }

    private static func counter(_ now: Instant) -> UInt32 {
        UInt32(truncatingIfNeeded: now.nanoseconds / period.nanoseconds)
    }

    /// Keyed hash of the 4-tuple, client ISN and counter; `domain` separates H1 from H2.
    private func hash(
        domain: UInt8, localAddress: IPAddress, localPort: UInt16, remoteAddress: IPAddress, remotePort: UInt16,
        clientISN: UInt32, counter: UInt32
    ) -> UInt32 {
        var hasher = SipHash24(key0: key0, key1: key1)
        hasher.add(domain)
        hasher.add(localAddress.high)
        hasher.add(localAddress.low)
        hasher.add(remoteAddress.high)
        hasher.add(remoteAddress.low)
        hasher.add(localPort)
        hasher.add(remotePort)
        hasher.add(clientISN)
        hasher.add(counter)
        return UInt32(truncatingIfNeeded: hasher.finalize())
    }

    /// The cookie ISN for a SYN and the MSS it encodes: the largest table entry not above
    /// `mss` (the smallest entry if `mss` is below all of them, as Linux does).
    public func encode(
        localAddress: IPAddress, localPort: UInt16, remoteAddress: IPAddress, remotePort: UInt16,
        clientISN: SequenceNumber, mss: UInt16, now: Instant
    ) -> (isn: SequenceNumber, encodedMSS: UInt16) {
        var index: UInt32 = 3
        while index > 0, let entry = Self.mss(at: index), entry > mss { index -= 1 }
        let count = Self.counter(now)
        let h1 = hash(
            domain: 1, localAddress: localAddress, localPort: localPort, remoteAddress: remoteAddress,
            remotePort: remotePort, clientISN: 0, counter: 0)
        let h2 = hash(
            domain: 2, localAddress: localAddress, localPort: localPort, remoteAddress: remoteAddress,
            remotePort: remotePort, clientISN: clientISN.rawValue, counter: count)
        let cookie = h1 &+ clientISN.rawValue &+ (count &<< 24) &+ ((h2 &+ index) & 0x00FF_FFFF)
        return (SequenceNumber(cookie), Self.mss(at: index) ?? Self.mssTable.0)
    }

    /// Checks the cookie returned in an ACK (its acknowledgment number minus one) and gives
    /// the encoded MSS, or nil if the cookie is forged or too old.
    public func decode(
        cookie ackNumberMinusOne: SequenceNumber, localAddress: IPAddress, localPort: UInt16,
        remoteAddress: IPAddress, remotePort: UInt16, clientISN: SequenceNumber, now: Instant
    ) -> UInt16? {
        let h1 = hash(
            domain: 1, localAddress: localAddress, localPort: localPort, remoteAddress: remoteAddress,
            remotePort: remotePort, clientISN: 0, counter: 0)
        let value = ackNumberMinusOne.rawValue &- h1 &- clientISN.rawValue
        let nowCount = Self.counter(now)
        // Only 8 counter bits travel; a cookie from the future gives a huge age and fails.
        let age = (nowCount &- (value >> 24)) & 0xFF
        guard age < Self.maximumAge else { return nil }
        let count = nowCount &- age
        let h2 = hash(
            domain: 2, localAddress: localAddress, localPort: localPort, remoteAddress: remoteAddress,
            remotePort: remotePort, clientISN: clientISN.rawValue, counter: count)
        let index = (value &- h2) & 0x00FF_FFFF
        return Self.mss(at: index)
    }

    /// A TSval for a cookie SYN-ACK whose 6 low bits carry the client's window scale
    /// (4 bits, 0xF = none) and SACK-permitted (bit 4), never later than `now`'s
    /// millisecond clock, as Linux does.
    public func encodeTimestamp(wscale: UInt8?, sackPermitted: Bool, now: Instant) -> UInt32 {
        var options: UInt32 = 0xF
        if let wscale { options = UInt32(Swift.min(wscale, 14)) }
        if sackPermitted { options |= 0x10 }
        let clock = now.milliseconds32
        var ts = (clock & ~0x3F) | options
        // Keep TSval at or before the clock so the peer never sees time run backwards.
        if ts > clock { ts &-= 0x40 }
        return ts
    }

    /// Recovers the options `encodeTimestamp` hid in a TSecr.
    public func decodeTimestamp(_ echo: UInt32) -> (wscale: UInt8?, sackPermitted: Bool) {
        let scale = UInt8(truncatingIfNeeded: echo & 0xF)
        return (scale == 0xF ? nil : scale, echo & 0x10 != 0)
    }
}
