import Synchronization
import Wire

/// Neighbours learned by any stack instance of a process. With several instances on one
/// interface, the kernel's fanout hands an ARP reply to whichever instance its hash picks, not
/// necessarily the one that asked; instances publish what they learn here and consult it on
/// a miss. ARP traffic is rare, so one lock is fine; the per-packet path never touches it
/// (each instance keeps its own `ARPCache`).
public final class SharedNeighbours: Sendable {
    let table = Mutex<[IPAddress: MACAddress]>([:])
    let generation = Atomic<UInt64>(0)

    public init() {}

    public func publish(_ address: IPAddress, _ mac: MACAddress) {
        let changed = table.withLock { table -> Bool in
            if table[address] == mac { return false }
            table[address] = mac
            return true
        }
        if changed { generation.add(1, ordering: .releasing) }
    }

    public func lookup(_ address: IPAddress) -> MACAddress? {
        table.withLock { $0[address] }
    }

    /// Bumped on every change: an instance rechecks its unresolved addresses only when it moved.
    public var version: UInt64 { generation.load(ordering: .acquiring) }
}
