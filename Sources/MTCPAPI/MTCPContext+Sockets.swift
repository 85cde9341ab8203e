import Glibc
import Stack
import TCP
import Wire

/// The socket calls of a context (lock held), with Linux's blocking semantics on top of the
/// stack's non-blocking sockets.
extension MTCPContext {
    func socket(domain: Int32, type: Int32, protocol proto: Int32) throws(Errno) -> Int32 {
        guard domain == AF_INET else { throw .EAFNOSUPPORT }
        let nonBlockFlag = Int32(SOCK_NONBLOCK.rawValue)
        let base = type & ~(nonBlockFlag | Int32(SOCK_CLOEXEC.rawValue))
        guard base == SocketConstant.SOCK_STREAM else { throw .EINVAL }
        guard proto == 0 || proto == SocketConstant.IPPROTO_TCP else { throw Errno(rawValue: EPROTONOSUPPORT) }
        let s = try stack.socket()
        try stack.setNonBlocking(s, true)
        do {
            return try allocate(.socket(s), nonBlocking: type & nonBlockFlag != 0)
        } catch {
            try? stack.close(s)
            throw error
        }
    }

    func bind(_ id: Int32, _ address: (IPv4Address, UInt16)) throws(Errno) {
        try stack.bind(try socket(id), address: IPAddress(address.0), port: address.1)
    }

    func listen(_ id: Int32, backlog: Int32) throws(Errno) {
        try stack.listen(try socket(id), backlog: Int(max(backlog, 1)))
    }

    func accept(_ id: Int32) throws(Errno) -> (id: Int32, address: IPv4Address, port: UInt16) {
        let s = try socket(id)
        let nonBlocking = try entry(id).nonBlocking
        var deadline: Instant?
        while true {
            do { return try acceptOne(s) } catch .EAGAIN {}
            if deadline == nil {
                // Nothing queued: a round may bring a connection in.
                round()
                if nonBlocking { return try acceptOne(s) }
                deadline = self.deadline(s, option: SocketConstant.SO_RCVTIMEO)
                continue
            }
            if try wait(until: deadline!, { readiness(s, EpollFlags.EPOLLIN) }) == .timedOut { throw .EAGAIN }
            guard case .socket(s) = try entry(id).descriptor else { throw .EBADF }
        }
    }

    func acceptOne(_ s: Int32) throws(Errno) -> (id: Int32, address: IPv4Address, port: UInt16) {
        let accepted = try stack.accept(s)
        try? stack.setNonBlocking(accepted.socket, true)
        do {
            // mTCP's API is IPv4's: its sockets are AF_INET, so their peers are IPv4.
            return (try allocate(.socket(accepted.socket)), accepted.address.ipv4 ?? .any, accepted.port)
        } catch {
            try? stack.close(accepted.socket)
            throw error
        }
    }

    func connect(_ id: Int32, _ address: (IPv4Address, UInt16)) throws(Errno) {
        let s = try socket(id)
        do {
            try stack.connect(s, address: IPAddress(address.0), port: address.1)
            return
        } catch .EINPROGRESS {
            if try entry(id).nonBlocking { throw .EINPROGRESS }
        }
        let deadline = self.deadline(s, option: SocketConstant.SO_SNDTIMEO)
        // The SYN leaves in this round; then wait for the outcome.
        round()
        if try wait(until: deadline, { readiness(s, EpollFlags.EPOLLOUT) }) == .timedOut { throw .EINPROGRESS }
        if (try? stack.getpeername(s)) != nil { return }
        let error = try stack.getsockopt(s, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_ERROR)
        throw error != 0 ? Errno(rawValue: error) : .ECONNREFUSED
    }

    /// read(2) on a socket or a pipe's read end; `mayBlock` false makes a blocking id not wait.
    func read(_ id: Int32, into buffer: UnsafeMutableRawBufferPointer, mayBlock: Bool = true, peek: Bool = false)
        throws(Errno) -> Int
    {
        let current = try entry(id)
        switch current.descriptor {
        case .socket(let s):
            var deadline: Instant?
            while true {
                do {
                    return try peek ? stack.peek(s, into: buffer) : stack.read(s, into: buffer)
                } catch .EAGAIN {
                    if deadline == nil {
                        round()
                        if current.nonBlocking || !mayBlock || peek {
                            return try peek ? stack.peek(s, into: buffer) : stack.read(s, into: buffer)
                        }
                        deadline = self.deadline(s, option: SocketConstant.SO_RCVTIMEO)
                        continue
                    }
                    if try wait(until: deadline!, { readiness(s, EpollFlags.EPOLLIN) }) == .timedOut { throw .EAGAIN }
                    _ = try entry(id)
                }
            }
        case .pipeRead(let pipe):
            return try readPipe(id, pipe, into: buffer, nonBlocking: current.nonBlocking || !mayBlock, peek: peek)
        case .pipeWrite: throw .EBADF
        case .epoll: throw .EINVAL
        }
    }

    /// write(2): a blocking id returns when every byte is queued (or on an error after some).
    func write(_ id: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) -> Int {
        let current = try entry(id)
        switch current.descriptor {
        case .socket(let s):
            var written = 0
            var deadline: Instant?
            while true {
                do {
                    let rest = UnsafeRawBufferPointer(rebasing: bytes[written...])
                    written += try stack.write(s, rest)
                    if written == bytes.count || current.nonBlocking { return written }
                } catch .EAGAIN {
                    if current.nonBlocking {
                        if written > 0 { return written }
                        throw .EAGAIN
                    }
                } catch {
                    if written > 0 { return written }
                    throw error
                }
                if deadline == nil { deadline = self.deadline(s, option: SocketConstant.SO_SNDTIMEO) }
                if try wait(until: deadline!, { readiness(s, EpollFlags.EPOLLOUT) }) == .timedOut {
                    if written > 0 { return written }
                    throw .EAGAIN
                }
                _ = try entry(id)
            }
        case .pipeWrite(let pipe):
            return try writePipe(id, pipe, bytes, nonBlocking: current.nonBlocking)
        case .pipeRead: throw .EBADF
        case .epoll: throw .EINVAL
        }
    }

    func readv(_ id: Int32, _ vectors: UnsafeBufferPointer<iovec>) throws(Errno) -> Int {
        var total = 0
        for vector in vectors where vector.iov_len > 0 {
            guard let base = vector.iov_base else { throw .EFAULT }
            let buffer = UnsafeMutableRawBufferPointer(start: base, count: vector.iov_len)
            let n: Int
            do { n = try read(id, into: buffer, mayBlock: total == 0) } catch {
                if total > 0 { return total }
                throw error
            }
            total += n
            if n < buffer.count { break }
        }
        return total
    }

    func writev(_ id: Int32, _ vectors: UnsafeBufferPointer<iovec>) throws(Errno) -> Int {
        var total = 0
        for vector in vectors where vector.iov_len > 0 {
            guard let base = vector.iov_base else { throw .EFAULT }
            let n: Int
            do { n = try write(id, UnsafeRawBufferPointer(start: base, count: vector.iov_len)) } catch {
                if total > 0 { return total }
                throw error
            }
            total += n
            if n < vector.iov_len { break }
        }
        return total
    }

    /// close(2) for any id; `abort` resets a connection instead of closing it.
    func close(_ id: Int32, abort: Bool = false) throws(Errno) {
        switch try entry(id).descriptor {
        case .socket(let s):
            if abort {
                var linger: (Int32, Int32) = (1, 0)
                _ = try? withUnsafeBytes(of: &linger) { (raw) throws(Errno) in
                    try stack.setsockopt(
                        s, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_LINGER, value: raw)
                }
            }
            try stack.close(s)
        case .pipeRead(let pipe):
            pipe.readerOpen = false
            armPipe(pipe.writeID, edges: EpollFlags.EPOLLERR)
        case .pipeWrite(let pipe):
            pipe.writerOpen = false
            armPipe(pipe.readID, edges: EpollFlags.EPOLLIN | EpollFlags.EPOLLHUP)
        case .epoll(let set):
            try stack.epollClose(set.stackEpoll)
            epollSets.removeAll { $0 === set }
        }
        forgetPipeRegistrations(of: id)
        release(id)
        wakeSleepers()
    }

    func shutdown(_ id: Int32, how: Int32) throws(Errno) {
        try stack.shutdown(try socket(id), how: how)
    }

    func setsockopt(_ id: Int32, level: Int32, name: Int32, value: UnsafeRawBufferPointer) throws(Errno) {
        try stack.setsockopt(try socket(id), level: level, name: name, value: value)
    }

    func getsockopt(_ id: Int32, level: Int32, name: Int32, into value: UnsafeMutableRawBufferPointer)
        throws(Errno) -> Int
    {
        try stack.getsockopt(try socket(id), level: level, name: name, into: value)
    }

    func setNonBlocking(_ id: Int32, _ on: Bool) throws(Errno) {
        _ = try entry(id)
        entries[Int(id)]!.nonBlocking = on
    }

    /// FIONREAD and FIONBIO.
    func ioctl(_ id: Int32, request: UInt, _ value: inout Int32) throws(Errno) {
        let current = try entry(id)
        switch request {
        case SocketConstant.FIONBIO:
            entries[Int(id)]!.nonBlocking = value != 0
        case SocketConstant.FIONREAD:
            switch current.descriptor {
            case .socket(let s): try stack.ioctl(s, request: request, &value)
            case .pipeRead(let pipe): value = Int32(pipe.count)
            case .pipeWrite, .epoll: throw .EINVAL
            }
        default:
            throw .EINVAL
        }
    }
}
