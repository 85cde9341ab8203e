import CPreload
import CShim
import Glibc
import PreloadState
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
        let width = instances.count
        return withUnsafeTemporaryAllocation(of: Int32.self, capacity: max(count * width, 1)) { ids in
            withUnsafeTemporaryAllocation(of: PollItem.self, capacity: max(count, 1)) { items in
                withUnsafeTemporaryAllocation(of: pollfd.self, capacity: count + 2 * width) { kernel in
                    withUnsafeTemporaryAllocation(of: Int.self, capacity: count + 2 * width) { origin in
                        withUnsafeTemporaryAllocation(of: WaitSet?.self, capacity: width) { sets in
                            for k in 0..<width { (sets.baseAddress! + k).initialize(to: nil) }
                            defer { sets.baseAddress!.deinitialize(count: width) }
                            let scratch = PollScratch(
                                ids: ids.baseAddress!, items: items.baseAddress!, kernel: kernel.baseAddress!,
                                origin: origin.baseAddress!, sets: sets.baseAddress!)
                            return SignalGate.around { gate in
                                pollTurns(fds, count, deadline: deadline, mask: mask, scratch, &gate)
                            }
                        }
                    }
                }
            }
        }
    }

    /// What a poll keeps about one entry: whether it is a stack socket (with its stack sockets
    /// by instance in the scratch ids), a listener, and one with a kernel half too.
    struct PollItem {
        var isStack = false
        var listening = false
        var kernelListener = false
    }

    /// A poll's temporary memory: stack socket ids [entry * instances + instance] (-1: none),
    /// items, the kernel's poll array with each slot's entry, and each instance's wait set.
    struct PollScratch {
        var ids: UnsafeMutablePointer<Int32>
        var items: UnsafeMutablePointer<PollItem>
        var kernel: UnsafeMutablePointer<pollfd>
        var origin: UnsafeMutablePointer<Int>
        var sets: UnsafeMutablePointer<WaitSet?>
    }

    /// Fills the scratch ids and items for the entries (each under its instance's lock,
    /// adopting inherited listeners).
    private func lookUp(_ fds: UnsafeMutablePointer<pollfd>, _ count: Int, _ scratch: PollScratch) {
        let width = instances.count
        for i in 0..<count {
            for k in 0..<width { scratch.ids[i * width + k] = -1 }
            (scratch.items + i).initialize(to: PollItem())
            let entry = mtcp_fd_entry(fds[i].fd)
            guard DescriptorEntry.kind(entry) == DescriptorEntry.socketKind else { continue }
            let item: PollItem? = withRecord(
                entry,
                { instance, _, r in
                    for (k, id) in instance.records[r]!.stackSockets(home: instance.index) where k < width {
                        scratch.ids[i * width + k] = id
                    }
                    return PollItem(
                        isStack: true, listening: instance.records[r]!.listening,
                        kernelListener: instance.records[r]!.kernelListener)
                }, otherwise: { nil })
            if let item { scratch.items[i] = item }
        }
    }

    private func pollTurns(
        _ fds: UnsafeMutablePointer<pollfd>, _ count: Int, deadline: UInt64, mask: UnsafePointer<sigset_t>?,
        _ scratch: PollScratch, _ gate: inout SignalGate
    ) -> Int32 {
        let width = instances.count
        let ids = scratch.ids
        let kernel = scratch.kernel
        let origin = scratch.origin
        while true {
            lookUp(fds, count, scratch)
            for i in 0..<count { fds[i].revents = 0 }
            var stackReady = 0
            // Each instance with sockets here: a round, then their readiness.
            for instance in instances {
                let k = instance.index
                guard (0..<count).contains(where: { ids[$0 * width + k] >= 0 }) else { continue }
                instance.withLock {
                    guard let stack = instance.stack else { return }
                    instance.drive()
                    for i in 0..<count where ids[i * width + k] >= 0 {
                        let id = ids[i * width + k]
                        if scratch.items[i].listening { stack.markInterested(id) }
                        let wanted =
                            UInt32(UInt16(bitPattern: fds[i].events)) | EpollFlags.EPOLLERR | EpollFlags.EPOLLHUP
                        let ready = stack.readinessMask(id) & wanted
                        if ready != 0 && fds[i].revents == 0 { stackReady += 1 }
                        fds[i].revents |= Int16(truncatingIfNeeded: ready)
                    }
                }
            }
            let now = mtcp_shim_monotonic_ns()
            let expired = now >= deadline
            var n = 0
            for i in 0..<count where !scratch.items[i].isStack || scratch.items[i].kernelListener {
                kernel[n] = pollfd(fd: fds[i].fd, events: fds[i].events, revents: 0)
                origin[n] = i
                n += 1
            }
            let kernelItems = n
            // Nothing ready: every instance involved lends a wait set (and its link) for the sleep.
            var waiting = false
            for instance in instances {
                let k = instance.index
                scratch.sets[k] = nil
                guard stackReady == 0 && !expired, (0..<count).contains(where: { ids[$0 * width + k] >= 0 }) else {
                    continue
                }
                let link: Int32? = instance.withLock {
                    guard let stack = instance.stack else { return nil }
                    let set = instance.takeWaitSet(stack)
                    for i in 0..<count where ids[i * width + k] >= 0 {
                        let wanted = UInt32(UInt16(bitPattern: fds[i].events))
                        try? stack.epollControl(
                            set.stackEpoll, op: .add, socket: ids[i * width + k], events: wanted, data: UInt64(i))
                    }
                    scratch.sets[k] = set
                    instance.refreshNextWake()
                    return stack.io.waitDescriptor
                }
                guard let link, let set = scratch.sets[k] else { continue }
                waiting = true
                kernel[n] = pollfd(fd: set.notifyFD, events: Int16(POLLIN), revents: 0)
                kernel[n + 1] = pollfd(fd: link, events: Int16(POLLIN), revents: 0)
                n += 2
            }
            let driving = instances.lazy.filter { scratch.sets[$0.index] != nil }
            var result: Int32 = 0
            var savedErrno: Int32 = 0
            if n > 0 {
                var sleep: Int64 = 0
                if stackReady == 0 && !expired {
                    let remaining = deadline == UInt64.max ? -1 : Int64(deadline - now)
                    sleep = waiting ? nanosecondsToSleep(remaining: remaining, driving: driving) : remaining
                }
                for instance in driving { instance.linkWatchers.add(1, ordering: .relaxed) }
                // Sleeping: from here on a signal waits for the sleep (`SignalGate`).
                let sleepMask = sleep != 0 ? gate.closeForSleep(mask) : mask
                if sleep < 0 {
                    result = mtcp_real_ppoll(kernel, nfds_t(n), nil, sleepMask)
                } else {
                    var spec = timespec(tv_sec: Int(sleep / 1_000_000_000), tv_nsec: Int(sleep % 1_000_000_000))
                    result = mtcp_real_ppoll(kernel, nfds_t(n), &spec, sleepMask)
                }
                for instance in driving { instance.linkWatchers.subtract(1, ordering: .relaxed) }
                savedErrno = mtcp_errno()
            }
            for instance in instances {
                let k = instance.index
                guard let set = scratch.sets[k] else { continue }
                instance.withLock {
                    // Sockets closed meanwhile left the set with their close.
                    for i in 0..<count where ids[i * width + k] >= 0 {
                        try? instance.stack?.epollControl(set.stackEpoll, op: .delete, socket: ids[i * width + k])
                    }
                    instance.giveBack(set)
                }
                scratch.sets[k] = nil
            }
            if result < 0 {
                mtcp_set_errno(savedErrno)
                return -1
            }
            for j in 0..<kernelItems {
                fds[origin[j]].revents |= kernel[j].revents
                if kernel[j].revents != 0 && scratch.items[origin[j]].isStack {
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

    /// Waits until `fd` has one of `events` (POLL* bits) or `timeout` ns pass (0: none):
    /// 1 ready, 0 timed out, -1 interrupted (errno EINTR).
    func wait(for fd: Int32, events: Int16, timeout: Int64) -> Int32 {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        return poll(&entry, 1, timeout: timeout > 0 ? timeout : -1, mask: nil)
    }
}
