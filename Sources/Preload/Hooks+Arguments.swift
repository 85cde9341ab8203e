import CPreload
import Glibc
import PreloadState
import Stack
import StackRuntime
import Wire

// Hostile arguments: the hooks check what Linux checks before a call acts (PreloadState's
// KernelArguments), in its order, and take the calls whose buffers would fault the way
// Linux's TCP takes them, so that a program gets the kernel's errno and the library never
// touches memory the kernel would have refused to.

/// `fd`'s descriptor table entry when it is a stack socket, else 0: the socket calls hand an
/// epoll fd to libc, which answers as Linux does for a descriptor that is not a socket.
@inline(__always)
func socketEntry(_ fd: Int32) -> Int32 {
    let entry = mtcp_fd_entry(fd)
    return DescriptorEntry.kind(entry) == DescriptorEntry.socketKind ? entry : 0
}

@inline(__always)
func fail(_ error: KernelError) -> Int32 {
    mtcp_set_errno(error.errno)
    return -1
}

@inline(__always)
func failSize(_ error: KernelError) -> Int {
    mtcp_set_errno(error.errno)
    return -1
}

/// Copies a socket's address out as move_addr_to_user does: cut to `*length`, which then
/// says the whole size; the error (EFAULT, EINVAL) when the pointers cannot take it.
func copyAddressOut(
    _ value: (IPAddress, UInt16), _ address: UnsafeMutablePointer<sockaddr>?,
    _ length: UnsafeMutablePointer<socklen_t>?, inet6: Bool
) -> KernelError? {
    var storage = sockaddr_storage()
    var size = socklen_t(MemoryLayout<sockaddr_storage>.size)
    withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { writeAddress(value, $0, &size, inet6: inet6) }
    }
    switch SocketAddressCopy.outbound(UnsafeMutableRawPointer(address), length, size: Int(size)) {
    case .failure(let error):
        return error
    case .success(let room):
        if room > 0, let address {
            withUnsafeBytes(of: &storage) {
                UnsafeMutableRawPointer(address).copyMemory(from: $0.baseAddress!, byteCount: room)
            }
        }
        length?.pointee = size
        return nil
    }
}

extension PreloadRuntime {
    /// A receive into buffers `transfer` checked. `emptyReachesSocket`: a call that asks for
    /// nothing still goes to TCP (recv, recvmsg), which looks for data once, waiting for it
    /// on a blocking socket; read and readv return 0 at once.
    func receive(
        _ fd: Int32, _ entry: Int32, _ iov: UnsafePointer<iovec>, _ count: Int, _ transfer: Transfer, flags: Int32,
        emptyReachesSocket: Bool
    ) -> Int {
        let length: Int
        let faults: Bool
        switch transfer {
        case .fail(let error): return failSize(error)
        case .move(let n, let f): (length, faults) = (n, f)
        }
        // The stack keeps no error queue: empty, as Linux's is without timestamps or zerocopy.
        if flags & Int32(MSG_ERRQUEUE) != 0 { return failSize(.EAGAIN) }
        if length == 0 {
            guard emptyReachesSocket else { return 0 }
            let found = receiveProbe(fd, entry, flags: flags)
            return found < 0 ? -1 : 0
        }
        if flags & Int32(MSG_TRUNC) != 0 {
            // TCP takes (or with MSG_PEEK counts) the bytes without copying: the buffers go unused.
            return withUnsafeTemporaryAllocation(byteCount: min(length, 65536), alignment: 16) { scratch in
                withOneBuffer(scratch.baseAddress, scratch.count) {
                    receive(fd, entry, $0, 1, flags: flags & ~Int32(MSG_TRUNC))
                }
            }
        }
        if faults {
            // Nothing is copied or taken: EFAULT once there is data, end of stream, an error
            // or EAGAIN as they come.
            let found = receiveProbe(fd, entry, flags: flags)
            return found > 0 ? failSize(.EFAULT) : found
        }
        return receive(fd, entry, iov, count, flags: flags)
    }

    /// Looks for data without taking any, waiting as the socket does: 1 when there is some, 0
    /// at end of stream, -1 with errno.
    func receiveProbe(_ fd: Int32, _ entry: Int32, flags: Int32) -> Int {
        var byte: UInt8 = 0
        let peek = flags & ~Int32(MSG_WAITALL) | Int32(MSG_PEEK)
        return withUnsafeMutableBytes(of: &byte) { bytes in
            withOneBuffer(bytes.baseAddress, 1) { receive(fd, entry, $0, 1, flags: peek) }
        }
    }

    /// A send from buffers `transfer` checked. `emptyReachesSocket`: a call that sends nothing
    /// still goes to TCP (write, send, sendmsg), which checks the connection; writev returns 0
    /// at once.
    func send(
        _ fd: Int32, _ entry: Int32, _ iov: UnsafePointer<iovec>, _ count: Int, _ transfer: Transfer, flags: Int32,
        emptyReachesSocket: Bool
    ) -> Int {
        let length: Int
        let faults: Bool
        switch transfer {
        case .fail(let error): return failSize(error)
        case .move(let n, let f): (length, faults) = (n, f)
        }
        if length == 0 { return emptyReachesSocket ? sendProbe(fd, entry, flags: flags, needsRoom: false) : 0 }
        if faults {
            // TCP copies nothing: EFAULT once the connection could take bytes.
            return sendProbe(fd, entry, flags: flags, needsRoom: true) < 0 ? -1 : failSize(.EFAULT)
        }
        return send(fd, entry, iov, count, flags: flags)
    }

    /// What a send finds before it copies a byte: the connection's state (EPIPE, with SIGPIPE
    /// unless MSG_NOSIGNAL) and, with `needsRoom`, room in the send buffer, waiting for it as
    /// the socket does. 0, or -1 with errno.
    func sendProbe(_ fd: Int32, _ entry: Int32, flags: Int32, needsRoom: Bool) -> Int {
        let dontWait = flags & Int32(MSG_DONTWAIT) != 0
        var serial: UInt64?
        while true {
            let turn: (error: Errno?, nonBlocking: Bool, timeout: Int64, serial: UInt64)? = withRecord(
                entry,
                { instance, stack, r in
                    let current = instance.records[r]!.serial
                    if let serial, serial != current { return nil }
                    let id = instance.records[r]!.stackID
                    var problem: Errno?
                    do throws(Errno) {
                        _ = try stack.write(id, UnsafeRawBufferPointer(start: nil, count: 0))
                    } catch {
                        problem = error
                    }
                    if problem == nil && needsRoom && stack.readinessMask(id) & EpollFlags.EPOLLOUT == 0 {
                        problem = .EAGAIN
                    }
                    return (problem, instance.records[r]!.nonBlocking, instance.records[r]!.sendTimeout, current)
                }, otherwise: { nil })
            guard let turn else { return failSize(.EBADF) }
            serial = turn.serial
            guard let error = turn.error else { return 0 }
            if error != .EAGAIN { return failSend(error, flags: flags) }
            if turn.nonBlocking || dontWait { return failSize(.EAGAIN) }
            let woke = wait(for: fd, events: Int16(POLLOUT), timeout: turn.timeout)
            if woke < 0 { return -1 }
            if woke == 0 { return failSize(.EAGAIN) }
        }
    }

    /// A send's error as Linux's TCP gives it: a socket that never connected is EPIPE
    /// (sk_stream_wait_connect), and EPIPE raises SIGPIPE unless MSG_NOSIGNAL.
    func failSend(_ error: Errno, flags: Int32) -> Int {
        let error: Errno = error == .ENOTCONN ? .EPIPE : error
        if error == .EPIPE && flags & Int32(MSG_NOSIGNAL) == 0 { raise(SIGPIPE) }
        return failSize(error)
    }
}
