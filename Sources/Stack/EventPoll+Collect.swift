/// Event poll access for callers that run loop rounds and block themselves (the preload
/// library drives the stack under its own lock and sleeps in the kernel).
extension NetworkStack {
    /// Collects ready events like `epollWait`, without a loop round and without blocking.
    public func epollReady(_ epfd: Int32, into events: UnsafeMutableBufferPointer<EpollEvent>) throws(Errno) -> Int {
        guard epfd >= 0, Int(epfd) < epolls.count, epolls[Int(epfd)] != nil else { throw .EBADF }
        guard events.count > 0 else { throw .EINVAL }
        return collect(Int(epfd), into: events)
    }

    /// Whether the set's ready list is non-empty (it may hold entries that turn out stale).
    public func epollHasReady(_ epfd: Int32) -> Bool {
        guard epfd >= 0, Int(epfd) < epolls.count, let set = epolls[Int(epfd)] else { return false }
        return !set.ready.isEmpty
    }
}
