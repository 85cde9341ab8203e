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

    /// False when there is nothing to steer (a fanout group of one).
    public var constrains: Bool {
        switch self {
        case .portSum(_, let count): count > 1
        case .rss: true
        }
    }
}
