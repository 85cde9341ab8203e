import TCP
import Wire

/// Linux's epoll event bits.
public enum EpollFlags {
    public static let EPOLLIN: UInt32 = 0x001
    public static let EPOLLPRI: UInt32 = 0x002
    public static let EPOLLOUT: UInt32 = 0x004
    public static let EPOLLERR: UInt32 = 0x008
    public static let EPOLLHUP: UInt32 = 0x010
    public static let EPOLLRDNORM: UInt32 = 0x040
    public static let EPOLLWRNORM: UInt32 = 0x100
    public static let EPOLLRDHUP: UInt32 = 0x2000
    public static let EPOLLEXCLUSIVE: UInt32 = 1 << 28
    public static let EPOLLONESHOT: UInt32 = 1 << 30
    public static let EPOLLET: UInt32 = 1 << 31
}

/// epoll_ctl's operations, with Linux's values.
public enum EpollOperation: Int32, Sendable {
    case add = 1
    case delete = 2
    case modify = 3
}

/// One reported event, laid out as Linux's packed `struct epoll_event` fields.
public struct EpollEvent: Hashable, Sendable {
    public var events: UInt32
    public var data: UInt64
    public init(events: UInt32 = 0, data: UInt64 = 0) {
        self.events = events
        self.data = data
    }
}

/// An epoll instance: registrations and a ready list of sockets that may have something to
/// report. Readiness changes put sockets on the list; waits never scan every socket.
struct EventPollSet {
    struct Registration {
        var interest: UInt32
        var data: UInt64
        /// Readiness edges seen since the last report (edge-triggered mode).
        var pendingEdges: UInt32 = 0
        /// One-shot registration that has fired; silent until modified.
        var disabled = false
        var queued = false
    }

    var registrations: [Int32: Registration] = [:]
    var ready: [Int32] = []

    mutating func forget(_ socket: Int32) {
        guard registrations.removeValue(forKey: socket) != nil else { return }
        ready.removeAll { $0 == socket }
    }
}

/// Readiness bits that are always reported, as Linux does.
let alwaysReported = EpollFlags.EPOLLERR | EpollFlags.EPOLLHUP

/// What may go with EPOLLEXCLUSIVE (Linux's EPOLLEXCLUSIVE_OK_BITS, EPOLLWAKEUP among them).
let exclusiveBits =
    EpollFlags.EPOLLIN | EpollFlags.EPOLLOUT | EpollFlags.EPOLLERR | EpollFlags.EPOLLHUP | 1 << 29
    | EpollFlags.EPOLLET | EpollFlags.EPOLLEXCLUSIVE

extension NetworkStack {
    /// epoll_create: a new, empty event poll set.
    public func epollCreate() -> Int32 {
        if let free = freeEpolls.popLast() {
            epolls[Int(free)] = EventPollSet()
            return free
        }
        epolls.append(EventPollSet())
        return Int32(epolls.count - 1)
    }

    /// Closes an event poll set.
    public func epollClose(_ epfd: Int32) throws(Errno) {
        guard epfd >= 0, Int(epfd) < epolls.count, let set = epolls[Int(epfd)] else { throw .EBADF }
        for socket in set.registrations.keys where sockets.contains(socket) {
            sockets.watchers[Int(socket)].removeAll { $0 == epfd }
        }
        epolls[Int(epfd)] = nil
        freeEpolls.append(epfd)
    }

    /// epoll_ctl: adds, modifies or deletes `socket`'s registration.
    public func epollControl(
        _ epfd: Int32, op: EpollOperation, socket: Int32, events: UInt32 = 0, data: UInt64 = 0
    ) throws(Errno) {
        guard epfd >= 0, Int(epfd) < epolls.count, epolls[Int(epfd)] != nil else { throw .EBADF }
        let s = try socketIndex(socket)
        let e = Int(epfd)
        let existing = epolls[e]!.registrations[socket]
        // EPOLLEXCLUSIVE as Linux takes it: with ADD only and a few other bits, and a
        // registration made with it cannot be modified.
        if op != .delete && events & EpollFlags.EPOLLEXCLUSIVE != 0 {
            if op == .modify || events & ~exclusiveBits != 0 { throw .EINVAL }
        }
        switch op {
        case .add:
            guard existing == nil else { throw .EEXIST }
            epolls[e]!.registrations[socket] = .init(interest: events, data: data)
            sockets.watchers[s].append(epfd)
        case .modify:
            guard var registration = existing else { throw .ENOENT }
            if registration.interest & EpollFlags.EPOLLEXCLUSIVE != 0 { throw .EINVAL }
            registration.interest = events
            registration.data = data
            registration.disabled = false
            epolls[e]!.registrations[socket] = registration
        case .delete:
            guard existing != nil else { throw .ENOENT }
            epolls[e]!.forget(socket)
            sockets.watchers[s].removeAll { $0 == epfd }
            return
        }
        // A registration sees the current state as an edge, as Linux's ep_insert/ep_modify do.
        arm(e, socket: socket, edges: readiness(s))
    }

    /// epoll_wait: runs a loop round, then reports ready sockets into `events`; waits up to
    /// `timeout` milliseconds (-1: forever, 0: not at all) when none is ready.
    public func epollWait(
        _ epfd: Int32, into events: UnsafeMutableBufferPointer<EpollEvent>, timeout: Int32
    ) throws(Errno) -> Int {
        guard epfd >= 0, Int(epfd) < epolls.count, epolls[Int(epfd)] != nil else { throw .EBADF }
        guard events.count > 0 else { throw .EINVAL }
        let e = Int(epfd)
        poll()
        var n = collect(e, into: events)
        if n > 0 || timeout == 0 { return n }
        let deadline = timeout < 0 ? Instant.never : clock() + .milliseconds(UInt64(timeout))
        while true {
            let woke = try block(until: deadline) { epolls[e].map { !$0.ready.isEmpty } ?? true }
            guard epolls[e] != nil else { throw .EBADF }
            n = collect(e, into: events)
            if n > 0 || !woke { return n }
        }
    }

    /// epoll_wait without a loop round and without waiting: reports what is ready now. For a
    /// caller that runs rounds itself and blocks elsewhere (the preload, in the kernel).
    public func epollReady(_ epfd: Int32, into events: UnsafeMutableBufferPointer<EpollEvent>) throws(Errno) -> Int {
        guard epfd >= 0, Int(epfd) < epolls.count, epolls[Int(epfd)] != nil else { throw .EBADF }
        guard events.count > 0 else { throw .EINVAL }
        return collect(Int(epfd), into: events)
    }

    /// True when the set's ready list holds a socket that may have an event to report (a
    /// collect may still find none: level-triggered entries are checked again when collected).
    public func epollHasReady(_ epfd: Int32) -> Bool {
        guard epfd >= 0, Int(epfd) < epolls.count, let set = epolls[Int(epfd)] else { return false }
        return !set.ready.isEmpty
    }

    /// Moves ready registrations into `out`, each socket at most once per call.
    func collect(_ e: Int, into out: UnsafeMutableBufferPointer<EpollEvent>) -> Int {
        var count = 0
        let initial = epolls[e]!.ready.count
        var processed = 0
        while processed < initial && count < out.count {
            let socket = epolls[e]!.ready[processed]
            processed += 1
            guard var registration = epolls[e]!.registrations[socket], registration.queued,
                sockets.contains(socket)
            else { continue }
            registration.queued = false
            if !registration.disabled {
                let wanted = registration.interest | alwaysReported
                let mask = readiness(Int(socket)) & wanted
                let edgeTriggered = registration.interest & EpollFlags.EPOLLET != 0
                if mask != 0 && (!edgeTriggered || registration.pendingEdges & wanted != 0) {
                    out[count] = EpollEvent(events: mask, data: registration.data)
                    count += 1
                    if registration.interest & EpollFlags.EPOLLONESHOT != 0 {
                        registration.disabled = true
                    } else if !edgeTriggered {
                        // Level-triggered: stays listed while ready (checked again next wait).
                        registration.queued = true
                        epolls[e]!.ready.append(socket)
                    }
                }
                registration.pendingEdges = 0
            }
            epolls[e]!.registrations[socket] = registration
        }
        epolls[e]!.ready.removeFirst(processed)
        return count
    }

    func arm(_ e: Int, socket: Int32, edges: UInt32) {
        guard var registration = epolls[e]!.registrations[socket], !registration.disabled else { return }
        let wanted = registration.interest | alwaysReported
        guard edges & wanted != 0 else { return }
        registration.pendingEdges |= edges
        if !registration.queued {
            registration.queued = true
            epolls[e]!.ready.append(socket)
        }
        epolls[e]!.registrations[socket] = registration
    }

    /// Tells every poll set watching `socket` that these readiness bits may have risen.
    func notify(_ socket: Int32, edges: UInt32) {
        guard sockets.contains(socket) else { return }
        let i = Int(socket)
        if sockets.watchers[i].isEmpty { return }
        for k in sockets.watchers[i].indices {
            let epfd = sockets.watchers[i][k]
            guard epolls[Int(epfd)] != nil else { continue }
            arm(Int(epfd), socket: socket, edges: edges)
        }
    }

    /// The socket's current epoll readiness, computed from its connection.
    func readiness(_ i: Int) -> UInt32 {
        // Fields read in place, and the connection's summary rather than a copy of it: this
        // runs for every ready socket an epoll_wait reports.
        guard let phase = sockets.slots[i]?.phase else { return 0 }
        var mask: UInt32 = sockets.slots[i]!.pendingError != nil ? EpollFlags.EPOLLERR : 0
        switch phase {
        case .listening:
            if endpoint.pendingAccepts(sockets.slots[i]!.listenerKey) > 0 { mask |= EpollFlags.EPOLLIN }
        case .fresh, .bound:
            // Linux reports an unconnected socket as writable and hung up.
            mask |= EpollFlags.EPOLLOUT | EpollFlags.EPOLLHUP
        case .connecting:
            break
        case .connected:
            guard let id = sockets.slots[i]!.connection, let status = endpoint.status(id) else {
                return mask | EpollFlags.EPOLLIN | EpollFlags.EPOLLOUT | EpollFlags.EPOLLHUP | EpollFlags.EPOLLRDHUP
            }
            let readShut = sockets.slots[i]!.readShut
            let writeShut = sockets.slots[i]!.writeShut
            let closed = status.state == .closed
            let readClosed = status.peerFinReceived || readShut
            if status.readableBytes > 0 || readClosed || status.error != nil || closed {
                mask |= EpollFlags.EPOLLIN
            }
            // Linux's tcp_poll: a closed socket (reset, or its close done) has both directions
            // shut down, so it reports EPOLLRDHUP too; nginx drops a reset connection on it.
            if readClosed || closed { mask |= EpollFlags.EPOLLRDHUP }
            if status.error != nil || (!writeShut && status.writableBytes > 0) {
                mask |= EpollFlags.EPOLLOUT
            }
            if closed || (readClosed && writeShut) { mask |= EpollFlags.EPOLLHUP }
        }
        return mask
    }

    /// Turns an endpoint event into socket state changes and readiness edges.
    func dispatch(_ event: TCPEndpointEvent) {
        switch event {
        case .acceptable(let key):
            if let listener = listenerByKey[key] { notify(listener, edges: EpollFlags.EPOLLIN) }
        case .connection(let connection, let events):
            let slot = Int(connection.slot)
            guard slot < ownerBySlot.count else { return }
            let id = ownerBySlot[slot]
            guard id >= 0, sockets.contains(id), sockets.slots[Int(id)]!.connection == connection else { return }
            let i = Int(id)
            var edges: UInt32 = 0
            if events.contains(.readable) { edges |= EpollFlags.EPOLLIN }
            if events.contains(.writable) || events.contains(.connected) { edges |= EpollFlags.EPOLLOUT }
            if events.contains(.peerClosed) { edges |= EpollFlags.EPOLLIN | EpollFlags.EPOLLRDHUP }
            if events.contains(.closed) { edges |= EpollFlags.EPOLLIN | EpollFlags.EPOLLHUP | EpollFlags.EPOLLRDHUP }
            if events.contains(.failed) {
                edges |=
                    EpollFlags.EPOLLERR | EpollFlags.EPOLLIN | EpollFlags.EPOLLOUT | EpollFlags.EPOLLHUP
                    | EpollFlags.EPOLLRDHUP
            }
            let error = endpoint.status(connection)?.error
            if sockets.slots[i]!.phase == .connecting {
                if events.contains(.connected) && error == nil {
                    sockets.slots[i]!.phase = .connected
                } else if let error {
                    connectFailed(i, error: Errno(rawValue: error.errno))
                } else if events.contains(.closed) {
                    connectFailed(i, error: .ECONNREFUSED)
                }
            } else if events.contains(.failed), let error {
                sockets.slots[i]!.pendingError = Errno(rawValue: error.errno)
            }
            notify(id, edges: edges)
        }
    }
}
