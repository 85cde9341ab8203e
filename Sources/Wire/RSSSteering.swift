/// How a NIC's receive-side scaling picks the queue of a TCP/IPv4 packet: the Toeplitz hash of
/// its addresses and ports selects an entry of the redirection table, which names the queue.
///
/// A stack instance on one queue uses it for active opens: it picks source ports whose replies
/// hash to an entry holding its own queue (mTCP's per-core port pools). With a symmetric key
/// both directions of a flow hash alike, so the flow's every packet lands on that queue.
public struct RSSSteering: Sendable {
    public let hash: ToeplitzHash
    /// The queue of each redirection table entry, as the port was programmed.
    public let redirection: [UInt16]

    /// Steering by `key` and `redirection`; nil when the key is too short for TCP/IPv4 input
    /// (16 bytes) or the table is empty.
    public init?(key: [UInt8], redirection: [UInt16]) {
        guard !redirection.isEmpty, let hash = ToeplitzHash(key: key) else { return nil }
        self.hash = hash
        self.redirection = redirection
    }

    /// A table of `entries` filled round-robin over `queues` (entry e holds queue e % queues):
    /// how drivers fill it by default and how our DPDK port programs it.
    public static func roundRobin(entries: Int, queues: Int) -> [UInt16] {
        (0..<max(0, entries)).map { UInt16(truncatingIfNeeded: $0 % max(1, queues)) }
    }

    /// The entry NICs read for `hash`: the hash modulo the table size (the hash's low bits, as
    /// tables have power-of-two sizes).
    @inline(__always)
    public func queue(forHash value: UInt32) -> Int {
        redirection.withUnsafeBufferPointer { Int($0[Int(value % UInt32(truncatingIfNeeded: $0.count))]) }
    }

    /// The queue a packet from `source`:`sourcePort` to `destination`:`destinationPort` arrives on.
    public func queue(
        source: IPv4Address, destination: IPv4Address, sourcePort: UInt16, destinationPort: UInt16
    ) -> Int {
        queue(
            forHash: hash.hash(
                source: source, destination: destination, sourcePort: sourcePort, destinationPort: destinationPort))
    }

    /// The queue replies from `remote`:`remotePort` to our `local`:`localPort` arrive on.
    public func replyQueue(local: IPv4Address, localPort: UInt16, remote: IPv4Address, remotePort: UInt16) -> Int {
        queue(source: remote, destination: local, sourcePort: remotePort, destinationPort: localPort)
    }
}
