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
    var localAddress = IPv4Address.any
    var localPort: UInt16 = 0
    var remoteAddress = IPv4Address.any
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
}
