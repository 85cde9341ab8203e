import TCP
import Wire

/// A participant in a `SimulatedNetwork` that exchanges raw IPv4 or IPv6 packets.
public protocol SimulatedNode: AnyObject {
    /// The address packets for this node are routed to (IPv4 ones v4-mapped).
    var address: IPAddress { get }
    /// Called when a packet arrives at the node.
    func receive(packet: UnsafeRawBufferPointer, now: Instant)
    /// Called after every delivery and timer wake-up: the node hands each packet it wants to send to `send` (the bytes are copied at once).
    func transmit(now: Instant, send: (UnsafeRawBufferPointer) -> Void)
    /// The next instant the node wants `transmit` called even if nothing arrives (its earliest timer), or nil.
    var nextWakeup: Instant? { get }
}
