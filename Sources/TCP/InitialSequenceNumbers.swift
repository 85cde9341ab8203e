import Wire

/// Initial sequence numbers per RFC 6528: ISN = M + F(4-tuple, secret), where M is a
/// 4-microsecond clock and F is SipHash-2-4, so that ISNs of one connection identity keep
/// increasing while another host cannot predict them.
public struct ISNGenerator: Sendable {
    private let key0: UInt64
    private let key1: UInt64

    /// Creates a generator with a 128-bit secret (pick it at random once per boot).
    public init(secret: (UInt64, UInt64)) {
        key0 = secret.0
        key1 = secret.1
    }

    /// The ISN for a new connection on this 4-tuple (addresses and ports in host order) at `now`.
    public func isn(
        localAddress: IPAddress, localPort: UInt16, remoteAddress: IPAddress, remotePort: UInt16, now: Instant
    ) -> SequenceNumber {
        var hasher = SipHash24(key0: key0, key1: key1)
        hasher.add(localAddress.high)
        hasher.add(localAddress.low)
        hasher.add(remoteAddress.high)
        hasher.add(remoteAddress.low)
        hasher.add(localPort)
        hasher.add(remotePort)
        let f = UInt32(truncatingIfNeeded: hasher.finalize())
        let m = UInt32(truncatingIfNeeded: now.nanoseconds / 4_000)
        return SequenceNumber(m &+ f)
    }

    /// The TCP timestamp offset for connections between these two addresses (RFC 7323 7.1):
    /// secret, so timestamps do not reveal uptime, but the same for every connection of the
    /// pair, so a new connection's timestamps are newer than an old one's — which lets a peer
    /// holding the old 4-tuple in TIME-WAIT accept the new SYN (RFC 6191), as Linux does.
    public func timestampOffset(localAddress: IPAddress, remoteAddress: IPAddress) -> UInt32 {
        var hasher = SipHash24(key0: key1 ^ 0x7473_6f66_6673_6574, key1: key0)
        hasher.add(localAddress.high)
        hasher.add(localAddress.low)
        hasher.add(remoteAddress.high)
        hasher.add(remoteAddress.low)
        return UInt32(truncatingIfNeeded: hasher.finalize())
    }
}
