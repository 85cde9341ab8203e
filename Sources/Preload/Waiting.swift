import CPreload
import CShim
import Glibc
import Stack
import StackRuntime

/// poll(2) over stack and kernel descriptors together: the one way every blocking call of the
/// library waits (poll, ppoll, select, pselect, and blocking accept, connect, read and write).
///
/// Each turn runs a loop round and reads the stack sockets' readiness. When nothing is ready
/// the stack sockets are registered in a wait set, and the thread sleeps in the kernel's
/// ppoll on the kernel descriptors, the wait set's eventfd (written by whichever thread's
/// round makes one of them ready) and the link (packets: this thread then drives the round
/// itself), bounded by the stack's next timer.
extension PreloadRuntime {
    /// Like ppoll: the number of entries with events, 0 on timeout, -1 with errno (EINTR).
    /// `timeout` in nanoseconds, negative for none; `mask` is applied only while sleeping.
    func poll(
        _ fds: UnsafeMutablePointer<pollfd>, _ count: Int, timeout: Int64, mask: UnsafePointer<sigset_t>?
    ) -> Int32 {
        let deadline = timeout < 0 ? UInt64.max : mtcp_shim_monotonic_ns() &+ UInt64(timeout)
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: max(count, 1)) { records in
            withUnsafeTemporaryAllocation(of: pollfd.self, capacity: count + 2) { kernel in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: count + 2) { origin in
                    pollTurns(
                        fds, count, deadline: deadline, mask: mask, records: records.baseAddress!,
                        kernel: kernel.baseAddress!, origin: origin.baseAddress!)
                }
            }
        }
    }

    private func pollTurns(
        _ fds: UnsafeMutablePointer<pollfd>, _ count: Int, deadline: UInt64, mask: UnsafePointer<sigset_t>?,
        records recordOf: UnsafeMutablePointer<Int>, kernel: UnsafeMutablePointer<pollfd>,
        origin: UnsafeMutablePointer<Int>
    ) -> Int32 {
        while true {
            mtcp_lock()
            drive()
            var stackReady = 0
            var stackItems = 0
            for i in 0..<count {
                fds[i].revents = 0
                recordOf[i] = -1
                let entry = mtcp_fd_entry(fds[i].fd)
                guard entry != 0, let r = adoptedRecord(entry), let stack else { continue }
                recordOf[i] = r
                stackItems += 1
                if records[r]!.listening { stack.markInterested(records[r]!.stackID) }
                let wanted = UInt32(UInt16(bitPattern: fds[i].events)) | EpollFlags.EPOLLERR | EpollFlags.EPOLLHUP
                let ready = stack.readinessMask(records[r]!.stackID) & wanted
                fds[i].revents = Int16(truncatingIfNeeded: ready)
                if ready != 0 { stackReady += 1 }
            }
            let now = mtcp_shim_monotonic_ns()
            let expired = now >= deadline
            var waitSet: WaitSet?
            var linkFD: Int32 = -1
            if stackReady == 0 && !expired, let stack {
                let set = takeWaitSet(stack)
                for i in 0..<count where recordOf[i] >= 0 {
                    let wanted = UInt32(UInt16(bitPattern: fds[i].events))
                    try? stack.epollControl(
                        set.stackEpoll, op: .add, socket: records[recordOf[i]]!.stackID, events: wanted,
                        data: UInt64(i))
                }
                waitSet = set
                linkFD = stack.io.waitDescriptor
                refreshNextWake()
            }
            mtcp_unlock()

            var n = 0
            for i in 0..<count where recordOf[i] < 0 || records[recordOf[i]]?.kernelListener == true {
                kernel[n] = pollfd(fd: fds[i].fd, events: fds[i].events, revents: 0)
                origin[n] = i
                n += 1
            }
            let kernelItems = n
            if let waitSet {
                kernel[n] = pollfd(fd: waitSet.notifyFD, events: Int16(POLLIN), revents: 0)
                kernel[n + 1] = pollfd(fd: linkFD, events: Int16(POLLIN), revents: 0)
                n += 2
            }
            var result: Int32 = 0
            var savedErrno: Int32 = 0
            if n > 0 {
                var sleep: Int64 = 0
                if stackReady == 0 && !expired {
                    let remaining = deadline == UInt64.max ? -1 : Int64(deadline - now)
                    sleep = nanosecondsToSleep(remaining: remaining, limitByTimers: waitSet != nil)
                }
                if waitSet != nil { linkWatchers.add(1, ordering: .relaxed) }
                if sleep < 0 {
                    result = mtcp_real_ppoll(kernel, nfds_t(n), nil, mask)
                } else {
                    var spec = timespec(tv_sec: Int(sleep / 1_000_000_000), tv_nsec: Int(sleep % 1_000_000_000))
                    result = mtcp_real_ppoll(kernel, nfds_t(n), &spec, mask)
                }
                if waitSet != nil { linkWatchers.subtract(1, ordering: .relaxed) }
                savedErrno = mtcp_errno()
            }
            if let waitSet {
                mtcp_lock()
                if let stack {
                    for i in 0..<count where recordOf[i] >= 0 {
                        if let record = records[recordOf[i]] {
                            try? stack.epollControl(waitSet.stackEpoll, op: .delete, socket: record.stackID)
                        }
                    }
                }
                giveBack(waitSet)
                mtcp_unlock()
            }
            if result < 0 {
                mtcp_set_errno(savedErrno)
                return -1
            }
            for j in 0..<kernelItems {
                fds[origin[j]].revents |= kernel[j].revents
                if kernel[j].revents != 0 && recordOf[origin[j]] >= 0 {
                    // A kernel listener half reported: its accept may find a connection.
                    markKernelHalf(of: fds[origin[j]].fd, mayBeReady: true)
                }
            }
            var total: Int32 = 0
            for i in 0..<count where fds[i].revents != 0 { total += 1 }
            if total > 0 || expired { return total }
            if mtcp_shim_monotonic_ns() >= deadline { return 0 }
        }
    }

    /// How long to sleep: the caller's remaining time, cut at the stack's next timer when this
    /// thread may drive it (negative: without limit).
    func nanosecondsToSleep(remaining: Int64, limitByTimers: Bool) -> Int64 {
        guard limitByTimers else { return remaining }
        if linkIsPolled {
            // A link without a descriptor (DPDK) cannot wake a sleeper: look again soon.
            return remaining < 0 ? 200_000 : min(remaining, 200_000)
        }
        let wake = nextWake.load(ordering: .relaxed)
        if wake == UInt64.max { return remaining }
        let now = mtcp_shim_monotonic_ns()
        let untilTimer = wake > now ? Int64(wake - now) : 0
        return remaining < 0 ? untilTimer : min(untilTimer, remaining)
    }

    /// Waits until `fd` has one of `events` (POLL* bits) or `timeout` ns pass (0: none):
    /// 1 ready, 0 timed out, -1 interrupted (errno EINTR).
    func wait(for fd: Int32, events: Int16, timeout: Int64) -> Int32 {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        return poll(&entry, 1, timeout: timeout > 0 ? timeout : -1, mask: nil)
    }

    // MARK: Wait sets

    func takeWaitSet(_ stack: NetworkStack<SelectedLink>) -> WaitSet {
        let set: WaitSet
        if let free = freeWaitSets.popLast() {
            set = waitSets[free]
        } else {
            set = WaitSet(stackEpoll: stack.epollCreate(), notifyFD: mtcp_eventfd())
            waitSets.append(set)
        }
        signalled.append(SignalTarget(stackEpoll: set.stackEpoll, notifyFD: set.notifyFD, isSignalled: set.isSignalled))
        return set
    }

    func giveBack(_ set: WaitSet) {
        signalled.removeAll { $0.notifyFD == set.notifyFD }
        if set.isSignalled.pointee {
            var value: UInt64 = 0
            _ = mtcp_real_read(set.notifyFD, &value, 8)
            set.isSignalled.pointee = false
        }
        if let index = waitSets.firstIndex(where: { $0 === set }) { freeWaitSets.append(index) }
    }
}
