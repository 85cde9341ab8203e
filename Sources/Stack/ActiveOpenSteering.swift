import CShim
import Wire

/// How an instance that shares a link with sibling instances picks the local port of an active
/// open, so that the replies come back to it rather than to a sibling (which would reset them).
public enum ActiveOpenSteering: Sendable {
    /// AF_PACKET fanout steered by the TCP port mix (`AFPacketRing.FanoutSteering.portSum`):
    /// member `mtcp_shim_port_mix(ports) % count` receives the flow; this is member `index`.
    case portSum(index: Int, count: Int)
    /// A NIC queue under receive-side scaling: the reply's Toeplitz hash and the redirection
    /// table pick the queue; this instance owns `queue`.
    case rss(RSSSteering, queue: Int)

    /// True when replies from `remote`:`remotePort` to `local`:`localPort` reach this instance.
    @inline(__always)
    public func returns(local: IPv4Address, localPort: UInt16, remote: IPv4Address, remotePort: UInt16) -> Bool {
        switch self {
        case .portSum(let index, let count):
            return count <= 1 || Int(mtcp_shim_port_mix(localPort, remotePort)) % count == index
        case .rss(let steering, let queue):
            return steering.replyQueue(local: local, localPort: localPort, remote: remote, remotePort: remotePort)
                == queue
        }
    }

    /// `returns` for a flow of either family. The port mix reads an IPv6 segment's ports too
    /// (mtcp_shim_packet_fanout_port_sum); RSS here hashes IPv4 tuples only, so an IPv6
    /// flow's queue is not predicted (any port is taken).
    public func returns(local: IPAddress, localPort: UInt16, remote: IPAddress, remotePort: UInt16) -> Bool {
        if let l = local.ipv4, let r = remote.ipv4 {
            return returns(local: l, localPort: localPort, remote: r, remotePort: remotePort)
        }
        if case .portSum = self {
            return returns(local: .any, localPort: localPort, remote: .any, remotePort: remotePort)
        }
        return true
    }

    /// False when there is nothing to steer (a fanout group of one).
    public var constrains: Bool {
        switch self {
        case .portSum(_, let count): count > 1
        case .rss: true
        }
    }
}
