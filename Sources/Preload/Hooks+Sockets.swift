import CPreload
import Glibc
import PreloadState
import Stack
import StackRuntime
import Wire

// socket, bind, listen, accept, connect, shutdown, names and options. Each hook first asks the
// descriptor table; an fd that is not a stack socket goes to libc at once.

@inline(__always)
func fail(_ error: Errno) -> Int32 {
    mtcp_set_errno(error.rawValue)
    return -1
}

@inline(__always)
func failSize(_ error: Errno) -> Int {
    mtcp_set_errno(error.rawValue)
    return -1
}

/// What an address given to bind or connect means for a socket of the stack.
enum AddressMeaning {
    /// An address the stack serves (IPv4 ones v4-mapped, wildcards included).
    case stack(IPAddress, UInt16)
    /// An address only the kernel can serve: loopback, an IPv6 address the stack does not
    /// own or reach, or any IPv6 when the stack has no IPv6 address.
    case kernel(reason: String)
    case failure(Errno)
}

/// Reads the address of bind (`connecting` false) or connect as Linux does for the record's
/// family: an AF_INET6 socket takes `::ffff:a.b.c.d` as IPv4 unless IPV6_V6ONLY (then a mapped
/// address is EINVAL to bind, ENETUNREACH to connect); connecting to `::` is connecting to
/// `::1`. IPv6 stays with the kernel when the stack has none.
func readAddress(
    _ address: UnsafePointer<sockaddr>?, _ length: socklen_t, of record: SocketRecord, connecting: Bool,
    ipv6: Bool
) -> AddressMeaning {
    // The length before the address (inet_bind, tcp_v4_connect, inet6_bind, tcp_v6_connect).
    guard length >= (record.inet6 ? 24 : 16) else { return .failure(.EINVAL) }
    guard record.inet6 else {
        var inet = UnsafeRawPointer(address!).loadUnaligned(as: sockaddr_in.self)
        // Binding AF_UNSPEC with the any address is binding AF_INET (Linux's compatibility rule).
        if !connecting && inet.sin_family == sa_family_t(AF_UNSPEC) && inet.sin_addr.s_addr == 0 {
            inet.sin_family = sa_family_t(AF_INET)
        }
        let read: Result<(IPv4Address, UInt16), Errno> = passing(&inet) { pointer, size in
            Result { () throws(Errno) in try InetSocketAddress.read(pointer, size) }
        }
        switch read {
        case .success(let (ip, port)): return .stack(IPAddress(ip), port)
        case .failure(let error): return .failure(error)
        }
    }
    let target: IPAddress
    let port: UInt16
    do throws(Errno) {
        (target, port) = try Inet6SocketAddress.read(address, length)
    } catch {
        return .failure(error)
    }
    if target.isIPv4 {
        if record.v6Only { return .failure(connecting ? .ENETUNREACH : .EINVAL) }
        return .stack(target, port)
    }
    if target == .unspecified {
        if connecting { return .kernel(reason: "AF_INET6 connecting to ::1") }
        // A v6-only socket on `::` serves IPv6 alone: the stack's when it has IPv6.
        if record.v6Only && !ipv6 { return .kernel(reason: "AF_INET6 with IPV6_V6ONLY (the stack has no IPv6)") }
        return .stack(.wildcard(ipv6: ipv6), port)
    }
    guard ipv6, !target.isLoopback else {
        return .kernel(
            reason: connecting
                ? "AF_INET6 connecting to kernel IPv6 addresses" : "AF_INET6 bound to kernel IPv6 addresses")
    }
    return .stack(target, port)
}

/// Writes an address the way the kernel does for the socket's family (an AF_INET6 socket's
/// IPv4 addresses v4-mapped): truncated to the caller's length, which then says the full size.
func writeAddress(
    _ value: (IPAddress, UInt16), _ address: UnsafeMutablePointer<sockaddr>?,
    _ length: UnsafeMutablePointer<socklen_t>?, inet6: Bool = false
) {
    if inet6 {
        try? Inet6SocketAddress.write(value.0, value.1, address, length)
    } else {
        try? InetSocketAddress.write(value.0.ipv4 ?? .any, value.1, address, length)
    }
}

extension PreloadRuntime {
    /// What a descriptor's record is to a hook about to use it (instance lock held).
    enum Usability {
        case usable(Int)
        /// An inherited listener, which this process re-creates when it first uses it.
        case needsAdoption
        /// An inherited connection (the parent's) or no socket at all.
        case unusable
    }

    func usability(_ instance: StackInstance, _ entry: Int32) -> Usability {
        guard let r = instance.record(forEntry: entry) else { return .unusable }
        if instance.records[r]!.inherited { return instance.records[r]!.listening ? .needsAdoption : .unusable }
        return instance.stack == nil ? .unusable : .usable(r)
    }

    /// Runs `body` under the lock of the instance that owns `entry`'s socket (one lock scope),
    /// adopting an inherited listener first; `otherwise` when there is no usable socket.
    @inline(__always)
    func withRecord<R>(
        _ entry: Int32, _ body: (StackInstance, NetworkStack<SelectedLink>, Int) -> R, otherwise: () -> R
    ) -> R {
        let instance = instance(of: entry)
        for _ in 0..<2 {
            var adopting = false
            let result: R? = instance.withLock {
                switch usability(instance, entry) {
                case .usable(let r): return body(instance, instance.stack!, r)
                case .needsAdoption:
                    adopting = true
                    return nil
                case .unusable: return nil
                }
            }
            if let result { return result }
            guard adopting, adopt(entry) else { break }
        }
        return otherwise()
    }

    /// Re-creates an inherited listener in this process's instances (takes the process lock).
    func adopt(_ entry: Int32) -> Bool {
        withProcessLock {
            guard activate() else { return false }
            let home = instance(of: entry)
            let found: SocketRecord? = home.withLock {
                guard let r = home.record(forEntry: entry) else { return nil }
                return home.records[r]
            }
            guard let record = found else { return false }
            guard record.inherited else { return true }  // another thread adopted it
            guard home.stack != nil else { return false }
            // Not interested yet: a call that adopts it (nginx's master calling listen() or
            // setsockopt() again on reload) does not make this process one that accepts; the
            // accept, poll and epoll hooks say so when it does.
            let ids = listenerCopies(
                of: record, address: .wildcard(ipv6: record.inet6), home: nil)
            guard ids[home.index] >= 0 else {
                closeCopies(ids, except: nil)
                return false
            }
            let claimed = home.withLock { home.stack!.claimListener(ids[home.index], replacing: getppid()) }
            if !claimed {
                log.info("listening port \(record.localPort) is served by another process; this one waits to take over")
            }
            home.withLock {
                guard let r = home.record(forEntry: entry) else { return }
                home.records[r]!.stackID = ids[home.index]
                home.records[r]!.copies = ids
                home.records[r]!.ownership = .own
            }
            log.info("took over listening port \(record.localPort) from the parent process")
            return true
        }
    }

    /// A listener like `record` (its options, port and backlog) in `instance`'s stack: an
    /// inherited one adopted, or a copy in a further instance (takes that instance's lock).
    func makeListener(in instance: StackInstance, copying record: SocketRecord, address: IPAddress) -> Int32? {
        instance.withLock {
            guard let stack = instance.stack else { return nil }
            do throws(Errno) {
                let id = try stack.socket(inet6: record.inet6, v6Only: record.v6Only)
                try stack.setNonBlocking(id, true)
                // IPPROTO_IPV6 options live in the record (and IPV6_V6ONLY in the socket itself).
                for option in record.replay where option.level != Int32(IPPROTO_IPV6) {
                    try? option.value.withUnsafeBytes { bytes in
                        try stack.setsockopt(id, level: option.level, name: option.name, value: bytes)
                    }
                }
                try stack.setsockopt(id, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_REUSEADDR, 1)
                try stack.bind(id, address: address, port: record.localPort)
                try stack.listen(id, backlog: Int(record.backlog))
                return id
            } catch {
                logOnce(
                    "listener\(record.localPort)-\(instance.index)",
                    "cannot listen on port \(record.localPort) in instance \(instance.index): \(error)")
                return nil
            }
        }
    }

    /// Copies a listener that just started listening into every other running instance, so
    /// that each accepts its share of the port's connections (takes the locks itself).
    func replicateListener(_ entry: Int32) {
        guard activeInstances > 1 else { return }
        withProcessLock {
            let home = instance(of: entry)
            let found: (SocketRecord, IPAddress)? = home.withLock {
                guard let r = home.record(forEntry: entry), let stack = home.stack,
                    let local = try? stack.getsockname(home.records[r]!.stackID)
                else { return nil }
                return (home.records[r]!, local.address)
            }
            guard let (record, address) = found, record.listening, record.copies.isEmpty else { return }
            let ids = listenerCopies(of: record, address: address, home: home)
            let kept = home.withLock {
                guard let r = home.record(forEntry: entry), home.records[r]!.stackID == record.stackID else {
                    return false
                }
                home.records[r]!.copies = ids
                return true
            }
            // Closed meanwhile: its copies go too.
            if !kept { closeCopies(ids, except: home.index) }
        }
    }

    /// The stack sockets of a listener like `record` by instance (-1: none there), one made in
    /// each running instance (`home` keeps the record's own socket instead).
    func listenerCopies(of record: SocketRecord, address: IPAddress, home: StackInstance?) -> [Int32] {
        var ids = [Int32](repeating: -1, count: instances.count)
        for instance in runningInstances {
            ids[instance.index] =
                instance === home
                ? record.stackID : makeListener(in: instance, copying: record, address: address) ?? -1
        }
        return ids
    }

    /// Closes the listener copies `ids` made (all but instance `except`'s).
    func closeCopies(_ ids: [Int32], except: Int?) {
        for instance in runningInstances where instance.index != except && ids[instance.index] >= 0 {
            instance.withLock { try? instance.stack?.close(ids[instance.index]) }
        }
    }

    /// Moves a stack socket to the kernel: a real socket takes the placeholder's fd number,
    /// with the options set so far (instance lock held; never a listener with copies).
    func fallBack(_ instance: StackInstance, _ fd: Int32, _ r: Int, reason: String) -> Bool {
        let record = instance.records[r]!
        let flags = (record.nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let family = record.inet6 ? AF_INET6 : AF_INET
        let kernel = mtcp_real_socket(family, Int32(SOCK_STREAM.rawValue) | flags, record.proto)
        guard kernel >= 0 else { return false }
        if record.inet6 {
            // The kernel's own default may differ from what the application was told.
            var only: Int32 = record.v6Only ? 1 : 0
            _ = mtcp_real_setsockopt(kernel, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &only, 4)
        }
        for option in record.replay {
            _ = option.value.withUnsafeBytes { bytes in
                mtcp_real_setsockopt(kernel, option.level, option.name, bytes.baseAddress, socklen_t(bytes.count))
            }
        }
        let closeOnExec = mtcp_real_fcntl(fd, F_GETFD, 0) & FD_CLOEXEC != 0
        guard mtcp_real_dup3(kernel, fd, closeOnExec ? O_CLOEXEC : 0) >= 0 else {
            _ = mtcp_real_close(kernel)
            return false
        }
        _ = mtcp_real_close(kernel)
        _ = forget(instance, fd, r)
        listKernelSocket(
            fd, family: family, type: Int32(SOCK_STREAM.rawValue),
            reason: record.inet6 ? reason : "IPv4 TCP \(reason)")
        logOnce("fallback:\(reason)", "sockets \(reason) use the kernel (first: fd \(fd))")
        return true
    }

    /// What closing a record's last descriptor leaves to do outside its instance's lock.
    struct Leftovers {
        /// A listener's copies in other instances, to close.
        var copies: [(instance: Int, id: Int32)] = []
        /// An inherited listener's port, which this process no longer holds.
        var heldPort: UInt16?
        var lastReference = false
    }

    /// Drops fd's reference to record r; the last one closes the stack socket (instance lock
    /// held). The caller finishes the leftovers (`finish`) once the lock is released.
    func forget(_ instance: StackInstance, _ fd: Int32, _ r: Int) -> Leftovers {
        _ = mtcp_fd_set_entry(fd, 0)
        instance.records[r]!.references -= 1
        var leftovers = Leftovers()
        guard instance.records[r]!.references == 0 else { return leftovers }
        let record = instance.records[r]!
        leftovers.lastReference = !record.inherited
        if !record.inherited, let stack = instance.stack {
            try? stack.close(record.stackID)
            leftovers.copies = record.otherCopies(home: instance.index)
        } else if record.inherited && record.listening {
            // No longer holds the parent's listener (a BGSAVE child closing what it inherited).
            leftovers.heldPort = record.localPort
        }
        instance.records.release(r)
        return leftovers
    }

    /// Closes what `forget` left (no lock held; takes the other instances' locks in turn).
    func finish(_ leftovers: Leftovers) {
        for (k, id) in leftovers.copies {
            let other = instances[k]
            other.withLock {
                try? other.stack?.close(id)
                other.driveAfterOutput()
            }
        }
        if let port = leftovers.heldPort {
            let first = instances[0]
            first.withLock { first.steering?.stopListening(port: port) }
        }
    }

    /// Whether the kernel should carry a connection to `destination`: loopback, and places the
    /// stack has no route to.
    func kernelCarries(_ destination: IPAddress, _ stack: NetworkStack<SelectedLink>) -> Bool {
        if destination.isLoopback || destination.isUnspecified { return true }
        do throws(Errno) {
            _ = try stack.route(to: destination)
            return false
        } catch {
            return true
        }
    }

    /// A new descriptor for stack socket `id` of `instance` (its lock held); -1 with errno
    /// when none is free.
    func newDescriptor(
        in instance: StackInstance, for id: Int32, nonBlocking: Bool, closeOnExec: Bool, keepsOptions: Bool = true,
        proto: Int32 = 0, inet6: Bool = false, v6Only: Bool = false
    ) -> Int32 {
        let fd = placeholder(closeOnExec: closeOnExec)
        guard fd >= 0 else {
            let saved = mtcp_errno()
            try? instance.stack?.close(id)
            mtcp_set_errno(saved)
            return -1
        }
        var record = SocketRecord(stackID: id, proto: proto)
        record.inet6 = inet6
        record.v6Only = v6Only
        record.nonBlocking = nonBlocking
        record.keepsOptions = keepsOptions
        let index = instance.records.add(record)
        let entry = instance.records.entry(of: index)
        guard mtcp_fd_set_entry(fd, entry) != 0 else {
            instance.records.release(Int(index))
            try? instance.stack?.close(id)
            _ = mtcp_real_close(fd)
            mtcp_set_errno(EMFILE)
            return -1
        }
        return fd
    }

    /// Opens the kernel half of a listener on 0.0.0.0 (loopback health checks), in the
    /// placeholder's fd number (instance lock held).
    func addKernelListener(_ instance: StackInstance, _ fd: Int32, _ r: Int) {
        let record = instance.records[r]!
        let kernel = mtcp_real_socket(
            record.inet6 ? AF_INET6 : AF_INET,
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard kernel >= 0 else { return }
        var one: Int32 = 1
        _ = mtcp_real_setsockopt(kernel, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        // An AF_INET6 listener on `::` is dual-stack in the kernel too (127.0.0.1 and ::1),
        // unless it is v6-only (beside a 0.0.0.0 listener on the port, as redis opens them).
        var v6Only: Int32 = record.v6Only ? 1 : 0
        if record.inet6 { _ = mtcp_real_setsockopt(kernel, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &v6Only, 4) }
        for option in record.replay where option.level == SOL_SOCKET && option.name == SO_REUSEPORT {
            _ = option.value.withUnsafeBytes { bytes in
                mtcp_real_setsockopt(kernel, option.level, option.name, bytes.baseAddress, socklen_t(bytes.count))
            }
        }
        let bound = withAnyAddress(port: record.localPort, inet6: record.inet6) { mtcp_real_bind(kernel, $0, $1) }
        let closeOnExec = mtcp_real_fcntl(fd, F_GETFD, 0) & FD_CLOEXEC != 0
        if bound == 0, mtcp_real_listen(kernel, record.backlog) == 0,
            mtcp_real_dup3(kernel, fd, closeOnExec ? O_CLOEXEC : 0) >= 0
        {
            instance.records[r]!.kernelListener = true
            logOnce(
                "kernel-listen",
                "listeners on 0.0.0.0 also accept on kernel interfaces (MTCP_KERNEL_LISTEN=0 turns this off)")
        } else {
            logOnce(
                "kernel-listen-fail\(record.localPort)",
                "no kernel listener on port \(record.localPort) (errno \(mtcp_errno())): stack only")
        }
        _ = mtcp_real_close(kernel)
    }
}

/// Runs `body` with the unspecified address (0.0.0.0, or `::` for AF_INET6) and `port`.
func withAnyAddress<R>(port: UInt16, inet6: Bool, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
    if inet6 {
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = port.bigEndian
        return passing(&address, body)
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    return passing(&address, body)
}

/// Runs `body` with `address` (a sockaddr_in or sockaddr_in6) as a `sockaddr` of its size.
func passing<Address, R>(_ address: inout Address, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
    withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            body($0, socklen_t(MemoryLayout<Address>.size))
        }
    }
}

// MARK: - Exports

@_cdecl("socket")
public func hook_socket(_ domain: Int32, _ type: Int32, _ proto: Int32) -> Int32 {
    let base = type & 0xF
    // Flags other than SOCK_NONBLOCK and SOCK_CLOEXEC: the kernel's EINVAL.
    guard type & ~(0xF | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)) == 0 else {
        return mtcp_real_socket(domain, type, proto)
    }
    guard mtcp_enabled != 0, domain == AF_INET || domain == AF_INET6, base == Int32(SOCK_STREAM.rawValue),
        proto == 0 || proto == Int32(IPPROTO_TCP)
    else {
        if mtcp_enabled != 0 && (domain == AF_INET || domain == AF_INET6) {
            // Say once which kinds of sockets stay with the kernel (AF_UNIX is expected).
            let family = domain == AF_INET6 ? "IPv6" : "IPv4"
            let kind = base == Int32(SOCK_DGRAM.rawValue) ? "\(family) UDP" : "\(family) raw/other"
            let fd = mtcp_real_socket(domain, type, proto)
            let runtime = mtcp_withProcessLock {
                let runtime = PreloadRuntime.obtain()
                // A stream socket starts the stacks, so that mtcp-stat shows this process and why
                // its socket is the kernel's (a server on :: would otherwise be invisible there);
                // datagram sockets (a resolver's) are listed only when the stacks run anyway.
                let stream = base == Int32(SOCK_STREAM.rawValue)
                if fd >= 0 && (stream ? runtime.activate() : runtime.stack != nil) {
                    runtime.listKernelSocket(
                        fd, family: domain, type: type, reason: "\(kind): the stack serves TCP")
                }
                return runtime
            }
            runtime.logOnce("family:\(kind)", "\(kind) sockets use the kernel (the stack serves TCP)")
            return fd
        }
        return mtcp_real_socket(domain, type, proto)
    }
    let (runtime, active) = mtcp_withProcessLock {
        let runtime = PreloadRuntime.obtain()
        return (runtime, runtime.activate())
    }
    guard active else { return mtcp_real_socket(domain, type, proto) }
    let instance = runtime.threadInstance()
    return instance.withLock {
        guard let stack = instance.stack else { return mtcp_real_socket(domain, type, proto) }
        let id: Int32
        do throws(Errno) {
            id = try stack.socket(inet6: domain == AF_INET6, v6Only: PreloadRuntime.bindV6OnlyDefault)
            try stack.setNonBlocking(id, true)
        } catch {
            return fail(error)
        }
        return runtime.newDescriptor(
            in: instance, for: id, nonBlocking: type & Int32(SOCK_NONBLOCK.rawValue) != 0,
            closeOnExec: type & Int32(SOCK_CLOEXEC.rawValue) != 0, proto: proto, inet6: domain == AF_INET6,
            v6Only: domain == AF_INET6 && PreloadRuntime.bindV6OnlyDefault)
    }
}

/// Runs `body` with the process lock held.
@inline(__always)
func mtcp_withProcessLock<R>(_ body: () -> R) -> R {
    mtcp_lock()
    defer { mtcp_unlock() }
    return body()
}

@_cdecl("bind")
public func hook_bind(_ fd: Int32, _ address: UnsafePointer<sockaddr>?, _ length: socklen_t) -> Int32 {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_bind(fd, address, length) }
    guard let runtime = PreloadRuntime.current else { return fail(.EINVAL) }
    if let error = SocketAddressCopy.inbound(address, length) { return fail(error) }
    enum Outcome {
        case done(Int32)
        case movedToKernel
    }
    let outcome: Outcome = runtime.withRecord(
        entry,
        { instance, stack, r in
            let ip: IPAddress
            let port: UInt16
            switch readAddress(address, length, of: instance.records[r]!, connecting: false, ipv6: stack.ipv6Enabled) {
            case .stack(let a, let p): (ip, port) = (a, p)
            case .failure(let error): return .done(fail(error))
            case .kernel(let reason):
                return runtime.fallBack(instance, fd, r, reason: reason) ? .movedToKernel : .done(fail(.EADDRNOTAVAIL))
            }
            if !ip.isUnspecified && !stack.owns(ip) {
                // An address the kernel owns (loopback, another interface).
                let moved = runtime.fallBack(instance, fd, r, reason: "bound to kernel addresses")
                return moved ? .movedToKernel : .done(fail(.EADDRNOTAVAIL))
            }
            if port != 0, runtime.options?.kernelSharesAddress == true, KernelListeners.listen(port: port, at: ip) {
                // Shared mode: the kernel's port stays the kernel's, as a second bind there fails.
                runtime.logOnce(
                    "kernel-port-\(port)", "port \(port) is the kernel's (a kernel socket listens there): EADDRINUSE")
                return .done(fail(.EADDRINUSE))
            }
            do throws(Errno) {
                let id = instance.records[r]!.stackID
                try stack.bind(id, address: ip, port: port)
                if !instance.records[r]!.listening { instance.records[r]!.role = .bound }
                instance.records[r]!.localPort = try stack.getsockname(id).port
                return .done(0)
            } catch {
                return .done(fail(error))
            }
        }, otherwise: { .done(fail(.EINVAL)) })
    switch outcome {
    case .done(let result): return result
    case .movedToKernel: return mtcp_real_bind(fd, address, length)
    }
}

@_cdecl("listen")
public func hook_listen(_ fd: Int32, _ backlog: Int32) -> Int32 {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_listen(fd, backlog) }
    guard let runtime = PreloadRuntime.current else { return fail(.EBADF) }
    let backlog = backlog <= 0 ? 128 : min(backlog, 65535)
    var copiesToUpdate: [(instance: Int, id: Int32)] = []
    let result = runtime.withRecord(
        entry,
        { instance, stack, r in
            let id = instance.records[r]!.stackID
            do throws(Errno) {
                let wasBound = instance.records[r]!.bound
                try stack.listen(id, backlog: Int(backlog))
                instance.records[r]!.role = .listener
                instance.records[r]!.backlog = backlog
                let local = try stack.getsockname(id)
                instance.records[r]!.localPort = local.port
                if runtime.kernelListen && wasBound && local.address.isUnspecified
                    && !instance.records[r]!.kernelListener
                {
                    runtime.addKernelListener(instance, fd, r)
                }
                copiesToUpdate = instance.records[r]!.otherCopies(home: instance.index)
                return 0
            } catch {
                return fail(error)
            }
        }, otherwise: { fail(.EBADF) })
    guard result == 0 else { return result }
    if copiesToUpdate.isEmpty {
        // A first listen() (a listener with copies already has them: replicateListener checks).
        runtime.replicateListener(entry)
    } else {
        // listen() again (a new backlog, nginx on reload): the copies take it too.
        for (k, id) in copiesToUpdate {
            let other = runtime.instances[k]
            other.withLock { _ = try? other.stack?.listen(id, backlog: Int(backlog)) }
        }
    }
    return 0
}

@_cdecl("accept")
public func hook_accept(
    _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?
) -> Int32 {
    hook_accept4(fd, address, length, 0)
}

/// What an accept found out about its listener (under its instance's lock).
struct ListenerView {
    var stackID: Int32
    var copies: [Int32]
    var firstInstance: Int
    var nonBlocking: Bool
    var kernelListener: Bool
    var kernelFirst: Bool
    var kernelHalfMayBeReady: Bool
    var kernelHalfLastTry: UInt64
    var receiveTimeout: Int64
    /// An AF_INET6 listener: accepted sockets are AF_INET6, their peers shown v4-mapped.
    var inet6: Bool
    var serial: UInt64
}

extension PreloadRuntime {
    /// One non-blocking accept from the listener's copy in `instance` (takes its lock): the
    /// new descriptor, -1 with errno, or nil when it has no connection.
    func acceptOnce(
        _ instance: StackInstance, _ id: Int32, nonBlocking: Bool, flags: Int32, inet6: Bool,
        _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?
    ) -> Int32? {
        var peer: (IPAddress, UInt16)?
        let result: Int32? = instance.withLock {
            guard let stack = instance.stack else { return nil }
            stack.markInterested(id)
            var accepted: (socket: Int32, address: IPAddress, port: UInt16)?
            do throws(Errno) {
                accepted = try stack.accept(id)
            } catch .EAGAIN {
                // Inside an epoll batch the next epoll_wait runs the round (`inEpollBatch`).
                if !(instance.inEpollBatch && nonBlocking) {
                    instance.drive()
                    accepted = try? stack.accept(id)
                }
            } catch {
                return fail(error)
            }
            guard let accepted else { return nil }
            try? stack.setNonBlocking(accepted.socket, true)
            peer = (accepted.address, accepted.port)
            return newDescriptor(
                in: instance, for: accepted.socket, nonBlocking: flags & Int32(SOCK_NONBLOCK.rawValue) != 0,
                closeOnExec: flags & Int32(SOCK_CLOEXEC.rawValue) != 0, keepsOptions: false, inet6: inet6)
        }
        if let result, result >= 0, let peer, address != nil,
            let error = copyAddressOut(peer, address, length, inet6: inet6)
        {
            // Linux fails the call, and the connection it took goes with its new descriptor.
            _ = hook_close(result)
            return fail(error)
        }
        return result
    }
}

@_cdecl("accept4")
public func hook_accept4(
    _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?, _ flags: Int32
) -> Int32 {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_accept4(fd, address, length, flags) }
    guard let runtime = PreloadRuntime.current else { return fail(.EBADF) }
    guard flags & ~(Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)) == 0 else { return fail(.EINVAL) }
    var serial: UInt64?
    while true {
        let seen: Result<ListenerView, Errno> = runtime.withRecord(
            entry,
            { instance, stack, r in
                let record = instance.records[r]!
                // Closed while this call waited, and the entry given to another socket.
                if let serial, serial != record.serial { return .failure(.EBADF) }
                guard record.listening else { return .failure(.EINVAL) }
                instance.records[r]!.preferKernel.toggle()
                let turns = max(record.copies.count, 1)
                instance.records[r]!.acceptTurn = (record.acceptTurn + 1) % turns
                return .success(
                    ListenerView(
                        stackID: record.stackID, copies: record.copies,
                        firstInstance: record.copies.isEmpty ? instance.index : record.acceptTurn,
                        nonBlocking: record.nonBlocking, kernelListener: record.kernelListener,
                        kernelFirst: record.kernelListener && record.preferKernel,
                        kernelHalfMayBeReady: record.kernelHalfMayBeReady,
                        kernelHalfLastTry: record.kernelHalfLastTry, receiveTimeout: record.receiveTimeout,
                        inet6: record.inet6, serial: record.serial))
            }, otherwise: { .failure(.EBADF) })
        let view: ListenerView
        switch seen {
        case .failure(let error): return fail(error)
        case .success(let found): view = found
        }
        serial = view.serial
        let home = runtime.instance(of: entry)
        if !view.kernelFirst {
            if view.copies.isEmpty {
                if let new = runtime.acceptOnce(
                    home, view.stackID, nonBlocking: view.nonBlocking, flags: flags, inet6: view.inet6, address, length)
                {
                    return new
                }
            } else {
                // Each instance accepts its own share; they take turns being asked first.
                let count = view.copies.count
                for step in 0..<count {
                    let k = (view.firstInstance + step) % count
                    guard view.copies[k] >= 0 else { continue }
                    if let new = runtime.acceptOnce(
                        runtime.instances[k], view.copies[k], nonBlocking: view.nonBlocking, flags: flags,
                        inet6: view.inet6, address, length)
                    {
                        return new
                    }
                }
            }
        }
        let driven = home.lastDriven.load(ordering: .relaxed)
        let tryKernel =
            view.kernelListener
            && (!view.nonBlocking || view.kernelHalfMayBeReady || driven &- view.kernelHalfLastTry >= 10_000_000)
        if tryKernel {
            let new = mtcp_real_accept4(fd, address, length, flags)
            if new >= 0 { return new }
            let error = mtcp_errno()
            if error != EAGAIN && error != EWOULDBLOCK { return -1 }
            runtime.markKernelHalf(of: fd, mayBeReady: false, triedAt: driven)
        }
        if view.kernelFirst { continue }
        if view.nonBlocking { return fail(.EAGAIN) }
        let woke = runtime.wait(for: fd, events: Int16(POLLIN), timeout: view.receiveTimeout)
        if woke < 0 { return -1 }
        if woke == 0 { return fail(.EAGAIN) }
    }
}

@_cdecl("connect")
public func hook_connect(_ fd: Int32, _ address: UnsafePointer<sockaddr>?, _ length: socklen_t) -> Int32 {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_connect(fd, address, length) }
    guard let runtime = PreloadRuntime.current else { return fail(.EBADF) }
    // As inet_stream_connect: the copy, a family's worth of length, AF_UNSPEC, then the state.
    if let error = SocketAddressCopy.inbound(address, length) { return fail(error) }
    guard length >= socklen_t(MemoryLayout<sa_family_t>.size), let address else { return fail(.EINVAL) }
    let family = Int32(UnsafeRawPointer(address).loadUnaligned(as: sa_family_t.self))
    enum Outcome {
        case done(Int32)
        case movedToKernel(bound: UInt16?, inet6: Bool)
        case inProgress(nonBlocking: Bool, timeout: Int64, id: Int32, ip: IPAddress, port: UInt16, serial: UInt64)
    }
    let home = runtime.instance(of: entry)
    let outcome: Outcome = home.withLock {
        guard case .usable(let r) = runtime.usability(home, entry), let stack = home.stack else {
            return .done(fail(.EBADF))
        }
        let record = home.records[r]!
        let connected = (try? stack.getpeername(record.stackID)) != nil
        if family == AF_UNSPEC {
            // Dissolving an association: nothing to do for a socket without one.
            guard connected || record.listening else { return .done(0) }
            runtime.logOnce("dissolve", "connect(AF_UNSPEC) on a connected or listening stack socket is not supported")
            return .done(fail(.EOPNOTSUPP))
        }
        if connected || record.listening { return .done(fail(.EISCONN)) }
        let ip: IPAddress
        let port: UInt16
        switch readAddress(address, length, of: record, connecting: true, ipv6: stack.ipv6Enabled) {
        case .stack(let a, let p): (ip, port) = (a, p)
        case .failure(let error):
            return .done(fail(error))
        case .kernel(let reason):
            guard runtime.fallBack(home, fd, r, reason: reason) else { return .done(fail(.ENOBUFS)) }
            return .movedToKernel(bound: record.bound && record.localPort != 0 ? record.localPort : nil, inet6: true)
        }
        if runtime.kernelCarries(ip, stack) {
            guard runtime.fallBack(home, fd, r, reason: "connecting to loopback or unrouted addresses") else {
                return .done(fail(.ENOBUFS))
            }
            return .movedToKernel(
                bound: record.bound && record.localPort != 0 ? record.localPort : nil, inet6: record.inet6)
        }
        do throws(Errno) {
            try stack.connect(record.stackID, address: ip, port: port)
            home.records[r]!.keepsOptions = false
            return .done(0)
        } catch .EINPROGRESS {
            home.records[r]!.keepsOptions = false
            // The SYN goes now, or with the batch's other frames (`inEpollBatch`).
            home.driveAfterOutput()
            return .inProgress(
                nonBlocking: record.nonBlocking, timeout: record.sendTimeout, id: record.stackID, ip: ip, port: port,
                serial: record.serial)
        } catch {
            return .done(fail(error))
        }
    }
    switch outcome {
    case .done(let result):
        return result
    case .movedToKernel(let bound, let inet6):
        if let bound { _ = withAnyAddress(port: bound, inet6: inet6) { mtcp_real_bind(fd, $0, $1) } }
        return mtcp_real_connect(fd, address, length)
    case .inProgress(let nonBlocking, let timeout, let id, let ip, let port, let serial):
        if nonBlocking { return fail(.EINPROGRESS) }
        while true {
            let woke = runtime.wait(for: fd, events: Int16(POLLOUT), timeout: timeout)
            if woke < 0 { return -1 }
            if woke == 0 { return fail(.EINPROGRESS) }
            let finished: Int32? = home.withLock {
                // Closed while this call waited: its stack socket may be another's by now.
                guard let stack = home.stack, let r = home.record(forEntry: entry), home.records[r]!.serial == serial
                else { return fail(.EBADF) }
                do throws(Errno) {
                    try stack.connect(id, address: ip, port: port)
                    return 0
                } catch .EISCONN {
                    return 0
                } catch .EALREADY {
                    return nil
                } catch {
                    return fail(error)
                }
            }
            if let finished { return finished }
        }
    }
}

@_cdecl("shutdown")
public func hook_shutdown(_ fd: Int32, _ how: Int32) -> Int32 {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_shutdown(fd, how) }
    return withStackSocket(entry) { instance, stack, r in
        do throws(Errno) {
            try stack.shutdown(instance.records[r]!.stackID, how: how)
            instance.driveAfterOutput()
            return 0
        } catch {
            return fail(error)
        }
    }
}

@_cdecl("getsockname")
public func hook_getsockname(
    _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?
) -> Int32 {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_getsockname(fd, address, length) }
    return withStackSocket(entry) { instance, stack, r in
        do throws(Errno) {
            let name = try stack.getsockname(instance.records[r]!.stackID)
            if let error = copyAddressOut(name, address, length, inet6: instance.records[r]!.inet6) {
                return fail(error)
            }
            return 0
        } catch {
            return fail(error)
        }
    }
}

@_cdecl("getpeername")
public func hook_getpeername(
    _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?
) -> Int32 {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_getpeername(fd, address, length) }
    return withStackSocket(entry) { instance, stack, r in
        do throws(Errno) {
            let name = try stack.getpeername(instance.records[r]!.stackID)
            if let error = copyAddressOut(name, address, length, inet6: instance.records[r]!.inet6) {
                return fail(error)
            }
            return 0
        } catch {
            return fail(error)
        }
    }
}

@_cdecl("setsockopt")
public func hook_setsockopt(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: UnsafeRawPointer?, _ length: socklen_t)
    -> Int32
{
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_setsockopt(fd, level, name, value, length) }
    guard let runtime = PreloadRuntime.current else { return fail(.EBADF) }
    if let error = SocketOptionRules.set(level: level, name: name, value: value, length: length) { return fail(error) }
    // The option's own size is read, as Linux copies it in (a longer length reads no further);
    // a value the rules let through unreadable is none, or 0 at IPPROTO_IPV6.
    var copied: (UInt64, UInt64) = (0, 0)
    var size = SocketOptionRules.valueSize(level: level, name: name, length: length)
    if let value, UserMemory.usable(value, UInt(size)) {
        withUnsafeMutableBytes(of: &copied) { $0.baseAddress!.copyMemory(from: value, byteCount: size) }
    } else if level != Int32(IPPROTO_IPV6) {
        size = 0
    }
    var timeout = SocketOptionRules.Timeout.none
    if level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO) {
        switch withUnsafeBytes(
            of: &copied, { SocketOptionRules.timeout(UnsafeRawBufferPointer(rebasing: $0[0..<size])) })
        {
        case .failure(let error): return fail(error)
        case .success(let asked): timeout = asked
        }
        // What getsockopt reads back (a negative time reads as none).
        copied = (UInt64(bitPattern: timeout.shown.seconds), UInt64(bitPattern: timeout.shown.microseconds))
    }
    return withUnsafeBytes(of: &copied) { raw in
        setOption(runtime, entry, level: level, name: name, UnsafeRawBufferPointer(rebasing: raw[0..<size]), timeout)
    }
}

/// setsockopt's work with the value checked and copied (`bytes`), and a timeout's meaning.
func setOption(
    _ runtime: PreloadRuntime, _ entry: Int32, level: Int32, name: Int32, _ bytes: UnsafeRawBufferPointer,
    _ timeout: SocketOptionRules.Timeout
) -> Int32 {
    var copies: [(instance: Int, id: Int32)] = []
    let home = runtime.instance(of: entry)
    // Inherited records keep options too (for the listener this process may adopt).
    let result: Int32 = home.withLock {
        guard let r = home.record(forEntry: entry) else { return fail(.EBADF) }
        if level == Int32(IPPROTO_IPV6) {
            return runtime.setIPv6Option(home, r, name: name, bytes)
        }
        if !home.records[r]!.inherited {
            guard let stack = home.stack else { return fail(.EBADF) }
            do throws(Errno) {
                try stack.setsockopt(home.records[r]!.stackID, level: level, name: name, value: bytes)
            } catch {
                return fail(error)
            }
            copies = home.records[r]!.otherCopies(home: home.index)
        }
        if level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO) {
            if name == SO_RCVTIMEO {
                home.records[r]!.receiveTimeout = timeout.nanoseconds
            } else {
                home.records[r]!.sendTimeout = timeout.nanoseconds
            }
        }
        // Kept for a fall-back to the kernel and for a forked child re-creating a listener;
        // connected sockets need neither (nginx sets TCP_CORK per response).
        home.records[r]!.keep(level: level, name: name, value: Array(bytes))
        return 0
    }
    // A listener's copies in the other instances take the option too.
    for (k, id) in copies {
        let other = runtime.instances[k]
        other.withLock { try? other.stack?.setsockopt(id, level: level, name: name, value: bytes) }
    }
    return result
}

@_cdecl("getsockopt")
public func hook_getsockopt(
    _ fd: Int32, _ level: Int32, _ name: Int32, _ value: UnsafeMutableRawPointer?,
    _ length: UnsafeMutablePointer<socklen_t>?
) -> Int32 {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_getsockopt(fd, level, name, value, length) }
    return withStackSocket(entry) { instance, stack, r in
        if let error = SocketOptionRules.get(level: level, length: length, inet6: instance.records[r]!.inet6) {
            return fail(error)
        }
        let length = length!
        let room = Int(length.pointee)
        // Options with a wider C form than the caller gave are cut, as the kernel does for ints.
        func answer(_ bytes: UnsafeRawBufferPointer) -> Int32 {
            let copied = min(bytes.count, room)
            guard UserMemory.usable(value, UInt(copied)) else { return fail(.EFAULT) }
            if copied > 0 { value!.copyMemory(from: bytes.baseAddress!, byteCount: copied) }
            length.pointee = socklen_t(copied)
            return 0
        }
        if let known = PreloadRuntime.familyOption(instance.records[r]!, level: level, name: name) {
            return withUnsafeBytes(of: known) { answer($0) }
        }
        if level == Int32(IPPROTO_IPV6) { return fail(.ENOPROTOOPT) }
        return withUnsafeTemporaryAllocation(byteCount: 256, alignment: 8) { scratch in
            do throws(Errno) {
                let n = try stack.getsockopt(instance.records[r]!.stackID, level: level, name: name, into: scratch)
                return answer(UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
            } catch {
                return fail(error)
            }
        }
    }
}

/// Runs `body` under the owning instance's lock on a live stack socket; EBADF for a
/// connection inherited from a parent process (it belongs to the parent).
func withStackSocket(_ entry: Int32, _ body: (StackInstance, NetworkStack<SelectedLink>, Int) -> Int32) -> Int32 {
    guard let runtime = PreloadRuntime.current else { return fail(.EBADF) }
    return runtime.withRecord(
        entry, body,
        otherwise: {
            runtime.logOnce(
                "inherited-io", "a connection inherited across fork belongs to the parent process: EBADF here")
            return fail(.EBADF)
        })
}
