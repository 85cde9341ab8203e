import CPreload
import CShim
import Glibc
import PreloadState
import Stack

// The application's epoll fd stays a real kernel epoll set. Stack sockets live in a stack
// event poll set beside it (its "shadow"), whose readiness reaches the kernel set through an
// eventfd registered inside it; the link's descriptor is in there too, so a thread sleeping in
// epoll_wait wakes for packets and runs the loop round itself.

extension PreloadRuntime {
    /// The shadow of epoll fd `epfd`, made (and its eventfd and link put into the kernel
    /// set) when `create`; nil with errno otherwise (lock held).
    func shadow(of epfd: Int32, create: Bool) -> EpollShadow? {
        let entry = mtcp_fd_entry(epfd)
        if DescriptorEntry.kind(entry) == DescriptorEntry.epollKind {
            let shadow = shadows[DescriptorEntry.index(entry)]!
            if !shadow.inherited { return shadow }
            // A set inherited across fork: give it stack parts of this process's own.
            guard create else {
                mtcp_set_errno(ENOENT)
                return nil
            }
            return attachStackParts(shadow, to: epfd) ? shadow : nil
        }
        guard create else {
            mtcp_set_errno(ENOENT)
            return nil
        }
        let shadow = EpollShadow()
        guard attachStackParts(shadow, to: epfd) else { return nil }
        let index: Int32
        if let free = freeShadows.popLast() {
            shadows[Int(free)] = shadow
            index = free
        } else {
            shadows.append(shadow)
            index = Int32(shadows.count - 1)
        }
        guard mtcp_fd_set_entry(epfd, DescriptorEntry.make(kind: DescriptorEntry.epollKind, index: index)) != 0 else {
            release(shadow)
            shadows[Int(index)] = nil
            freeShadows.append(index)
            mtcp_set_errno(EMFILE)
            return nil
        }
        return shadow
    }

    /// Gives `shadow` a part in every running instance and their eventfds in the kernel set;
    /// an instance's link joins with the part's first socket (process lock held).
    private func attachStackParts(_ shadow: EpollShadow, to epfd: Int32) -> Bool {
        let running = runningInstances
        guard !running.isEmpty else {
            mtcp_set_errno(EBADF)
            return false
        }
        shadow.kernelMembers = kernelRegistrations(epfd)
        var parts: [EpollPart] = []
        for instance in running {
            let notify = mtcp_eventfd()
            guard notify >= 0, mtcp_epoll_add_tagged(epfd, notify, UInt32(EPOLLIN.rawValue), Self.notifyTag) == 0 else {
                let saved = mtcp_errno()
                if notify >= 0 { _ = mtcp_real_close(notify) }
                shadow.parts = parts
                release(shadow)
                mtcp_set_errno(saved)
                return false
            }
            let part: EpollPart = instance.withLock {
                let stack = instance.stack!
                let part = EpollPart(instance: instance.index, stackEpoll: stack.epollCreate(), notifyFD: notify)
                instance.signalled.append(part.target)
                return part
            }
            parts.append(part)
        }
        shadow.parts = parts
        shadow.inherited = false
        return true
    }

    /// How many descriptors other than the library's own the kernel set `epfd` holds, from
    /// /proc/self/fdinfo (registrations made before its first stack socket); a large number
    /// when that cannot be read, so the kernel set is always asked.
    func kernelRegistrations(_ epfd: Int32) -> Int {
        let unknown = 1 << 30
        let fd = open("/proc/self/fdinfo/\(epfd)", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return unknown }
        defer { _ = mtcp_real_close(fd) }
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while text.count < 1 << 22 {
            let n = chunk.withUnsafeMutableBytes { mtcp_real_read(fd, $0.baseAddress, $0.count) }
            if n < 0 { return unknown }
            if n == 0 { break }
            text += chunk[0..<n]
        }
        var count = 0
        for line in text.split(separator: 10) where line.starts(with: Array("tfd:".utf8)) {
            // "tfd: FD events: E data: HEX pos: ..."
            let words = line.split(separator: 32)
            guard let at = words.firstIndex(where: { $0.elementsEqual("data:".utf8) }), at + 1 < words.count,
                let data = UInt64(String(decoding: words[at + 1], as: UTF8.self), radix: 16)
            else { return unknown }
            if data != Self.notifyTag && data != Self.linkTag { count += 1 }
        }
        return count
    }

    /// Frees a shadow's stack parts (process lock held).
    func release(_ shadow: EpollShadow) {
        guard !shadow.inherited else { return }
        for part in shadow.parts {
            let instance = instances[part.instance]
            instance.withLock {
                instance.signalled.removeAll { $0.notifyFD == part.notifyFD }
                try? instance.stack?.epollClose(part.stackEpoll)
            }
            _ = mtcp_real_close(part.notifyFD)
        }
        shadow.parts = []
    }

    /// Compacts kernel events at `from..<from+count`: drops the library's own descriptors and
    /// folds an event into an earlier one with the same data among the first `foldAgainst`
    /// (a kernel listener's half of a stack listener, or a level-triggered event seen again).
    /// Returns the new end and whether an own descriptor was seen.
    func keepApplicationEvents(
        _ events: UnsafeMutablePointer<epoll_event>, foldAgainst stackCount: Int, from: Int, count: Int,
        shadow: EpollShadow
    ) -> (Int, Bool) {
        var write = from
        var sawOwn = false
        for read in from..<(from + count) {
            var data = mtcp_epoll_event_data(events + read)
            if data == Self.notifyTag || data == Self.linkTag {
                sawOwn = true
                continue
            }
            if data & 0xFFFF_FFFF_0000_0000 == Self.kernelHalfTag {
                // A kernel listener half: its accept may find a connection; the application
                // sees its own data.
                let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: data))
                markKernelHalf(of: fd, mayBeReady: true)
                data = withProcessLock { shadow.kernelHalfData[fd] ?? 0 }
                mtcp_epoll_event_set(events + read, mtcp_epoll_event_events(events + read), data)
            }
            var merged = false
            for s in 0..<stackCount where mtcp_epoll_event_data(events + s) == data {
                let both = mtcp_epoll_event_events(events + s) | mtcp_epoll_event_events(events + read)
                mtcp_epoll_event_set(events + s, both, data)
                merged = true
                break
            }
            if merged { continue }
            if write != read { events[write] = events[read] }
            write += 1
        }
        return (write, sawOwn)
    }

    /// An application descriptor went into or out of the kernel set `epfd`.
    func countKernelMember(epfd: Int32, added: Bool) {
        let entry = mtcp_fd_entry(epfd)
        guard DescriptorEntry.kind(entry) == DescriptorEntry.epollKind else { return }
        withProcessLock { shadows[DescriptorEntry.index(entry)]?.countKernelMember(added: added) }
    }

    /// Returns `count` events to the application, which now handles them (`inEpollBatch`).
    func beginBatch(_ count: Int32, _ shadow: EpollShadow) -> Int32 {
        for part in shadow.parts where part.used {
            let instance = instances[part.instance]
            instance.withLock { instance.inEpollBatch = true }
        }
        return count
    }

    /// One part's ready events into `room` (its instance's lock): a loop round first. Sets
    /// `deadline` from the round's clock when the caller still needs one.
    func collect(
        _ part: EpollPart, into room: UnsafeMutableBufferPointer<EpollEvent>, timeout: Int32, deadline: inout UInt64
    ) -> Int {
        let instance = instances[part.instance]
        return instance.withLock {
            instance.inEpollBatch = false
            // This thread collects the part itself: two system calls per round saved.
            instance.drive(collecting: part)
            if timeout > 0 && deadline == UInt64.max {
                deadline = instance.lastDriven.load(ordering: .relaxed) &+ UInt64(timeout) * 1_000_000
            }
            guard !room.isEmpty, let stack = instance.stack else { return 0 }
            let n = (try? stack.epollReady(part.stackEpoll, into: room)) ?? 0
            // Events left (more than `room`): other threads waiting on the set must see them.
            instance.settleSignal(part)
            return n
        }
    }

    /// epoll_wait over the kernel set and its shadow.
    func epollWait(
        _ epfd: Int32, _ shadow: EpollShadow, _ events: UnsafeMutablePointer<epoll_event>, _ max: Int,
        timeout: Int32, mask: UnsafePointer<sigset_t>?
    ) -> Int32 {
        // The clock is read only when a timeout needs it: clock reads showed in profiles.
        // The deadline counts from the first round's clock reading (one read fewer per call).
        var deadline = UInt64.max
        let capacity = Swift.min(max, 1024)
        let parts = shadow.inherited ? [] : shadow.parts
        // Busy polling (MTCP_BUSY_POLL): until this instant, a wait that finds nothing looks
        // again (yielding the CPU between looks) instead of sleeping.
        var spinUntil: UInt64 = 0
        return withUnsafeTemporaryAllocation(of: EpollEvent.self, capacity: capacity) { collected in
            SignalGate.around { gate in
                var stackFirst = false
                while true {
                    // When both sides have events, they take turns filling the array first.
                    let kernelFirst = !stackFirst && shadow.preferKernel.load(ordering: .relaxed)
                    if !stackFirst { shadow.preferKernel.store(!kernelFirst, ordering: .relaxed) }
                    stackFirst = false
                    let stackShare = kernelFirst ? capacity / 2 : capacity
                    var n = 0
                    var usedParts = 0
                    for part in parts where part.used {
                        usedParts += 1
                        let start = n
                        let room = UnsafeMutableBufferPointer(rebasing: collected[n..<stackShare])
                        n += collect(part, into: room, timeout: timeout, deadline: &deadline)
                        // A listener has a copy in each instance: one event for it, as the kernel gives.
                        if usedParts > 1 && n > start { n = fold(collected, existing: start, total: n) }
                    }
                    if timeout > 0 && deadline == UInt64.max {
                        deadline = mtcp_shim_monotonic_ns() &+ UInt64(timeout) * 1_000_000
                    }
                    for k in 0..<n { mtcp_epoll_event_set(events + k, collected[k].events, collected[k].data) }
                    // Stack events in hand: the kernel set is asked only when it may hold the
                    // application's descriptors (a system call saved per wait otherwise).
                    if n > 0 && shadow.kernelMembers == 0 { return beginBatch(Int32(n), shadow) }
                    var total = n
                    var spinning = false
                    // Only where there is a stack part to look at: a set of kernel descriptors alone
                    // sleeps at once.
                    if n == 0 && timeout != 0 && busyPollNanoseconds > 0 && usedParts > 0 {
                        let now = mtcp_shim_monotonic_ns()
                        if spinUntil == 0 { spinUntil = now &+ busyPollNanoseconds }
                        spinning = now < spinUntil && now < deadline
                        if spinning && shadow.kernelMembers == 0 {
                            sched_yield()
                            continue
                        }
                    }
                    if n < max {
                        var sleep: Int32 = 0
                        let driving = parts.lazy.filter(\.used).map { self.instances[$0.instance] }
                        // A kernel turn that leaves the stack no room (an array of one) looks
                        // without sleeping: the stack's events may be waiting.
                        if n == 0 && timeout != 0 && !spinning && stackShare > 0 {
                            let now = timeout > 0 ? mtcp_shim_monotonic_ns() : 0
                            if now < deadline {
                                let remaining = deadline == UInt64.max ? Int64(-1) : Int64(deadline - now)
                                let ns = nanosecondsToSleep(remaining: remaining, driving: driving)
                                sleep = WaitTimeout.milliseconds(nanoseconds: ns)
                            }
                        }
                        // Our own descriptors may take slots; they go to the back of the kernel's
                        // ready list once reported, so asking again (without sleeping) fills them.
                        for attempt in 0..<3 {
                            let sleeping = attempt == 0 && sleep != 0 && !shadow.inherited
                            if sleeping { for instance in driving { instance.linkWatchers.add(1, ordering: .relaxed) } }
                            let room = max - total
                            // Sleeping: from here on a signal waits for the sleep (`SignalGate`).
                            let sleepMask = attempt == 0 && sleep != 0 ? gate.closeForSleep(mask) : mask
                            let k = mtcp_real_epoll_pwait(
                                epfd, events + total, Int32(room), attempt == 0 ? sleep : 0, sleepMask)
                            if sleeping {
                                for instance in driving { instance.linkWatchers.subtract(1, ordering: .relaxed) }
                            }
                            if k < 0 {
                                if total > 0 { return beginBatch(Int32(total), shadow) }
                                return -1
                            }
                            // A second look sees level-triggered kernel events again: fold those too.
                            let (kept, sawOwn) = keepApplicationEvents(
                                events, foldAgainst: attempt == 0 ? n : total, from: total, count: Int(k),
                                shadow: shadow)
                            total = kept
                            // Asking again helps only when the kernel filled every slot given: then
                            // our descriptors may have pushed the application's out.
                            if !sawOwn || total >= max || Int(k) < room { break }
                        }
                    }
                    if total > 0 { return beginBatch(Int32(total), shadow) }
                    // The kernel had nothing for a one-event array: the stack's turn, at once.
                    if stackShare == 0 && usedParts > 0 {
                        stackFirst = true
                        continue
                    }
                    // Woken by our own descriptors or for a timer: run a round and look again.
                    if timeout == 0 || (timeout > 0 && mtcp_shim_monotonic_ns() >= deadline) { return 0 }
                }
            }
        }
    }

    /// Folds the events at `existing..<total` into earlier ones with the same data; the new end.
    func fold(_ events: UnsafeMutableBufferPointer<EpollEvent>, existing: Int, total: Int) -> Int {
        var end = existing
        for k in existing..<total {
            if let same = (0..<existing).first(where: { events[$0].data == events[k].data }) {
                events[same].events |= events[k].events
            } else {
                events[end] = events[k]
                end += 1
            }
        }
        return end
    }
}

@_cdecl("epoll_ctl")
public func hook_epoll_ctl(_ epfd: Int32, _ op: Int32, _ fd: Int32, _ event: UnsafeMutablePointer<epoll_event>?)
    -> Int32
{
    let entry = mtcp_fd_entry(fd)
    guard entry != 0, DescriptorEntry.kind(entry) == DescriptorEntry.socketKind else {
        let result = mtcp_real_epoll_ctl(epfd, op, fd, event)
        if result == 0 && (op == EPOLL_CTL_ADD || op == EPOLL_CTL_DEL) {
            PreloadRuntime.current?.countKernelMember(epfd: epfd, added: op == EPOLL_CTL_ADD)
        }
        return result
    }
    guard let runtime = PreloadRuntime.current else { return fail(.EBADF) }
    // Linux's order: the event is read first (for every operation but DEL), then the
    // descriptors are checked, then the operation.
    if op != EPOLL_CTL_DEL && !UserMemory.usable(event, UInt(mtcp_epoll_event_size())) { return fail(.EFAULT) }
    guard let operation = EpollOperation(rawValue: op) else {
        // The kernel sorts out a bad epfd (EBADF) from a bad operation (EINVAL) and does nothing.
        return mtcp_real_epoll_ctl(epfd, op, fd, event)
    }
    if epfd == fd { return fail(.EINVAL) }
    // The socket as this hook needs it: its stack sockets by instance (a listener has one in each).
    struct Registered {
        var targets: StackSockets
        var listening: Bool
        var kernelListener: Bool
    }
    let found: Registered? = runtime.withRecord(
        entry,
        { instance, _, r in
            Registered(
                targets: instance.records[r]!.stackSockets(home: instance.index),
                listening: instance.records[r]!.listening, kernelListener: instance.records[r]!.kernelListener)
        }, otherwise: { nil })
    guard let socket = found else { return fail(.EBADF) }
    // DEL reads no event (a pointer it was given may be anything).
    let bits = operation == .delete ? 0 : event.map { mtcp_epoll_event_events($0) } ?? 0
    let data = operation == .delete ? 0 : event.map { mtcp_epoll_event_data($0) } ?? 0
    return runtime.withProcessLock {
        // A set with no stack socket in it: the kernel answers for epfd and for the placeholder
        // it never held (EBADF, EINVAL, ENOENT).
        if operation != .add && DescriptorEntry.kind(mtcp_fd_entry(epfd)) != DescriptorEntry.epollKind {
            return mtcp_real_epoll_ctl(epfd, op, fd, event)
        }
        guard let shadow = runtime.shadow(of: epfd, create: operation == .add) else { return -1 }
        for (n, target) in socket.targets.enumerated() {
            guard let part = shadow.parts.first(where: { $0.instance == target.instance }) else { continue }
            let instance = runtime.instances[target.instance]
            let failure: Errno? = instance.withLock {
                guard let stack = instance.stack else { return .EBADF }
                if socket.listening { stack.markInterested(target.id) }
                do throws(Errno) {
                    try stack.epollControl(
                        part.stackEpoll, op: operation, socket: target.id, events: bits, data: data)
                } catch {
                    return error
                }
                if !part.used {
                    part.used = true
                    // The link joins the kernel set with the part's first socket: a thread
                    // waiting on a set without this instance's sockets must not wake (and
                    // spin, the link staying readable) for this instance's frames.
                    let link = stack.io.waitDescriptor
                    if link >= 0 {
                        _ = mtcp_epoll_add_tagged(epfd, link, UInt32(EPOLLIN.rawValue), PreloadRuntime.linkTag)
                    }
                }
                // A registration sees the current state: wake a sleeping epoll_wait if it is ready.
                instance.signalReadySets()
                return nil
            }
            // The first copy's answer is the call's (the others follow it).
            if let failure, n == 0 { return fail(failure) }
        }
        if socket.kernelListener {
            // The kernel half of a listener on 0.0.0.0 reports loopback connections, under a tag
            // of ours: epoll_wait marks the listener and gives the application its own data.
            var tagged = epoll_event()
            mtcp_epoll_event_set(&tagged, bits, PreloadRuntime.kernelHalfTag | UInt64(UInt32(bitPattern: fd)))
            if mtcp_real_epoll_ctl(epfd, op, fd, &tagged) == 0 {
                if operation != .modify { shadow.countKernelMember(added: operation == .add) }
                if operation == .delete {
                    shadow.kernelHalfData.removeValue(forKey: fd)
                } else {
                    shadow.kernelHalfData[fd] = data
                }
            }
        }
        return 0
    }
}

@_cdecl("epoll_wait")
public func hook_epoll_wait(_ epfd: Int32, _ events: UnsafeMutablePointer<epoll_event>?, _ max: Int32, _ timeout: Int32)
    -> Int32
{
    hook_epoll_pwait(epfd, events, max, timeout, nil)
}

@_cdecl("epoll_pwait")
public func hook_epoll_pwait(
    _ epfd: Int32, _ events: UnsafeMutablePointer<epoll_event>?, _ max: Int32, _ timeout: Int32,
    _ mask: UnsafePointer<sigset_t>?
) -> Int32 {
    let entry = mtcp_fd_entry(epfd)
    guard entry != 0, DescriptorEntry.kind(entry) == DescriptorEntry.epollKind, let runtime = PreloadRuntime.current
    else { return mtcp_real_epoll_pwait(epfd, events, max, timeout, mask) }
    let size = mtcp_epoll_event_size()
    guard max > 0, max <= Int32.max / Int32(size) else { return fail(.EINVAL) }
    guard UserMemory.inUserSpace(events, UInt(max) * UInt(size)) else { return fail(.EFAULT) }
    if let mask, !UserMemory.usable(mask, UInt(MemoryLayout<sigset_t>.size)) { return fail(.EFAULT) }
    let shadow = runtime.withProcessLock { runtime.shadows[DescriptorEntry.index(entry)] }
    guard let shadow else { return mtcp_real_epoll_pwait(epfd, events, max, timeout, mask) }
    guard let events, !UserMemory.faults(events) else {
        // Linux waits as usual and fails the copy (EFAULT) once there are events to report.
        // They are taken here, where the kernel keeps them ready: an edge-triggered or one-shot
        // event is lost to a program that passed no array.
        var scratch = epoll_event()
        let n = runtime.epollWait(epfd, shadow, &scratch, 1, timeout: timeout, mask: mask)
        return n > 0 ? fail(.EFAULT) : n
    }
    return runtime.epollWait(epfd, shadow, events, Int(max), timeout: timeout, mask: mask)
}

// MARK: - poll, ppoll, select, pselect

/// Whether any of the entries is a stack socket (else the call goes straight to libc, which
/// also answers an array it cannot read and a count past RLIMIT_NOFILE, without reading one).
/// The kernel takes the count as an unsigned int.
func anyStackDescriptor(_ fds: UnsafeMutablePointer<pollfd>?, _ count: nfds_t) -> Bool {
    let count = UInt(UInt32(truncatingIfNeeded: count))
    guard PreloadRuntime.current != nil, UserMemory.usable(fds, count * UInt(MemoryLayout<pollfd>.stride)) else {
        return false
    }
    // A limit below 16 descriptors is not looked up (a system call per poll): such a program
    // gets its entries polled where Linux would say EINVAL.
    if count > 16 {
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 && count > UInt(limit.rlim_cur) { return false }
    }
    for i in 0..<Int(count) where DescriptorEntry.kind(mtcp_fd_entry(fds![i].fd)) == DescriptorEntry.socketKind {
        return true
    }
    return false
}

@_cdecl("poll")
public func hook_poll(_ fds: UnsafeMutablePointer<pollfd>?, _ count: nfds_t, _ timeout: Int32) -> Int32 {
    guard anyStackDescriptor(fds, count), let runtime = PreloadRuntime.current else {
        return mtcp_real_poll(fds, count, timeout)
    }
    let entries = Int(UInt32(truncatingIfNeeded: count))
    return runtime.poll(fds!, entries, timeout: timeout < 0 ? -1 : Int64(timeout) * 1_000_000, mask: nil)
}

@_cdecl("ppoll")
public func hook_ppoll(
    _ fds: UnsafeMutablePointer<pollfd>?, _ count: nfds_t, _ timeout: UnsafePointer<timespec>?,
    _ mask: UnsafePointer<sigset_t>?
) -> Int32 {
    guard anyStackDescriptor(fds, count), let runtime = PreloadRuntime.current else {
        return mtcp_real_ppoll(fds, count, timeout, mask)
    }
    // The timeout, then the mask, as do_ppoll checks them (glibc itself would fault on a
    // timeout it cannot read).
    let ns: Int64
    switch timespecWait(timeout) {
    case .failure(let error): return fail(error)
    case .success(let wait): ns = wait
    }
    if let mask, !UserMemory.usable(mask, UInt(MemoryLayout<sigset_t>.size)) { return fail(.EFAULT) }
    return runtime.poll(fds!, Int(UInt32(truncatingIfNeeded: count)), timeout: ns, mask: mask)
}

/// A ppoll or pselect timeout as the kernel reads it: none (-1) for NULL, EFAULT when it cannot
/// be read, else the wait in nanoseconds (EINVAL for a bad one).
func timespecWait(_ timeout: UnsafePointer<timespec>?) -> Result<Int64, KernelError> {
    guard let timeout else { return .success(-1) }
    guard UserMemory.usable(timeout, UInt(MemoryLayout<timespec>.size)) else { return .failure(KernelError(EFAULT)) }
    return WaitTimeout.timespec(seconds: timeout.pointee.tv_sec, nanoseconds: timeout.pointee.tv_nsec)
}

@_cdecl("select")
public func hook_select(
    _ nfds: Int32, _ readable: UnsafeMutablePointer<fd_set>?, _ writable: UnsafeMutablePointer<fd_set>?,
    _ exceptional: UnsafeMutablePointer<fd_set>?, _ timeout: UnsafeMutablePointer<timeval>?
) -> Int32 {
    guard stackDescriptorIn(nfds, readable, writable, exceptional) else {
        return mtcp_real_select(nfds, readable, writable, exceptional, timeout)
    }
    var ns: Int64 = -1
    if let timeout {
        guard UserMemory.usable(timeout, UInt(MemoryLayout<timeval>.size)) else { return fail(.EFAULT) }
        switch WaitTimeout.select(seconds: timeout.pointee.tv_sec, microseconds: timeout.pointee.tv_usec) {
        case .failure(let error): return fail(error)
        case .success(let wait): ns = wait
        }
    }
    let start = timeout == nil ? 0 : mtcp_shim_monotonic_ns()
    let result = selectOnStack(nfds, readable, writable, exceptional, timeout: ns, mask: nil)
    if let timeout {
        // Linux leaves the time not slept in the timeval.
        let left = max(ns - Int64(bitPattern: mtcp_shim_monotonic_ns() &- start), 0)
        timeout.pointee = timeval(tv_sec: Int(left / 1_000_000_000), tv_usec: Int(left % 1_000_000_000 / 1_000))
    }
    return result
}

@_cdecl("pselect")
public func hook_pselect(
    _ nfds: Int32, _ readable: UnsafeMutablePointer<fd_set>?, _ writable: UnsafeMutablePointer<fd_set>?,
    _ exceptional: UnsafeMutablePointer<fd_set>?, _ timeout: UnsafePointer<timespec>?, _ mask: UnsafePointer<sigset_t>?
) -> Int32 {
    guard stackDescriptorIn(nfds, readable, writable, exceptional) else {
        return mtcp_real_pselect(nfds, readable, writable, exceptional, timeout, mask)
    }
    let ns: Int64
    switch timespecWait(timeout) {
    case .failure(let error): return fail(error)
    case .success(let wait): ns = wait
    }
    if let mask, !UserMemory.usable(mask, UInt(MemoryLayout<sigset_t>.size)) { return fail(.EFAULT) }
    return selectOnStack(nfds, readable, writable, exceptional, timeout: ns, mask: mask)
}

/// Whether a stack socket is in the sets (else select goes straight to libc, which also
/// answers sets it cannot read, without reading them).
func stackDescriptorIn(
    _ nfds: Int32, _ readable: UnsafeMutablePointer<fd_set>?, _ writable: UnsafeMutablePointer<fd_set>?,
    _ exceptional: UnsafeMutablePointer<fd_set>?
) -> Bool {
    guard PreloadRuntime.current != nil, nfds > 0 else { return false }
    let bytes = UInt(min(nfds, Int32(FD_SETSIZE)) + 7) / 8
    func unreadable(_ set: UnsafeMutablePointer<fd_set>?) -> Bool { set != nil && !UserMemory.usable(set, bytes) }
    if unreadable(readable) || unreadable(writable) || unreadable(exceptional) { return false }
    for fd in 0..<min(nfds, Int32(FD_SETSIZE))
    where DescriptorEntry.kind(mtcp_fd_entry(fd)) == DescriptorEntry.socketKind {
        if mtcp_fd_isset(fd, readable) != 0 || mtcp_fd_isset(fd, writable) != 0 || mtcp_fd_isset(fd, exceptional) != 0 {
            return true
        }
    }
    return false
}

/// select over stack sockets, as poll (a stack socket is in the sets).
func selectOnStack(
    _ nfds: Int32, _ readable: UnsafeMutablePointer<fd_set>?, _ writable: UnsafeMutablePointer<fd_set>?,
    _ exceptional: UnsafeMutablePointer<fd_set>?, timeout: Int64, mask: UnsafePointer<sigset_t>?
) -> Int32 {
    let runtime = PreloadRuntime.current!
    let limit = Int(min(nfds, Int32(FD_SETSIZE)))
    var count = 0
    for fd in 0..<Int32(limit)
    where mtcp_fd_isset(fd, readable) != 0 || mtcp_fd_isset(fd, writable) != 0 || mtcp_fd_isset(fd, exceptional) != 0 {
        count += 1
    }
    return withUnsafeTemporaryAllocation(of: pollfd.self, capacity: count) { entries in
        var n = 0
        for fd in 0..<Int32(limit) {
            var events: Int16 = 0
            if mtcp_fd_isset(fd, readable) != 0 { events |= Int16(POLLIN) }
            if mtcp_fd_isset(fd, writable) != 0 { events |= Int16(POLLOUT) }
            if mtcp_fd_isset(fd, exceptional) != 0 { events |= Int16(POLLPRI) }
            if events == 0 { continue }
            entries[n] = pollfd(fd: fd, events: events, revents: 0)
            n += 1
        }
        let result = runtime.poll(entries.baseAddress!, n, timeout: timeout, mask: mask)
        if result < 0 { return -1 }
        for k in 0..<n where entries[k].revents & Int16(POLLNVAL) != 0 { return fail(.EBADF) }
        if let readable { mtcp_fd_zero(readable) }
        if let writable { mtcp_fd_zero(writable) }
        if let exceptional { mtcp_fd_zero(exceptional) }
        var bits: Int32 = 0
        for k in 0..<n {
            let revents = entries[k].revents
            let fd = entries[k].fd
            if let readable, entries[k].events & Int16(POLLIN) != 0,
                revents & Int16(POLLIN | POLLHUP | POLLERR) != 0
            {
                mtcp_fd_set(fd, readable)
                bits += 1
            }
            if let writable, entries[k].events & Int16(POLLOUT) != 0, revents & Int16(POLLOUT | POLLERR) != 0 {
                mtcp_fd_set(fd, writable)
                bits += 1
            }
            if let exceptional, entries[k].events & Int16(POLLPRI) != 0, revents & Int16(POLLPRI) != 0 {
                mtcp_fd_set(fd, exceptional)
                bits += 1
            }
        }
        return bits
    }
}
