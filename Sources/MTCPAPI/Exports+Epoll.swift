import Glibc
import Stack

// mTCP's pipe and epoll calls (see Exports+Sockets.swift for how calls map errors).

@_cdecl("mtcp_pipe")
public func mtcp_pipe(_ mctx: OpaquePointer?, _ ids: UnsafeMutablePointer<Int32>?) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        guard let ids else { throw .EFAULT }
        let pair = try c.pipe()
        ids[0] = pair.read
        ids[1] = pair.write
        return 0
    }
}

@_cdecl("mtcp_epoll_create")
public func mtcp_epoll_create(_ mctx: OpaquePointer?, _ size: Int32) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        guard size > 0 else { throw .EINVAL }
        return try c.epollCreate()
    }
}

@_cdecl("mtcp_epoll_create1")
public func mtcp_epoll_create1(_ mctx: OpaquePointer?, _ flags: Int32) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        // Only EPOLL_CLOEXEC (O_CLOEXEC), meaningless for context ids.
        guard flags & ~Int32(O_CLOEXEC) == 0 else { throw .EINVAL }
        return try c.epollCreate()
    }
}

/// struct mtcp_epoll_event is packed: events (4 bytes) then data (8 bytes).
@_cdecl("mtcp_epoll_ctl")
public func mtcp_epoll_ctl(
    _ mctx: OpaquePointer?, _ epid: Int32, _ op: Int32, _ id: Int32, _ event: UnsafeMutableRawPointer?
) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        var events: UInt32 = 0
        var data: UInt64 = 0
        if op != EpollOperation.delete.rawValue {
            guard let event else { throw .EFAULT }
            events = event.loadUnaligned(as: UInt32.self)
            data = event.loadUnaligned(fromByteOffset: 4, as: UInt64.self)
        }
        try c.epollControl(epid, op: op, id: id, events: events, data: data)
        return 0
    }
}

@_cdecl("mtcp_epoll_wait")
public func mtcp_epoll_wait(
    _ mctx: OpaquePointer?, _ epid: Int32, _ events: UnsafeMutableRawPointer?, _ maxEvents: Int32, _ timeout: Int32
) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        guard let events else { throw .EFAULT }
        guard maxEvents > 0 else { throw .EINVAL }
        return Int32(try c.epollWait(epid, into: events, maxEvents: Int(maxEvents), timeout: timeout))
    }
}

@_cdecl("mtcp_epoll_close")
public func mtcp_epoll_close(_ mctx: OpaquePointer?, _ epid: Int32) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        _ = try c.epollSet(epid)
        try c.close(epid)
        return 0
    }
}
