import Stack
import TCP

/// mtcp_epoll: sockets go to the stack's event poll set; pipe ends are kept here.
extension MTCPContext {
    func epollCreate() throws(Errno) -> Int32 {
        let set = ContextEpoll(stackEpoll: stack.epollCreate())
        do {
            let id = try allocate(.epoll(set))
            epollSets.append(set)
            return id
        } catch {
            try? stack.epollClose(set.stackEpoll)
            throw error
        }
    }

    func epollSet(_ id: Int32) throws(Errno) -> ContextEpoll {
        guard case .epoll(let set) = try entry(id).descriptor else { throw .EINVAL }
        return set
    }

    func epollControl(_ epid: Int32, op: Int32, id: Int32, events: UInt32, data: UInt64) throws(Errno) {
        let set = try epollSet(epid)
        guard let operation = EpollOperation(rawValue: op) else { throw .EINVAL }
        guard id != epid else { throw .EINVAL }
        switch try entry(id).descriptor {
        case .socket(let s):
            try stack.epollControl(set.stackEpoll, op: operation, socket: s, events: events, data: data)
        case .pipeRead, .pipeWrite:
            let existing = set.pipes[id]
            switch operation {
            case .add:
                guard existing == nil else { throw .EEXIST }
            case .modify:
                guard existing != nil else { throw .ENOENT }
            case .delete:
                guard existing != nil else { throw .ENOENT }
                set.pipes.removeValue(forKey: id)
                return
            }
            // The current state counts as an edge, as Linux's ep_insert/ep_modify do.
            set.pipes[id] = ContextEpoll.PipeRegistration(
                interest: events, data: data, pendingEdges: pipeReadiness(id))
        case .epoll:
            throw .EINVAL
        }
    }

    /// Runs a round, reports what is ready, and waits up to `timeout` ms (-1: forever) when
    /// nothing is. Events are copied to `out` as mTCP's packed 12-byte structs.
    func epollWait(_ epid: Int32, into out: UnsafeMutableRawPointer, maxEvents: Int, timeout: Int32) throws(Errno)
        -> Int
    {
        let set = try epollSet(epid)
        guard maxEvents > 0 else { throw .EINVAL }
        if scratch.count < maxEvents {
            scratch.deallocate()
            scratch = .allocate(capacity: maxEvents)
        }
        round()
        let deadline = self.deadline(milliseconds: timeout)
        var timedOut = timeout == 0
        while true {
            var n = set.pipes.isEmpty ? 0 : collectPipes(set, limit: maxEvents)
            if n < maxEvents {
                n += try stack.epollReady(
                    set.stackEpoll, into: UnsafeMutableBufferPointer(rebasing: scratch[n..<maxEvents]))
            }
            if n > 0 {
                for i in 0..<n {
                    out.storeBytes(of: scratch[i].events, toByteOffset: i * 12, as: UInt32.self)
                    out.storeBytes(of: scratch[i].data, toByteOffset: i * 12 + 4, as: UInt64.self)
                }
                return n
            }
            if timedOut { return 0 }
            let outcome = try wait(until: deadline) {
                stack.epollHasReady(set.stackEpoll) || (!set.pipes.isEmpty && pipesReady(set))
            }
            if case .epoll(let current) = try entry(epid).descriptor, current === set {} else { throw .EBADF }
            // After the deadline, one last look: readiness may have come with the final round.
            timedOut = outcome == .timedOut || stack.clock() >= deadline
        }
    }

    func pipesReady(_ set: ContextEpoll) -> Bool {
        for (id, registration) in set.pipes where !registration.disabled {
            let wanted = registration.interest | EpollFlags.EPOLLERR | EpollFlags.EPOLLHUP
            let mask = pipeReadiness(id) & wanted
            let edgeTriggered = registration.interest & EpollFlags.EPOLLET != 0
            if mask != 0 && (!edgeTriggered || registration.pendingEdges & wanted != 0) { return true }
        }
        return false
    }

    func collectPipes(_ set: ContextEpoll, limit: Int) -> Int {
        var n = 0
        for id in set.pipes.keys {
            guard n < limit, var registration = set.pipes[id], !registration.disabled else { continue }
            let wanted = registration.interest | EpollFlags.EPOLLERR | EpollFlags.EPOLLHUP
            let mask = pipeReadiness(id) & wanted
            let edgeTriggered = registration.interest & EpollFlags.EPOLLET != 0
            if mask != 0 && (!edgeTriggered || registration.pendingEdges & wanted != 0) {
                scratch[n] = EpollEvent(events: mask, data: registration.data)
                n += 1
                if registration.interest & EpollFlags.EPOLLONESHOT != 0 { registration.disabled = true }
            }
            registration.pendingEdges = 0
            set.pipes[id] = registration
        }
        return n
    }
}
