import CPreload
import Glibc
import PreloadState
import Stack
import StackRuntime

// read, write and their relatives. All of them come down to two loops over an iovec array:
// receive (stops at the first short read) and send (queues what fits, then one loop round
// sends it). Blocking sockets wait in PreloadRuntime.poll between turns.

extension PreloadRuntime {
    /// One non-blocking pass over `iov` after its first `skip` bytes: `move` takes each
    /// non-empty buffer in order until one moves less than its length (or after the first
    /// with `once`); an error ends the pass and counts only when nothing moved.
    func eachBuffer(
        _ iov: UnsafePointer<iovec>, _ count: Int, skip: Int, once: Bool = false,
        _ move: (UnsafeMutableRawBufferPointer) throws(Errno) -> Int
    ) -> (Int, Errno?) {
        var total = 0
        var skipped = 0
        for k in 0..<count {
            var base = iov[k].iov_base
            var length = iov[k].iov_len
            if skipped < skip {
                let drop = min(length, skip - skipped)
                skipped += drop
                base = base.map { $0 + drop }
                length -= drop
            }
            guard length > 0, let base else { continue }
            do throws(Errno) {
                let n = try move(UnsafeMutableRawBufferPointer(start: base, count: length))
                total += n
                if n < length || once { break }
            } catch {
                return total > 0 ? (total, nil) : (0, error)
            }
        }
        return (total, nil)
    }

    /// One non-blocking pass of reads (or peeks) into `iov`.
    func receiveOnce(
        _ stack: NetworkStack<SelectedLink>, _ id: Int32, _ iov: UnsafePointer<iovec>, _ count: Int, skip: Int,
        peek: Bool
    ) -> (Int, Errno?) {
        eachBuffer(iov, count, skip: skip, once: peek) { (buffer) throws(Errno) in
            peek ? try stack.peek(id, into: buffer) : try stack.read(id, into: buffer)
        }
    }

    /// One non-blocking pass of writes from `iov`.
    func sendOnce(
        _ stack: NetworkStack<SelectedLink>, _ id: Int32, _ iov: UnsafePointer<iovec>, _ count: Int, skip: Int
    )
        -> (Int, Errno?)
    {
        eachBuffer(iov, count, skip: skip) { (buffer) throws(Errno) in
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
        while true {
            let turn: TransferTurn? = withRecord(
                entry,
                { instance, stack, r in
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
                        timeout: instance.records[r]!.receiveTimeout)
                }, otherwise: { nil })
            guard let turn else {
                logOnce("inherited-io", "a connection inherited across fork belongs to the parent process: EBADF here")
                return failSize(.EBADF)
            }
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
        while true {
            let turn: TransferTurn? = withRecord(
                entry,
                { instance, stack, r in
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
                        failureReported: reported, timeout: instance.records[r]!.sendTimeout)
                }, otherwise: { nil })
            guard let turn else {
                logOnce("inherited-io", "a connection inherited across fork belongs to the parent process: EBADF here")
                return failSize(.EBADF)
            }
            total += turn.moved
            if total >= wanted { return total }
            if let error = turn.error, error != .EAGAIN {
                if total > 0 { return total }
                if error == .EPIPE && flags & Int32(MSG_NOSIGNAL) == 0 { raise(SIGPIPE) }
                return failSize(error)
            }
            if turn.nonBlocking || dontWait { return total > 0 ? total : failSize(.EAGAIN) }
            let woke = wait(for: fd, events: Int16(POLLOUT), timeout: turn.timeout)
            if woke < 0 { return total > 0 ? total : -1 }
            if woke == 0 { return total > 0 ? total : failSize(.EAGAIN) }
        }
    }

    /// The peer's address for recvfrom/recvmsg callers that ask for it.
    func peerAddress(
        _ entry: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?
    ) {
        guard address != nil, length != nil else { return }
        let peer = withRecord(
            entry,
            { instance, stack, r in
                (try? stack.getpeername(instance.records[r]!.stackID)).map { ($0, instance.records[r]!.inet6) }
            }, otherwise: { nil })
        guard let (name, inet6) = peer else {
            length?.pointee = 0
            return
        }
        writeAddress(name, address, length, inet6: inet6)
    }
}

/// What one pass of a read or write did, and what the record says about waiting for more.
struct TransferTurn {
    var moved: Int
    var error: Errno?
    var nonBlocking: Bool
    var failureReported: Bool
    var timeout: Int64
}

@inline(__always)
func withOneBuffer<R>(_ base: UnsafeRawPointer?, _ length: Int, _ body: (UnsafePointer<iovec>) -> R) -> R {
    var vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: length)
    return body(&vector)
}

@_cdecl("read")
public func hook_read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_read(fd, buffer, count) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    return withOneBuffer(buffer, count) { runtime.receive(fd, entry, $0, 1, flags: 0) }
}

@_cdecl("recv")
public func hook_recv(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ flags: Int32) -> Int {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_recvfrom(fd, buffer, count, flags, nil, nil) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    return withOneBuffer(buffer, count) { runtime.receive(fd, entry, $0, 1, flags: flags) }
}

@_cdecl("recvfrom")
public func hook_recvfrom(
    _ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ flags: Int32,
    _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?
) -> Int {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_recvfrom(fd, buffer, count, flags, address, length) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    let n = withOneBuffer(buffer, count) { runtime.receive(fd, entry, $0, 1, flags: flags) }
    if n >= 0 { runtime.peerAddress(entry, address, length) }
    return n
}

/// readv/writev/recvmsg/sendmsg on a stack socket: the iovec array checked as Linux does
/// (`tooMany` when over IOV_MAX), then received into or sent from.
func transferVector(
    _ fd: Int32, _ entry: Int32, _ vector: UnsafePointer<iovec>?, _ count: Int, flags: Int32, tooMany: Errno,
    receive: Bool
) -> Int {
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    guard count >= 0 else { return failSize(.EINVAL) }
    guard count <= 1024 else { return failSize(tooMany) }
    guard let vector else { return count == 0 ? 0 : failSize(.EFAULT) }
    return receive
        ? runtime.receive(fd, entry, vector, count, flags: flags) : runtime.send(fd, entry, vector, count, flags: flags)
}

@_cdecl("readv")
public func hook_readv(_ fd: Int32, _ vector: UnsafePointer<iovec>?, _ count: Int32) -> Int {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_readv(fd, vector, count) }
    return transferVector(fd, entry, vector, Int(count), flags: 0, tooMany: .EINVAL, receive: true)
}

@_cdecl("recvmsg")
public func hook_recvmsg(_ fd: Int32, _ message: UnsafeMutablePointer<msghdr>?, _ flags: Int32) -> Int {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_recvmsg(fd, message, flags) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    guard let message else { return failSize(.EFAULT) }
    let n = transferVector(
        fd, entry, message.pointee.msg_iov, Int(message.pointee.msg_iovlen), flags: flags, tooMany: .EMSGSIZE,
        receive: true)
    if n >= 0 {
        if let name = message.pointee.msg_name {
            var length = message.pointee.msg_namelen
            runtime.peerAddress(entry, name.assumingMemoryBound(to: sockaddr.self), &length)
            message.pointee.msg_namelen = length
        }
        message.pointee.msg_controllen = 0
        message.pointee.msg_flags = 0
    }
    return n
}

@_cdecl("write")
public func hook_write(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_write(fd, buffer, count) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    return withOneBuffer(buffer, count) { runtime.send(fd, entry, $0, 1, flags: 0) }
}

@_cdecl("send")
public func hook_send(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: Int32) -> Int {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_sendto(fd, buffer, count, flags, nil, 0) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    return withOneBuffer(buffer, count) { runtime.send(fd, entry, $0, 1, flags: flags) }
}

@_cdecl("sendto")
public func hook_sendto(
    _ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: Int32, _ address: UnsafePointer<sockaddr>?,
    _ length: socklen_t
) -> Int {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_sendto(fd, buffer, count, flags, address, length) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    // A connected stream socket ignores the address, as Linux's TCP does.
    return withOneBuffer(buffer, count) { runtime.send(fd, entry, $0, 1, flags: flags) }
}

@_cdecl("writev")
public func hook_writev(_ fd: Int32, _ vector: UnsafePointer<iovec>?, _ count: Int32) -> Int {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_writev(fd, vector, count) }
    return transferVector(fd, entry, vector, Int(count), flags: 0, tooMany: .EINVAL, receive: false)
}

@_cdecl("sendmsg")
public func hook_sendmsg(_ fd: Int32, _ message: UnsafePointer<msghdr>?, _ flags: Int32) -> Int {
    let entry = mtcp_fd_entry(fd)
    guard entry != 0 else { return mtcp_real_sendmsg(fd, message, flags) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    guard let message else { return failSize(.EFAULT) }
    if message.pointee.msg_controllen > 0 {
        runtime.logOnce("cmsg", "control messages on stack sockets are not supported: ignored")
    }
    return transferVector(
        fd, entry, message.pointee.msg_iov, Int(message.pointee.msg_iovlen), flags: flags, tooMany: .EMSGSIZE,
        receive: false)
}

@_cdecl("sendfile")
public func hook_sendfile(_ out: Int32, _ input: Int32, _ offset: UnsafeMutablePointer<off_t>?, _ count: Int) -> Int {
    let entry = mtcp_fd_entry(out)
    guard entry != 0 else { return mtcp_real_sendfile(out, input, offset, count) }
    guard let runtime = PreloadRuntime.current else { return failSize(.EBADF) }
    return runtime.sendFile(out, entry, input, offset, count)
}

@_cdecl("sendfile64")
public func hook_sendfile64(_ out: Int32, _ input: Int32, _ offset: UnsafeMutablePointer<off_t>?, _ count: Int) -> Int {
    hook_sendfile(out, input, offset, count)
}

extension PreloadRuntime {
    /// sendfile to a stack socket: file bytes are read into a buffer and queued. With an
    /// offset the file position stays; without one it advances by what was sent.
    func sendFile(_ out: Int32, _ entry: Int32, _ input: Int32, _ offset: UnsafeMutablePointer<off_t>?, _ count: Int)
        -> Int
    {
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
