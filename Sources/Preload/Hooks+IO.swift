import CPreload
import Glibc
import PreloadState
import Stack
import StackRuntime

// read, write and their relatives. All of them come down to two loops over an iovec array:
// receive (stops at the first short read) and send (queues what fits, then one loop round
// sends it). Blocking sockets wait in PreloadRuntime.poll between turns.

extension PreloadRuntime {
    /// One non-blocking pass of reads (or peeks) into `iov`.
    func receiveOnce(
        _ stack: NetworkStack<SelectedLink>, _ id: Int32, _ iov: UnsafePointer<iovec>, _ count: Int, skip: Int,
        peek: Bool
    ) -> (Int, Errno?) {
        IOVector.eachBuffer(iov, count, skip: skip, once: peek) { (buffer) throws(Errno) in
            peek ? try stack.peek(id, into: buffer) : try stack.read(id, into: buffer)
        }
    }

    /// One non-blocking pass of writes from `iov`.
    func sendOnce(
        _ stack: NetworkStack<SelectedLink>, _ id: Int32, _ iov: UnsafePointer<iovec>, _ count: Int, skip: Int
    )
        -> (Int, Errno?)
    {
        IOVector.eachBuffer(iov, count, skip: skip) { (buffer) throws(Errno) in
            try stack.write(id, UnsafeRawBufferPointer(buffer))
        }
    }

    /// recvmsg's core: bytes received, 0 at end of stream, -1 with errno.
    func receive(_ fd: Int32, _ entry: Int32, _ iov: UnsafePointer<iovec>, _ count: Int, flags: Int32) -> Int {
        let peek = flags & Int32(MSG_PEEK) != 0
        let waitAll = flags & Int32(MSG_WAITALL) != 0 && !peek
        let dontWait = flags & Int32(MSG_DONTWAIT) != 0
        guard flags & Int32(MSG_OOB) == 0 else {
            logOnce("oob", "MSG_OOB is not supported: EINVAL")
            return failSize(.EINVAL)
        }
        var wanted = 0
        for k in 0..<count { wanted += iov[k].iov_len }
        if wanted == 0 { return 0 }
        var total = 0
        var serial: UInt64?
        while true {
            let turn: TransferTurn? = withRecord(
                entry,
                { instance, stack, r in
                    // Closed while this call waited, and the entry given to another socket.
                    if let serial, serial != instance.records[r]!.serial { return nil }
                    // Fields, not a copy of the record (its arrays would be retained per call).
                    let id = instance.records[r]!.stackID
                    let nonBlocking = instance.records[r]!.nonBlocking
                    let reported = instance.records[r]!.failureReported
                    var (n, error) = receiveOnce(stack, id, iov, count, skip: total, peek: peek)
                    // Inside an epoll batch a non-blocking read may say EAGAIN without a round:
                    // the next epoll_wait runs it (and reports what it brings).
                    if error == .EAGAIN && !(instance.inEpollBatch && nonBlocking) {
                        instance.drive()
                        (n, error) = receiveOnce(stack, id, iov, count, skip: total, peek: peek)
                    }
                    if error == .ECONNRESET || error == .ETIMEDOUT { instance.records[r]!.failureReported = true }
                    return TransferTurn(
                        moved: n, error: error, nonBlocking: nonBlocking, failureReported: reported,
                        timeout: instance.records[r]!.receiveTimeout, serial: instance.records[r]!.serial)
                }, otherwise: { nil })
            guard let turn else {
                if serial != nil { return total > 0 ? total : failSize(.EBADF) }
                logOnce("inherited-io", "a connection inherited across fork belongs to the parent process: EBADF here")
                return failSize(.EBADF)
            }
            serial = turn.serial
            let n = turn.moved
            if let error = turn.error, error != .EAGAIN {
                if total > 0 { return total }
                // Like Linux: the error is reported once, then the stream reads as ended.
                if turn.failureReported && (error == .ECONNRESET || error == .ETIMEDOUT) { return 0 }
                return failSize(error)
            }
            if turn.error == nil {
                if n == 0 { return total }  // end of stream
                total += n
                if !waitAll || total >= wanted { return total }
            }
            if turn.nonBlocking || dontWait { return total > 0 ? total : failSize(.EAGAIN) }
            let woke = wait(for: fd, events: Int16(POLLIN), timeout: turn.timeout)
            if woke < 0 { return total > 0 ? total : -1 }
            if woke == 0 { return total > 0 ? total : failSize(.EAGAIN) }
        }
    }

    /// sendmsg's core: bytes queued, -1 with errno; EPIPE raises SIGPIPE unless MSG_NOSIGNAL.
    func send(_ fd: Int32, _ entry: Int32, _ iov: UnsafePointer<iovec>, _ count: Int, flags: Int32) -> Int {
        let dontWait = flags & Int32(MSG_DONTWAIT) != 0
        guard flags & Int32(MSG_OOB) == 0 else {
            logOnce("oob", "MSG_OOB is not supported: EINVAL")
            return failSize(.EINVAL)
        }
        var wanted = 0
        for k in 0..<count { wanted += iov[k].iov_len }
        var total = 0
        var serial: UInt64?
        while true {
            let turn: TransferTurn? = withRecord(
                entry,
                { instance, stack, r in
                    if let serial, serial != instance.records[r]!.serial { return nil }
                    let reported = instance.records[r]!.failureReported
                    var (n, error) = sendOnce(stack, instance.records[r]!.stackID, iov, count, skip: total)
                    if n > 0 { instance.driveAfterOutput() }
                    if error == .ECONNRESET || error == .ETIMEDOUT {
                        // Like Linux: the reset is reported once, then writing gives EPIPE.
                        if reported { error = .EPIPE }
                        instance.records[r]!.failureReported = true
                    }
                    return TransferTurn(
                        moved: n, error: error, nonBlocking: instance.records[r]!.nonBlocking,
                        failureReported: reported, timeout: instance.records[r]!.sendTimeout,
                        serial: instance.records[r]!.serial)
                }, otherwise: { nil })
            guard let turn else {
                if serial != nil { return total > 0 ? total : failSize(.EBADF) }
                logOnce("inherited-io", "a connection inherited across fork belongs to the parent process: EBADF here")
                return failSize(.EBADF)
            }
            serial = turn.serial
            total += turn.moved
            if total >= wanted { return total }
            if let error = turn.error, error != .EAGAIN {
                if total > 0 { return total }
                return failSend(error, flags: flags)
            }
            if turn.nonBlocking || dontWait { return total > 0 ? total : failSize(.EAGAIN) }
            let woke = wait(for: fd, events: Int16(POLLOUT), timeout: turn.timeout)
            if woke < 0 { return total > 0 ? total : -1 }
            if woke == 0 { return total > 0 ? total : failSize(.EAGAIN) }
        }
    }

}

/// What one pass of a read or write did, and what the record says about waiting for more.
struct TransferTurn {
    var moved: Int
    var error: Errno?
    var nonBlocking: Bool
    var failureReported: Bool
    var timeout: Int64
    var serial: UInt64
}

@inline(__always)
func withOneBuffer<R>(_ base: UnsafeRawPointer?, _ length: Int, _ body: (UnsafePointer<iovec>) -> R) -> R {
    var vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: length)
    return body(&vector)
}

@_cdecl("read")
public func hook_read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_read(fd, buffer, count) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    let transfer = Transfer.whole(buffer, UInt(bitPattern: count))
    return withOneBuffer(buffer, transfer.length) {
        runtime.receive(fd, entry, $0, 1, transfer, flags: 0, emptyReachesSocket: false)
    }
}

@_cdecl("recv")
public func hook_recv(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ flags: Int32) -> Int {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_recvfrom(fd, buffer, count, flags, nil, nil) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    let transfer = Transfer.single(buffer, UInt(bitPattern: count))
    return withOneBuffer(buffer, transfer.length) {
        runtime.receive(fd, entry, $0, 1, transfer, flags: flags, emptyReachesSocket: true)
    }
}

@_cdecl("recvfrom")
public func hook_recvfrom(
    _ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ flags: Int32,
    _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?
) -> Int {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_recvfrom(fd, buffer, count, flags, address, length) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    let transfer = Transfer.single(buffer, UInt(bitPattern: count))
    let n = withOneBuffer(buffer, transfer.length) {
        runtime.receive(fd, entry, $0, 1, transfer, flags: flags, emptyReachesSocket: true)
    }
    // TCP gives no address: a length of 0, written as move_addr_to_user writes it (which can
    // fail the call after the bytes were taken, as on Linux).
    if n >= 0, address != nil {
        switch SocketAddressCopy.outbound(UnsafeMutableRawPointer(address), length, size: 0) {
        case .failure(let error): return failSize(error)
        case .success: length?.pointee = 0
        }
    }
    return n
}

/// readv, writev, recvmsg and sendmsg on a stack socket: the iovec array checked as Linux
/// does (`tooMany` when over IOV_MAX), then received into or sent from.
func transferVector(
    _ fd: Int32, _ entry: Int32, _ vector: UnsafePointer<iovec>?, _ count: UInt, flags: Int32, tooMany: Int32,
    receive: Bool, emptyReachesSocket: Bool
) -> Int {
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    let transfer = Transfer.vector(vector, count, tooMany: tooMany)
    guard case .move = transfer, let vector else {
        // Nothing to walk: a failure, or no buffers at all.
        return withOneBuffer(nil, 0) {
            receive
                ? runtime.receive(fd, entry, $0, 0, transfer, flags: flags, emptyReachesSocket: emptyReachesSocket)
                : runtime.send(fd, entry, $0, 0, transfer, flags: flags, emptyReachesSocket: emptyReachesSocket)
        }
    }
    return receive
        ? runtime.receive(fd, entry, vector, Int(count), transfer, flags: flags, emptyReachesSocket: emptyReachesSocket)
        : runtime.send(fd, entry, vector, Int(count), transfer, flags: flags, emptyReachesSocket: emptyReachesSocket)
}

@_cdecl("readv")
public func hook_readv(_ fd: Int32, _ vector: UnsafePointer<iovec>?, _ count: Int32) -> Int {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_readv(fd, vector, count) }
    return transferVector(
        fd, entry, vector, UInt(bitPattern: Int(count)), flags: 0, tooMany: EINVAL, receive: true,
        emptyReachesSocket: false)
}

/// What a msghdr says before its buffers are looked at (__copy_msghdr): EFAULT when it cannot
/// be read, EINVAL for a negative name length, EMSGSIZE for more than IOV_MAX buffers; and
/// for sendmsg (`copiesName`) EFAULT when the name cannot be read.
func checkMessage(_ message: UnsafePointer<msghdr>?, copiesName: Bool) -> KernelError? {
    guard let message, UserMemory.usable(message, UInt(MemoryLayout<msghdr>.size)) else { return KernelError(EFAULT) }
    let name = message.pointee.msg_name
    let nameLength = Int32(bitPattern: message.pointee.msg_namelen)
    if name != nil && nameLength < 0 { return KernelError(EINVAL) }
    if copiesName, name != nil,
        !UserMemory.usable(name, UInt(min(Int(nameLength), SocketAddressCopy.storageSize)))
    {
        return KernelError(EFAULT)
    }
    if UInt(bitPattern: message.pointee.msg_iovlen) > UInt(UserMemory.vectorLimit) { return KernelError(EMSGSIZE) }
    return nil
}

@_cdecl("recvmsg")
public func hook_recvmsg(_ fd: Int32, _ message: UnsafeMutablePointer<msghdr>?, _ flags: Int32) -> Int {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_recvmsg(fd, message, flags) }
    if let error = checkMessage(message, copiesName: false) { return failSize(error) }
    let message = message!
    let n = transferVector(
        fd, entry, message.pointee.msg_iov, UInt(bitPattern: message.pointee.msg_iovlen), flags: flags,
        tooMany: EMSGSIZE,
        receive: true, emptyReachesSocket: true)
    if n >= 0 {
        // TCP gives no address and no control messages; the flags say only MSG_CMSG_CLOEXEC back.
        if message.pointee.msg_name != nil { message.pointee.msg_namelen = 0 }
        message.pointee.msg_controllen = 0
        message.pointee.msg_flags = flags & Int32(MSG_CMSG_CLOEXEC)
    }
    return n
}

@_cdecl("write")
public func hook_write(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_write(fd, buffer, count) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    let transfer = Transfer.whole(buffer, UInt(bitPattern: count))
    return withOneBuffer(buffer, transfer.length) {
        runtime.send(fd, entry, $0, 1, transfer, flags: 0, emptyReachesSocket: true)
    }
}

@_cdecl("send")
public func hook_send(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: Int32) -> Int {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_sendto(fd, buffer, count, flags, nil, 0) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    let transfer = Transfer.single(buffer, UInt(bitPattern: count))
    return withOneBuffer(buffer, transfer.length) {
        runtime.send(fd, entry, $0, 1, transfer, flags: flags, emptyReachesSocket: true)
    }
}

@_cdecl("sendto")
public func hook_sendto(
    _ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: Int32, _ address: UnsafePointer<sockaddr>?,
    _ length: socklen_t
) -> Int {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_sendto(fd, buffer, count, flags, address, length) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    let transfer = Transfer.single(buffer, UInt(bitPattern: count))
    if case .fail(let error) = transfer { return failSize(error) }
    // Copied in (and so checked), then ignored, as Linux's TCP does on a connected socket.
    if address != nil, let error = SocketAddressCopy.inbound(address, length) { return failSize(error) }
    return withOneBuffer(buffer, transfer.length) {
        runtime.send(fd, entry, $0, 1, transfer, flags: flags, emptyReachesSocket: true)
    }
}

@_cdecl("writev")
public func hook_writev(_ fd: Int32, _ vector: UnsafePointer<iovec>?, _ count: Int32) -> Int {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_writev(fd, vector, count) }
    return transferVector(
        fd, entry, vector, UInt(bitPattern: Int(count)), flags: 0, tooMany: EINVAL, receive: false,
        emptyReachesSocket: false)
}

@_cdecl("sendmsg")
public func hook_sendmsg(_ fd: Int32, _ message: UnsafePointer<msghdr>?, _ flags: Int32) -> Int {
    let entry = socketEntry(fd)
    guard entry != 0 else { return mtcp_real_sendmsg(fd, message, flags) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    if let error = checkMessage(message, copiesName: true) { return failSize(error) }
    let message = message!
    let iov = message.pointee.msg_iov
    let count = UInt(bitPattern: message.pointee.msg_iovlen)
    if case .fail(let error) = Transfer.vector(iov, count, tooMany: EMSGSIZE) { return failSize(error) }
    let control = ControlMessages.check(message.pointee.msg_control, message.pointee.msg_controllen)
    if let error = control.error { return failSize(error) }
    if control.socketLevel {
        runtime.logOnce(
            "cmsg", "SOL_SOCKET control messages (marks, timestamps, SCM_TXTIME) have no effect on stack sockets")
    }
    return transferVector(
        fd, entry, iov, count, flags: flags, tooMany: EMSGSIZE, receive: false, emptyReachesSocket: true)
}

@_cdecl("sendfile")
public func hook_sendfile(_ out: Int32, _ input: Int32, _ offset: UnsafeMutablePointer<off_t>?, _ count: Int) -> Int {
    let entry = socketEntry(out)
    guard entry != 0 else { return mtcp_real_sendfile(out, input, offset, count) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    return runtime.sendFile(out, entry, input, offset, count)
}

@_cdecl("sendfile64")
public func hook_sendfile64(_ out: Int32, _ input: Int32, _ offset: UnsafeMutablePointer<off_t>?, _ count: Int) -> Int {
    hook_sendfile(out, input, offset, count)
}

extension Transfer {
    /// The bytes a checked transfer moves (0 when it fails).
    var length: Int {
        if case .move(let length, _) = self { return length }
        return 0
    }
}

extension PreloadRuntime {
    /// sendfile to a stack socket: file bytes are read into a buffer and queued. With an
    /// offset the file position stays; without one it advances by what was sent. The input
    /// and the count are checked first, as do_sendfile checks them.
    func sendFile(_ out: Int32, _ entry: Int32, _ input: Int32, _ offset: UnsafeMutablePointer<off_t>?, _ count: Int)
        -> Int
    {
        if let offset, !UserMemory.usable(offset, UInt(MemoryLayout<off_t>.size)) { return failSize(.EFAULT) }
        let mode = mtcp_real_fcntl(input, F_GETFL, 0)
        if mode < 0 || mode & O_ACCMODE == O_WRONLY { return failSize(.EBADF) }
        // An offset needs a file it can be applied to (not a pipe or a socket).
        if offset != nil && lseek(input, 0, SEEK_CUR) < 0 && mtcp_errno() == ESPIPE {
            return failSize(KernelError(ESPIPE))
        }
        // Linux reads no socket this way, the stack's included (their descriptors are placeholders).
        if socketEntry(input) != 0 { return failSize(.EINVAL) }
        let start = offset?.pointee ?? 0
        guard count >= 0, start >= 0, !start.addingReportingOverflow(off_t(count)).overflow else {
            return failSize(.EINVAL)
        }
        let count = min(count, UserMemory.transferLimit)
        let chunk = 65536
        return withUnsafeTemporaryAllocation(byteCount: chunk, alignment: 16) { buffer in
            var total = 0
            while total < count {
                let want = min(chunk, count - total)
                let got: Int
                if let offset {
                    got = pread(input, buffer.baseAddress, want, offset.pointee + off_t(total))
                } else {
                    got = mtcp_real_read(input, buffer.baseAddress, want)
                }
                if got < 0 { return total > 0 ? total : -1 }
                if got == 0 { break }
                let sent = withOneBuffer(buffer.baseAddress, got) { send(out, entry, $0, 1, flags: 0) }
                if sent < 0 {
                    if offset == nil { lseek(input, off_t(-got), SEEK_CUR) }
                    if total > 0 { break }
                    return -1
                }
                total += sent
                if sent < got {
                    if offset == nil { lseek(input, off_t(sent - got), SEEK_CUR) }
                    break
                }
            }
            offset?.pointee += off_t(total)
            return total
        }
    }
}
