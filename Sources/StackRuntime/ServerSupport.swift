import Glibc
import PacketIO
import Stack
import Wire

extension NetworkStack {
    /// A non-blocking listening socket on `port` (any local address, SO_REUSEADDR) registered
    /// for EPOLLIN in a new epoll set, its data the listener's id: how the example servers start.
    /// With IPv6 on, one dual-stack socket on `::` takes both families.
    public func openListener(port: UInt16, backlog: Int = 4096) throws(Errno) -> (listener: Int32, epoll: Int32) {
        let listener = try socket(inet6: ipv6Enabled)
        try setNonBlocking(listener)
        try setsockopt(listener, level: SOL_SOCKET, name: SO_REUSEADDR, 1)
        try bind(listener, address: .wildcard(ipv6: ipv6Enabled), port: port)
        try listen(listener, backlog: backlog)
        let epfd = epollCreate()
        try epollControl(epfd, op: .add, socket: listener, events: EpollFlags.EPOLLIN, data: UInt64(listener))
        return (listener, epfd)
    }
}
