import CPreload
import Glibc
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

/// An IPv4 socket address the application passed, or nil when it is not a valid AF_INET one.
func readAddress(_ address: UnsafePointer<sockaddr>?, _ length: socklen_t) -> (IPv4Address, UInt16)? {
    try? InetSocketAddress.read(address, length)
}

/// Writes an IPv4 address the way the kernel does: truncated to the caller's length, which
/// then says the full size.
func writeAddress(
    _ value: (IPv4Address, UInt16), _ address: UnsafeMutablePointer<sockaddr>?,
    _ length: UnsafeMutablePointer<socklen_t>?
) {
    try? InetSocketAddress.write(value.0, value.1, address, length)
}

extension PreloadRuntime {
    /// The index of a usable stack socket record for a table entry; an inherited listener is
    /// adopted first. nil for inherited connections and for anything else (lock held).
    func adoptedRecord(_ entry: Int32) -> Int? {
        guard let r = record(forEntry: entry) else { return nil }
        if records[r]!.inherited {
            guard records[r]!.listening, adopt(r) else { return nil }
        }
        return r
    }

    /// Re-creates an inherited listener in this process's stack (lock held).
    func adopt(_ r: Int) -> Bool {
        guard activate(), let stack else { return false }
        let record = records[r]!
        do throws(Errno) {
            let id = try stack.socket()
            try stack.setNonBlocking(id, true)
            for option in record.replay {
                try? option.value.withUnsafeBytes { bytes in
                    try stack.setsockopt(id, level: option.level, name: option.name, value: bytes)
                }
            }
            try stack.setsockopt(id, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_REUSEADDR, 1)
            try stack.bind(id, address: .any, port: record.localPort)
            try stack.listen(id, backlog: Int(record.backlog))
            // Not interested yet: a call that adopts it (nginx's master calling listen() or
            // setsockopt() again on reload) does not make this process one that accepts; the
            // accept, poll and epoll hooks say so when it does.
            if !stack.claimListener(id, replacing: getppid()) {
                log.info("listening port \(record.localPort) is served by another process; this one waits to take over")
            }
            records[r]!.stackID = id
            records[r]!.inherited = false
            log.info("took over listening port \(record.localPort) from the parent process")
            return true
        } catch {
            logOnce("adopt\(record.localPort)", "cannot take over listening port \(record.localPort): \(error)")
            return false
        }
    }

    /// Moves a stack socket to the kernel: a real socket takes the placeholder's fd number,
    /// with the options set so far (lock held).
    func fallBack(_ fd: Int32, _ r: Int, reason: String) -> Bool {
        let record = records[r]!
        let flags = (record.nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let kernel = mtcp_real_socket(AF_INET, Int32(SOCK_STREAM.rawValue) | flags, record.proto)
        guard kernel >= 0 else { return false }
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
        forget(fd, r)
        logOnce("fallback:\(reason)", "sockets \(reason) use the kernel (first: fd \(fd))")
        return true
    }

    /// Drops fd's reference to record r; the last one closes the stack socket (lock held).
    func forget(_ fd: Int32, _ r: Int) {
        _ = mtcp_fd_set_entry(fd, 0)
        records[r]!.references -= 1
        guard records[r]!.references == 0 else { return }
        let record = records[r]!
        if !record.inherited, let stack {
            for shadow in shadows {
                shadow?.members.removeValue(forKey: fd)
            }
            try? stack.close(record.stackID)
        } else if record.inherited && record.listening {
            // No longer holds the parent's listener (a BGSAVE child closing what it inherited).
            steering?.stopListening(port: record.localPort)
        }
        releaseRecord(r)
    }

    /// Whether the kernel should carry a connection to `destination`: loopback, and places the
    /// stack has no route to.
    func kernelCarries(_ destination: IPv4Address) -> Bool {
        if destination.rawValue >> 24 == 127 || destination == .any { return true }
        guard let stack else { return true }
        do throws(Errno) {
            _ = try stack.route(to: destination)
            return false
        } catch {
            return true
        }
    }

    /// A new descriptor for a stack socket `id` (lock held); -1 with errno when none is free.
    func newDescriptor(
        for id: Int32, nonBlocking: Bool, closeOnExec: Bool, keepsOptions: Bool = true
    ) -> Int32 {
        let fd = placeholder(closeOnExec: closeOnExec)
        guard fd >= 0 else {
            let saved = mtcp_errno()
            try? stack?.close(id)
            mtcp_set_errno(saved)
            return -1
        }
        var record = SocketRecord(stackID: id, proto: 0)
        record.nonBlocking = nonBlocking
        record.keepsOptions = keepsOptions
        let index = addRecord(record)
        guard mtcp_fd_set_entry(fd, DescriptorEntry.make(kind: DescriptorEntry.socketKind, index: index)) != 0 else {
            releaseRecord(Int(index))
            try? stack?.close(id)
            _ = mtcp_real_close(fd)
            mtcp_set_errno(EMFILE)
            return -1
        }
        return fd
    }

    /// Opens the kernel half of a listener on 0.0.0.0 (loopback health checks), in the
    /// placeholder's fd number (lock held).
    func addKernelListener(_ fd: Int32, _ r: Int) {
        let record = records[r]!
        let kernel = mtcp_real_socket(
            AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard kernel >= 0 else { return }
        var one: Int32 = 1
        _ = mtcp_real_setsockopt(kernel, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        for option in record.replay where option.level == SOL_SOCKET && option.name == SO_REUSEPORT {
            _ = option.value.withUnsafeBytes { bytes in
                mtcp_real_setsockopt(kernel, option.level, option.name, bytes.baseAddress, socklen_t(bytes.count))
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = record.localPort.bigEndian
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                mtcp_real_bind(kernel, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        let closeOnExec = mtcp_real_fcntl(fd, F_GETFD, 0) & FD_CLOEXEC != 0
        if bound == 0, mtcp_real_listen(kernel, record.backlog) == 0,
            mtcp_real_dup3(kernel, fd, closeOnExec ? O_CLOEXEC : 0) >= 0
        {
            records[r]!.kernelListener = true
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

// MARK: - Exports

@_cdecl("socket")
public func hook_socket(_ domain: Int32, _ type: Int32, _ proto: Int32) -> Int32 {
    let base = type & 0xF
    guard mtcp_enabled != 0, domain == AF_INET, base == Int32(SOCK_STREAM.rawValue),
        proto == 0 || proto == Int32(IPPROTO_TCP)
    else {
        if mtcp_enabled != 0 && (domain == AF_INET || domain == AF_INET6) {
            // Say once which kinds of sockets stay with the kernel (AF_UNIX is expected).
            mtcp_lock()
            let runtime = PreloadRuntime.obtain()
            let kind = domain == AF_INET6 ? "AF_INET6" : base == Int32(SOCK_DGRAM.rawValue) ? "UDP" : "raw/other IPv4"
            runtime.logOnce("family:\(kind)", "\(kind) sockets use the kernel (the stack serves IPv4 TCP)")
            mtcp_unlock()
        }
        return mtcp_real_socket(domain, type, proto)
    }
    mtcp_lock()
    defer { mtcp_unlock() }
    let runtime = PreloadRuntime.obtain()
    guard runtime.activate(), let stack = runtime.stack else { return mtcp_real_socket(domain, type, proto) }
    let id: Int32
    do throws(Errno) {
        id = try stack.socket()
        try stack.setNonBlocking(id, true)
    } catch {
        return fail(error)
    }
    let fd = runtime.newDescriptor(
        for: id, nonBlocking: type & Int32(SOCK_NONBLOCK.rawValue) != 0,
        closeOnExec: type & Int32(SOCK_CLOEXEC.rawValue) != 0)
    if fd >= 0, let r = runtime.record(forEntry: mtcp_fd_entry(fd)) { runtime.records[r]!.proto = proto }
    return fd
}

@_cdecl("bind")
public func hook_bind(_ fd: Int32, _ address: UnsafePointer<sockaddr>?, _ length: socklen_t) -> Int32 {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_bind(fd, address, length) }
    mtcp_lock()
    guard let runtime = PreloadRuntime.current, let r = runtime.record(forEntry: entry), let stack = runtime.stack,
        !runtime.records[r]!.inherited
    else {
        mtcp_unlock()
        return fail(.EINVAL)
    }
    guard let (ip, port) = readAddress(address, length) else {
        mtcp_unlock()
        return fail(.EINVAL)
    }
    if ip != .any && ip != stack.configuration.address {
        // An address the kernel owns (loopback, another interface).
        let moved = runtime.fallBack(fd, r, reason: "bound to kernel addresses")
        mtcp_unlock()
        return moved ? mtcp_real_bind(fd, address, length) : fail(.EADDRNOTAVAIL)
    }
    defer { mtcp_unlock() }
    do throws(Errno) {
        let id = runtime.records[r]!.stackID
        try stack.bind(id, address: ip, port: port)
        runtime.records[r]!.bound = true
        runtime.records[r]!.localPort = try stack.getsockname(id).port
        return 0
    } catch {
        return fail(error)
    }
}

@_cdecl("listen")
public func hook_listen(_ fd: Int32, _ backlog: Int32) -> Int32 {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_listen(fd, backlog) }
    mtcp_lock()
    defer { mtcp_unlock() }
    guard let runtime = PreloadRuntime.current, let r = runtime.adoptedRecord(entry), let stack = runtime.stack else {
        return fail(.EBADF)
    }
    let id = runtime.records[r]!.stackID
    let backlog = backlog <= 0 ? 128 : min(backlog, 65535)
    do throws(Errno) {
        let wasBound = runtime.records[r]!.bound
        try stack.listen(id, backlog: Int(backlog))
        runtime.records[r]!.listening = true
        runtime.records[r]!.backlog = backlog
        let local = try stack.getsockname(id)
        runtime.records[r]!.localPort = local.port
        if runtime.kernelListen && wasBound && local.address == .any && !runtime.records[r]!.kernelListener {
            runtime.addKernelListener(fd, r)
        }
        return 0
    } catch {
        return fail(error)
    }
}

@_cdecl("accept")
public func hook_accept(
    _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?
) -> Int32 {
    hook_accept4(fd, address, length, 0)
}

@_cdecl("accept4")
public func hook_accept4(
    _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?, _ flags: Int32
) -> Int32 {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_accept4(fd, address, length, flags) }
    guard let runtime = PreloadRuntime.current else { return fail(.EBADF) }
    guard flags & ~(Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)) == 0 else { return fail(.EINVAL) }
    while true {
        mtcp_lock()
        guard let r = runtime.adoptedRecord(entry), let stack = runtime.stack else {
            mtcp_unlock()
            return fail(.EBADF)
        }
        let record = runtime.records[r]!
        guard record.listening else {
            mtcp_unlock()
            return fail(.EINVAL)
        }
        stack.markInterested(record.stackID)
        let kernelFirst = record.kernelListener && record.preferKernel
        runtime.records[r]!.preferKernel.toggle()
        if !kernelFirst {
            var accepted: (socket: Int32, address: IPv4Address, port: UInt16)?
            do throws(Errno) {
                accepted = try stack.accept(record.stackID)
            } catch .EAGAIN {
                // Inside an epoll batch the next epoll_wait runs the round (`inEpollBatch`).
                if !(runtime.inEpollBatch && record.nonBlocking) {
                    runtime.drive()
                    accepted = try? stack.accept(record.stackID)
                }
            } catch {
                mtcp_unlock()
                return fail(error)
            }
            if let accepted {
                try? stack.setNonBlocking(accepted.socket, true)
                let new = runtime.newDescriptor(
                    for: accepted.socket, nonBlocking: flags & Int32(SOCK_NONBLOCK.rawValue) != 0,
                    closeOnExec: flags & Int32(SOCK_CLOEXEC.rawValue) != 0, keepsOptions: false)
                mtcp_unlock()
                if new >= 0 { writeAddress((accepted.address, accepted.port), address, length) }
                return new
            }
        }
        let driven = runtime.lastDriven.load(ordering: .relaxed)
        let tryKernel =
            record.kernelListener
            && (!record.nonBlocking || record.kernelHalfMayBeReady || driven &- record.kernelHalfLastTry >= 10_000_000)
        mtcp_unlock()
        if tryKernel {
            let new = mtcp_real_accept4(fd, address, length, flags)
            if new >= 0 { return new }
            let error = mtcp_errno()
            if error != EAGAIN && error != EWOULDBLOCK { return -1 }
            runtime.markKernelHalf(of: fd, mayBeReady: false, triedAt: driven)
        }
        if kernelFirst { continue }
        if record.nonBlocking { return fail(.EAGAIN) }
        let woke = runtime.wait(for: fd, events: Int16(POLLIN), timeout: record.receiveTimeout)
        if woke < 0 { return -1 }
        if woke == 0 { return fail(.EAGAIN) }
    }
}

@_cdecl("connect")
public func hook_connect(_ fd: Int32, _ address: UnsafePointer<sockaddr>?, _ length: socklen_t) -> Int32 {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_connect(fd, address, length) }
    guard let runtime = PreloadRuntime.current else { return fail(.EBADF) }
    mtcp_lock()
    guard let r = runtime.record(forEntry: entry), let stack = runtime.stack, !runtime.records[r]!.inherited else {
        mtcp_unlock()
        return fail(.EBADF)
    }
    guard let (ip, port) = readAddress(address, length) else {
        // AF_UNSPEC (dissolve) and other families: the kernel decides on a kernel socket.
        mtcp_unlock()
        return fail(.EAFNOSUPPORT)
    }
    let record = runtime.records[r]!
    if runtime.kernelCarries(ip) {
        let moved = runtime.fallBack(fd, r, reason: "connecting to loopback or unrouted addresses")
        mtcp_unlock()
        guard moved else { return fail(.ENOBUFS) }
        if record.bound && record.localPort != 0 {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_port = record.localPort.bigEndian
            _ = withUnsafePointer(to: &local) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    mtcp_real_bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        return mtcp_real_connect(fd, address, length)
    }
    do throws(Errno) {
        try stack.connect(record.stackID, address: ip, port: port)
        runtime.records[r]!.keepsOptions = false
        mtcp_unlock()
        return 0
    } catch .EINPROGRESS {
        runtime.records[r]!.keepsOptions = false
        // The SYN goes now, or with the batch's other frames (`inEpollBatch`).
        runtime.driveAfterOutput()
    } catch {
        mtcp_unlock()
        return fail(error)
    }
    mtcp_unlock()
    if record.nonBlocking { return fail(.EINPROGRESS) }
    while true {
        let woke = runtime.wait(for: fd, events: Int16(POLLOUT), timeout: record.sendTimeout)
        if woke < 0 { return -1 }
        if woke == 0 { return fail(.EINPROGRESS) }
        mtcp_lock()
        defer { mtcp_unlock() }
        do throws(Errno) {
            try stack.connect(record.stackID, address: ip, port: port)
            return 0
        } catch .EISCONN {
            return 0
        } catch .EALREADY {
            continue
        } catch {
            return fail(error)
        }
    }
}

@_cdecl("shutdown")
public func hook_shutdown(_ fd: Int32, _ how: Int32) -> Int32 {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_shutdown(fd, how) }
    return withStackSocket(entry) { runtime, stack, r in
        do throws(Errno) {
            try stack.shutdown(runtime.records[r]!.stackID, how: how)
            runtime.driveAfterOutput()
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
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_getsockname(fd, address, length) }
    return withStackSocket(entry) { runtime, stack, r in
        guard address != nil, length != nil else { return fail(.EFAULT) }
        do throws(Errno) {
            let name = try stack.getsockname(runtime.records[r]!.stackID)
            let shown = name.address == .any && runtime.records[r]!.listening ? IPv4Address.any : name.address
            writeAddress((shown, name.port), address, length)
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
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_getpeername(fd, address, length) }
    return withStackSocket(entry) { runtime, stack, r in
        guard address != nil, length != nil else { return fail(.EFAULT) }
        do throws(Errno) {
            writeAddress(try stack.getpeername(runtime.records[r]!.stackID), address, length)
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
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_setsockopt(fd, level, name, value, length) }
    mtcp_lock()
    defer { mtcp_unlock() }
    guard let runtime = PreloadRuntime.current, let r = runtime.record(forEntry: entry) else { return fail(.EBADF) }
    guard let value else { return fail(.EFAULT) }
    let bytes = UnsafeRawBufferPointer(start: value, count: Int(length))
    if !runtime.records[r]!.inherited {
        guard let stack = runtime.stack else { return fail(.EBADF) }
        do throws(Errno) {
            try stack.setsockopt(runtime.records[r]!.stackID, level: level, name: name, value: bytes)
        } catch {
            return fail(error)
        }
    }
    if level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO) && length >= 16 {
        let ns =
            bytes.loadUnaligned(as: Int64.self) * 1_000_000_000
            + bytes.loadUnaligned(fromByteOffset: 8, as: Int64.self) * 1_000
        if name == SO_RCVTIMEO {
            runtime.records[r]!.receiveTimeout = max(ns, 0)
        } else {
            runtime.records[r]!.sendTimeout = max(ns, 0)
        }
    }
    // Kept for a fall-back to the kernel and for a forked child re-creating a listener;
    // connected sockets need neither (nginx sets TCP_CORK per response).
    if runtime.records[r]!.keepsOptions {
        runtime.records[r]!.replay.removeAll { $0.level == level && $0.name == name }
        runtime.records[r]!.replay.append((level, name, Array(bytes)))
    }
    return 0
}

@_cdecl("getsockopt")
public func hook_getsockopt(
    _ fd: Int32, _ level: Int32, _ name: Int32, _ value: UnsafeMutableRawPointer?,
    _ length: UnsafeMutablePointer<socklen_t>?
) -> Int32 {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_getsockopt(fd, level, name, value, length) }
    return withStackSocket(entry) { runtime, stack, r in
        guard let value, let length else { return fail(.EFAULT) }
        // Options with a wider C form than the caller gave are cut, as the kernel does for ints.
        return withUnsafeTemporaryAllocation(byteCount: 256, alignment: 8) { scratch in
            do throws(Errno) {
                let n = try stack.getsockopt(runtime.records[r]!.stackID, level: level, name: name, into: scratch)
                let copied = min(n, Int(length.pointee))
                value.copyMemory(from: scratch.baseAddress!, byteCount: copied)
                length.pointee = socklen_t(copied)
                return 0
            } catch {
                return fail(error)
            }
        }
    }
}

/// Runs `body` with the lock held on a live stack socket; EBADF for a connection inherited
/// from a parent process (it belongs to the parent).
func withStackSocket(_ entry: Int32, _ body: (PreloadRuntime, NetworkStack<SelectedLink>, Int) -> Int32) -> Int32 {
    mtcp_lock()
    defer { mtcp_unlock() }
    guard let runtime = PreloadRuntime.current else { return fail(.EBADF) }
    guard let r = runtime.adoptedRecord(entry), let stack = runtime.stack else {
        runtime.logOnce("inherited-io", "a connection inherited across fork belongs to the parent process: EBADF here")
        return fail(.EBADF)
    }
    return body(runtime, stack, r)
}
