import TCP
import Wire

/// One stream socket's state in a stack's socket table.
struct Socket {
    /// Where a socket is in the BSD socket life cycle.
    enum Phase {
        case fresh
        case bound
        case listening
        case connecting
        case connected
    }

    var phase = Phase.fresh
    /// An AF_INET6 socket: IPv6 peers, and IPv4 ones v4-mapped unless `v6Only`.
    var inet6 = false
    var v6Only = false
    var localAddress = IPAddress(IPv4Address.any)
    var localPort: UInt16 = 0
    var remoteAddress = IPAddress(IPv4Address.any)
    var remotePort: UInt16 = 0
    var connection: ConnectionID?
    var nonBlocking = false
    /// SO_ERROR: the pending error, read-and-clear.
    var pendingError: Errno?
    var readShut = false
    var writeShut = false
    var options = SocketOptions()

    /// Bound by `bind` or by `listen`'s automatic bind (counted in the port table).
    var boundExplicitly = false
    /// This socket holds a claim on its local port in the shared `PortClaims` table.
    var claimsPort = false
    /// The application waits on this listener (accept or poll): it may take over the port
    /// from a process that no longer runs.
    var interested = false

    /// The wildcard address of the socket's family.
    var wildcard: IPAddress { .wildcard(ipv6: inet6) }

    /// The endpoint's name for this socket's listener.
    var listenerKey: ListenerKey { ListenerKey(port: localPort, family: family) }

    /// The listener family of a socket bound to `localAddress`.
    var family: ListenerFamily { ListenerFamily(address: localAddress, v6Only: v6Only) }
}
