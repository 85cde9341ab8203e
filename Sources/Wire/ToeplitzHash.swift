/// The Toeplitz hash NICs use for receive-side scaling (RSS), computed in software so that
/// every backend (DPDK queues, our own port choices for active opens) agrees with the NIC.
///
/// The input is the packet's source address, destination address, source port and
/// destination port in network byte order (12 bytes; 8 for the IPv4-only variant). Each set
/// input bit i XORs in the 32 key bits starting at key bit i. Tables hold, for every input
/// byte position and byte value, the XOR of the windows its set bits select, so a hash is
/// 12 table lookups and no bit loop.
public struct ToeplitzHash: Sendable {
    /// The key of "Scalable TCP Session Monitoring with Symmetric Receive-side Scaling"
    /// (Woo and Park): 0x6D, 0x5A repeated. Its bits repeat every 16, so swapping source and
    /// destination (a 32-bit shift for addresses, 16 for ports) gives the same hash: both
    /// directions of a flow land on one queue.
    public static let symmetricKey: [UInt8] = (0..<40).map { $0 % 2 == 0 ? 0x6D : 0x5A }

    /// Bytes of input with ports (source and destination address, source and destination port).
    static let inputLength = 12

    public let key: [UInt8]
    /// `inputLength` tables of 256 entries, one per input byte position.
    let table: [UInt32]

    /// A hash with `key` (at least 16 bytes: 12 input bytes need 96 + 31 key bits; NICs use 40).
    public init?(key: [UInt8] = ToeplitzHash.symmetricKey) {
        guard key.count >= ToeplitzHash.inputLength + 4 else { return nil }
        self.key = key
        var table = [UInt32](repeating: 0, count: ToeplitzHash.inputLength * 256)
        for position in 0..<ToeplitzHash.inputLength {
            // The 32-bit key window for each of this byte's 8 bits, most significant first.
            var windows = [UInt32](repeating: 0, count: 8)
            for bit in 0..<8 { windows[bit] = ToeplitzHash.window(key, at: position * 8 + bit) }
            for value in 0..<256 {
                var sum: UInt32 = 0
                for bit in 0..<8 where value & (0x80 >> bit) != 0 { sum ^= windows[bit] }
                table[position * 256 + value] = sum
            }
        }
        self.table = table
    }

    /// The 32 key bits starting at bit `start` (bit 0 is the first byte's most significant).
    static func window(_ key: [UInt8], at start: Int) -> UInt32 {
        var value: UInt32 = 0
        for i in 0..<32 {
            let bit = start + i
            let set = key[bit / 8] & (0x80 >> UInt8(bit % 8)) != 0
            value = value << 1 | (set ? 1 : 0)
        }
        return value
    }

    @inline(__always)
    func lookup(_ position: Int, _ byte: UInt32) -> UInt32 {
        table.withUnsafeBufferPointer { $0[position &* 256 &+ Int(byte & 0xFF)] }
    }

    @inline(__always)
    func word(_ value: UInt32, at position: Int) -> UInt32 {
        lookup(position, value >> 24) ^ lookup(position + 1, value >> 16) ^ lookup(position + 2, value >> 8)
            ^ lookup(position + 3, value)
    }

    /// The hash of a TCP/IPv4 packet from `source`:`sourcePort` to `destination`:`destinationPort`.
    public func hash(
        source: IPv4Address, destination: IPv4Address, sourcePort: UInt16, destinationPort: UInt16
    ) -> UInt32 {
        word(source.rawValue, at: 0) ^ word(destination.rawValue, at: 4)
            ^ word(UInt32(sourcePort) << 16 | UInt32(destinationPort), at: 8)
    }

    /// The IPv4-only hash (addresses without ports), as NICs use for non-TCP/UDP packets.
    public func hash(source: IPv4Address, destination: IPv4Address) -> UInt32 {
        word(source.rawValue, at: 0) ^ word(destination.rawValue, at: 4)
    }

    /// Entries of the redirection table NICs index with the hash's low bits.
    public static let redirectionEntries = 128

    /// The queue of `hash` among `queues`: entry `hash & 127` of a 128-entry redirection table
    /// filled round-robin (entry e holds queue e % queues), as drivers fill it by default.
    public static func queue(for hash: UInt32, queues: Int) -> Int {
        guard queues > 1 else { return 0 }
        return Int(hash & UInt32(redirectionEntries - 1)) % queues
    }

    /// The queue a packet from `remote`:`remotePort` to `local`:`localPort` arrives on.
    public func replyQueue(
        local: IPv4Address, localPort: UInt16, remote: IPv4Address, remotePort: UInt16, queues: Int
    ) -> Int {
        ToeplitzHash.queue(
            for: hash(source: remote, destination: local, sourcePort: remotePort, destinationPort: localPort),
            queues: queues)
    }

    /// The first port in `range` that, as our source port towards `remote`:`remotePort`,
    /// makes the replies arrive on queue `core` of `cores` (as mTCP's per-core port pools);
    /// nil when none does.
    public func sourcePort(
        for core: Int, of cores: Int, local: IPv4Address, remote: IPv4Address, remotePort: UInt16,
        in range: ClosedRange<UInt16>
    ) -> UInt16? {
        for port in range
        where replyQueue(local: local, localPort: port, remote: remote, remotePort: remotePort, queues: cores) == core {
            return port
        }
        return nil
    }
}
