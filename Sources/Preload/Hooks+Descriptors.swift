import CPreload
import CShim
import Glibc
import PacketIO
import PacketIODPDK
import PreloadState
import Stack
import StackRuntime

// close, dup, fcntl, ioctl, epoll_create and fork: the life of descriptors and processes.

extension PreloadRuntime {
    /// Drops `fd`'s table entry and what it refers to, without closing the fd (takes the
    /// locks it needs: the owning instance's, or the process lock for an epoll fd).
    func detach(_ fd: Int32) {
        let entry = mtcp_fd_entry(fd)
        switch DescriptorEntry.kind(entry) {
        case DescriptorEntry.socketKind:
            let instance = instance(of: entry)
            let leftovers: Leftovers? = instance.withLock {
                guard let r = instance.record(forEntry: entry) else {
                    _ = mtcp_fd_set_entry(fd, 0)
                    return nil
                }
                let leftovers = forget(instance, fd, r)
                // Send the FIN (or RST) now, or with the batch (see `inEpollBatch`).
                if leftovers.lastReference { instance.driveAfterOutput() }
                return leftovers
            }
            if let leftovers { finish(leftovers) }
        case DescriptorEntry.epollKind:
            withProcessLock {
                _ = mtcp_fd_set_entry(fd, 0)
                let index = DescriptorEntry.index(entry)
                guard index < shadows.count, let shadow = shadows[index] else { return }
                shadow.references -= 1
                if shadow.references == 0 {
                    release(shadow)
                    shadows[index] = nil
                    freeShadows.append(Int32(index))
                }
            }
        default:
            _ = mtcp_fd_set_entry(fd, 0)
        }
    }

    /// `new` refers to what `fd` refers to (after a successful dup of the fd) (process lock
    /// held).
    func share(_ fd: Int32, with new: Int32) {
        let entry = mtcp_fd_entry(fd)
        switch DescriptorEntry.kind(entry) {
        case DescriptorEntry.socketKind:
            let instance = instance(of: entry)
            let found = instance.withLock {
                guard let r = instance.record(forEntry: entry) else { return false }
                instance.records[r]!.references += 1
                return true
            }
            guard found else { return }
        case DescriptorEntry.epollKind:
            shadows[DescriptorEntry.index(entry)]?.references += 1
        default:
            return
        }
        if mtcp_fd_set_entry(new, entry) == 0 {
            // Beyond the table: the copy cannot be a stack socket.
            detach(fd)
            _ = mtcp_fd_set_entry(fd, entry)
        }
    }

    /// The child side of fork (the child's one thread, every lock taken by the parent's
    /// forking thread and reset): the parent's stacks and connections stay the parent's.
    /// Sockets become inherited; this process starts its own stacks when it first needs one,
    /// or at once when the result says so: its parent is the primary and listens on ports it
    /// does not accept on (nginx daemonizing, an nginx master forking workers), so the child
    /// may be the process that must park SYNs for them once the parent is gone.
    func becomeChild() -> Bool {
        // The packet sockets this child may need later are made now, while it may still have
        // the privilege (nginx workers drop root first). Any inherited ones are the parent's.
        let running = instances.filter { $0.stack != nil }.count
        let usesStack = running > 0 || !preopenedSockets.isEmpty || dpdkChildPort != nil
        let wanted = max(running, preopenedSockets.count, 1)
        for inherited in preopenedSockets where inherited.receive >= 0 {
            _ = mtcp_real_close(inherited.receive)
            _ = mtcp_real_close(inherited.transmit)
        }
        preopenedSockets = []
        // A port made for the parent stays the parent's: never stopped or freed here.
        if let inherited = dpdkChildPort { retired.append(inherited) }
        dpdkChildPort = nil
        // The parent's programs steer the parent's frames; the child needs its own, loaded
        // now for the same reason (it takes CAP_BPF).
        let parentSteered = steering != nil
        let parentParks = steering.map { $0.isPrimary && $0.ports.values.contains(false) } ?? false
        steeringRefusal = nil
        // Made while the records still look like the parent's: DPDK's probe looks at every
        // descriptor (getsockname), and an inherited connection would answer EBADF.
        if usesStack {
            switch options?.backend {
            case .afpacket:
                for _ in 0..<min(wanted, instances.count) {
                    guard let sockets = AFPacketRing.openSockets() else { break }
                    preopenedSockets.append(sockets)
                }
            case .dpdk: makeDPDKChildPort()
            default: break
            }
        }
        for instance in instances {
            if let stack = instance.becomeChild() { retired.append(stack) }
        }
        activeInstances = 0
        // The parent's region and capture are the parent's (its thread did not come along);
        // this process makes its own when its stacks start.
        if let observation { retired.append(observation) }
        observation = nil
        if usesStack && parentSteered, let options {
            for (k, sockets) in preopenedSockets.enumerated() {
                let instance = instances[k]
                instance.steering = makeSteering(options, instance: k)
                guard let steering = instance.steering else {
                    if k == 0 { steeringRefusal = "its BPF program could not be loaded" }
                    break
                }
                do throws(PacketIOError) {
                    try steering.attach(to: sockets.receive)
                } catch {
                    if k == 0 { steeringRefusal = "\(error)" }
                    instance.steering = nil
                    break
                }
            }
            if preopenedSockets.isEmpty, let queue = dpdkChildPort?.queues.first, queue.waitDescriptor >= 0 {
                instances[0].steering = makeSteering(options, instance: 0)
                attachSteering(instances[0], toDPDKQueue: queue.waitDescriptor)
                if steering == nil { steeringRefusal = "its DPDK queue cannot be steered" }
            } else if steering == nil && steeringRefusal == nil {
                steeringRefusal = "its packet sockets could not be made"
            }
        }
        // The child holds the listeners it inherited: their ports stay "listened" (SYNs are
        // parked, not reset) while it lives, whoever else leaves.
        if let steering, steeringRefusal == nil {
            for instance in instances {
                for case let record? in instance.records where record.listening {
                    steering.listen(port: record.localPort, accepting: false, now: mtcp_shim_monotonic_ns())
                }
            }
        }
        activationFailed = false
        pid = getpid()
        for shadow in shadows { shadow?.inherited = true }
        return parentParks && steering != nil && steeringRefusal == nil
    }
}

extension PreloadRuntime {
    /// The child's own instance of the family's DPDK device (see `DPDKChildPort`), made and
    /// started now for the same reason as the packet sockets above (starting a port also sets
    /// its interface's flags, which takes CAP_NET_ADMIN); the stack takes it when the child
    /// first needs one.
    func makeDPDKChildPort() {
        guard let arguments = DPDKEnvironment.initializedArguments, let options else { return }
        do throws(PacketIOError) {
            let plan = try DPDKChildPort.plan(
                ealArguments: arguments, device: dpdkDevice ?? options.interface, pid: getpid())
            let port = try DPDKChildPort.open(plan, configuration: DPDKBackend.configuration(portOptions(options)))
            log.info(port.summary)
            dpdkChildPort = port
            dpdkChildRefusal = nil
        } catch {
            dpdkChildRefusal = "\(error)"
        }
    }
}

@_cdecl("close")
public func hook_close(_ fd: Int32) -> Int32 {
    guard mtcp_fd_entry(fd) != 0, let runtime = PreloadRuntime.current else {
        if let runtime = PreloadRuntime.current, runtime.kernelSocketsListed.load(ordering: .acquiring) > 0 {
            runtime.forgetKernelSocket(fd)
        }
        return mtcp_real_close(fd)
    }
    runtime.detach(fd)
    return mtcp_real_close(fd)
}

@_cdecl("dup")
public func hook_dup(_ fd: Int32) -> Int32 {
    guard mtcp_fd_entry(fd) != 0, let runtime = PreloadRuntime.current else { return mtcp_real_dup(fd) }
    return runtime.withProcessLock {
        let new = mtcp_real_dup(fd)
        if new >= 0 { runtime.share(fd, with: new) }
        return new
    }
}

@_cdecl("dup2")
public func hook_dup2(_ fd: Int32, _ target: Int32) -> Int32 {
    duplicate(fd, target, flags: 0, isDup3: false)
}

@_cdecl("dup3")
public func hook_dup3(_ fd: Int32, _ target: Int32, _ flags: Int32) -> Int32 {
    duplicate(fd, target, flags: flags, isDup3: true)
}

func duplicate(_ fd: Int32, _ target: Int32, flags: Int32, isDup3: Bool) -> Int32 {
    guard let runtime = PreloadRuntime.current, mtcp_fd_entry(fd) != 0 || mtcp_fd_entry(target) != 0 else {
        return isDup3 ? mtcp_real_dup3(fd, target, flags) : mtcp_real_dup2(fd, target)
    }
    return runtime.withProcessLock {
        // The kernel's EINVAL (the same fd to dup3, unknown flags) changes nothing: checked
        // before the target loses its socket.
        if fd == target || (isDup3 && flags & ~O_CLOEXEC != 0) {
            return isDup3 ? mtcp_real_dup3(fd, target, flags) : mtcp_real_dup2(fd, target)
        }
        // dup2 closes the target first; validate the source so a failing call changes nothing.
        if mtcp_real_fcntl(fd, F_GETFD, 0) < 0 { return -1 }
        runtime.detach(target)
        let result = isDup3 ? mtcp_real_dup3(fd, target, flags) : mtcp_real_dup2(fd, target)
        if result >= 0 { runtime.share(fd, with: result) }
        return result
    }
}

/// O_DIRECT and O_NOATIME, which Glibc's module leaves out (they need _GNU_SOURCE).
#if arch(x86_64)
    let directIO: Int32 = 0o40000
#else
    let directIO: Int32 = 0o200000
#endif
let noAccessTime: Int32 = 0o1000000

/// fcntl on a stack socket or a shadowed epoll fd (the C export sends only those here).
@_cdecl("mtcp_preload_fcntl")
public func preload_fcntl(_ fd: Int32, _ command: Int32, _ argument: UInt) -> Int32 {
    guard let runtime = PreloadRuntime.current else { return mtcp_real_fcntl(fd, command, argument) }
    let entry = mtcp_fd_entry(fd)
    switch command {
    case F_DUPFD, F_DUPFD_CLOEXEC:
        return runtime.withProcessLock {
            let new = mtcp_real_fcntl(fd, command, argument)
            if new >= 0 { runtime.share(fd, with: new) }
            return new
        }
    case F_GETFD, F_SETFD:
        return mtcp_real_fcntl(fd, command, argument)
    default:
        let instance = runtime.instance(of: entry)
        return instance.withLock {
            guard let r = instance.record(forEntry: entry) else { return mtcp_real_fcntl(fd, command, argument) }
            switch command {
            case F_GETFL:
                return O_RDWR | (instance.records[r]!.nonBlocking ? O_NONBLOCK : 0) | instance.records[r]!.statusFlags
            case F_SETFL:
                // The placeholder keeps its own flags (every placeholder shares one file). Linux
                // refuses O_DIRECT on a socket; of the rest only O_NONBLOCK means something here.
                let flags = Int32(truncatingIfNeeded: argument)
                if flags & directIO != 0 { return fail(.EINVAL) }
                if flags & O_ASYNC != 0 {
                    runtime.logOnce("O_ASYNC", "O_ASYNC on a stack socket is kept but no SIGIO is sent")
                }
                instance.records[r]!.nonBlocking = flags & O_NONBLOCK != 0
                instance.records[r]!.statusFlags = flags & (O_APPEND | noAccessTime | O_ASYNC)
                return 0
            default:
                runtime.logOnce(
                    "fcntl\(command)", "fcntl command \(command) on a stack socket is not supported: EINVAL")
                return fail(.EINVAL)
            }
        }
    }
}

/// FIOCLEX and FIONCLEX (asm-generic/ioctls.h).
let closeOnExec: UInt = 0x5451
let keepOnExec: UInt = 0x5450

/// ioctl on a stack socket or a shadowed epoll fd.
@_cdecl("mtcp_preload_ioctl")
public func preload_ioctl(_ fd: Int32, _ request: UInt, _ argument: UInt) -> Int32 {
    guard let runtime = PreloadRuntime.current else { return mtcp_real_ioctl(fd, request, argument) }
    let entry = mtcp_fd_entry(fd)
    let instance = runtime.instance(of: entry)
    return instance.withLock {
        guard let r = instance.record(forEntry: entry) else { return mtcp_real_ioctl(fd, request, argument) }
        // The request first: an unknown one is ENOTTY whatever its argument.
        let pointer = UnsafeMutableRawPointer(bitPattern: argument)
        switch request {
        case SocketConstant.FIONBIO:
            guard UserMemory.usable(pointer, 4) else { return fail(.EFAULT) }
            instance.records[r]!.nonBlocking = pointer!.loadUnaligned(as: Int32.self) != 0
            return 0
        case SocketConstant.FIONREAD:
            guard let stack = instance.stack, !instance.records[r]!.inherited else { return fail(.EBADF) }
            var value: Int32 = 0
            do throws(Errno) {
                try stack.ioctl(instance.records[r]!.stackID, request: request, &value)
            } catch {
                return fail(error)
            }
            guard UserMemory.usable(pointer, 4) else { return fail(.EFAULT) }
            pointer!.storeBytes(of: value, as: Int32.self)
            return 0
        case closeOnExec, keepOnExec:
            // The descriptor's own flag: the placeholder holds it.
            return mtcp_real_ioctl(fd, request, argument)
        default:
            runtime.logOnce("ioctl\(request)", "ioctl request \(request) on a stack socket is not supported: ENOTTY")
            return fail(.ENOTTY)
        }
    }
}

@_cdecl("epoll_create")
public func hook_epoll_create(_ size: Int32) -> Int32 {
    guard size > 0 else { return fail(.EINVAL) }
    return hook_epoll_create1(0)
}

@_cdecl("epoll_create1")
public func hook_epoll_create1(_ flags: Int32) -> Int32 {
    let fd = mtcp_real_epoll_create1(flags)
    // A number whose previous owner was closed behind the library's back (close_range, a
    // raw syscall) must not carry that owner's entry.
    if fd >= 0, mtcp_fd_entry(fd) != 0, let runtime = PreloadRuntime.current { runtime.detach(fd) }
    return fd
}

@_cdecl("fork")
public func hook_fork() -> pid_t {
    guard let runtime = PreloadRuntime.current else { return mtcp_real_fork() }
    // Every lock is held across fork so the child's copy of the stacks is not caught
    // half-updated (the process lock first, then the instances' in order: nothing else takes
    // two instance locks, so this cannot deadlock).
    mtcp_lock()
    for k in runtime.instances.indices { mtcp_instance_lock(Int32(k)) }
    let child = mtcp_real_fork()
    if child == 0 {
        mtcp_lock_reset()
        mtcp_instance_locks_reset()
        mtcp_set_thread_instance(-1)
        if runtime.becomeChild() {
            runtime.withProcessLock { _ = runtime.activate() }
        }
        return child
    }
    for k in runtime.instances.indices.reversed() { mtcp_instance_unlock(Int32(k)) }
    // A child that will start its stack at once (see becomeChild) is a successor this
    // process, as primary, must wait for before it lets the role go.
    if child > 0, let steering = runtime.steering, steering.isPrimary, steering.ports.values.contains(false) {
        let first = runtime.instances[0]
        first.withLock { steering.registerStarting(FlowSteering.token(pid: child)) }
    }
    mtcp_unlock()
    return child
}
