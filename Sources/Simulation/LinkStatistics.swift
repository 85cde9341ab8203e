/// Counters for one direction of a simulated link.
public struct LinkStatistics: Sendable, Equatable {
    /// Packets handed to the link (including those later dropped).
    public var sent = 0
    /// Packets delivered to the receiving node, duplicate copies included.
    public var delivered = 0
    /// Packets dropped by `lossRate`.
    public var dropped = 0
    /// Packets tail-dropped because the serialization queue was full.
    public var queueDrops = 0
    /// Extra copies created by `duplicateRate`.
    public var duplicated = 0
    /// Packets with a bit flipped by `corruptRate`.
    public var corrupted = 0
    /// Packets held back by `reorderRate`.
    public var reordered = 0
    /// Packets dropped for exceeding the link MTU.
    public var oversize = 0
    /// Bytes delivered, duplicate copies included.
    public var bytesDelivered = 0

    /// All counters zero.
    public init() {}
}
