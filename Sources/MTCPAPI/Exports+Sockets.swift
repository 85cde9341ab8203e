import Glibc
import Stack
import StackRuntime
import Wire

// mTCP's socket calls. Each takes the context's lock for its whole length
// (dropped only while a blocking call sleeps) and maps a thrown Errno to -1 and errno.

/// Runs `body` on the context under its lock; -1 with errno for a missing context or an error.
@inline(__always)
func call<T: BinaryInteger>(_ mctx: OpaquePointer?, _ body: (MTCPContext) throws(Errno) -> T) -> T {
    guard let context = context(mctx) else {
        errno = EBADF
        return -1
    }
    context.lock()
    defer { context.unlock() }
    do {
        return try body(context)
    } catch {
        errno = error.rawValue
        return -1
    }
}

@_cdecl("mtcp_socket")
public func mtcp_socket(_ mctx: OpaquePointer?, _ domain: Int32, _ type: Int32, _ proto: Int32) -> Int32 {
    call(mctx) { (c) throws(Errno) in try c.socket(domain: domain, type: type, protocol: proto) }
}

@_cdecl("mtcp_bind")
public func mtcp_bind(_ mctx: OpaquePointer?, _ id: Int32, _ address: UnsafePointer<sockaddr>?, _ length: socklen_t)
    -> Int32
{
    call(mctx) { (c) throws(Errno) in
        try c.bind(id, try InetSocketAddress.read(address, length))
        return 0
    }
}

@_cdecl("mtcp_listen")
public func mtcp_listen(_ mctx: OpaquePointer?, _ id: Int32, _ backlog: Int32) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        try c.listen(id, backlog: backlog)
        return 0
    }
}

@_cdecl("mtcp_accept")
public func mtcp_accept(
    _ mctx: OpaquePointer?, _ id: Int32, _ address: UnsafeMutablePointer<sockaddr>?,
    _ length: UnsafeMutablePointer<socklen_t>?
) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        let accepted = try c.accept(id)
        try InetSocketAddress.write(accepted.address, accepted.port, address, length)
        return accepted.id
    }
}

@_cdecl("mtcp_connect")
public func mtcp_connect(
    _ mctx: OpaquePointer?, _ id: Int32, _ address: UnsafePointer<sockaddr>?, _ length: socklen_t
) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        try c.connect(id, try InetSocketAddress.read(address, length))
        return 0
    }
}

@_cdecl("mtcp_close")
public func mtcp_close(_ mctx: OpaquePointer?, _ id: Int32) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        try c.close(id)
        return 0
    }
}

@_cdecl("mtcp_abort")
public func mtcp_abort(_ mctx: OpaquePointer?, _ id: Int32) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        try c.close(id, abort: true)
        return 0
    }
}

@_cdecl("mtcp_shutdown")
public func mtcp_shutdown(_ mctx: OpaquePointer?, _ id: Int32, _ how: Int32) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        try c.shutdown(id, how: how)
        return 0
    }
}

@_cdecl("mtcp_getsockname")
public func mtcp_getsockname(
    _ mctx: OpaquePointer?, _ id: Int32, _ address: UnsafeMutablePointer<sockaddr>?,
    _ length: UnsafeMutablePointer<socklen_t>?
) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        guard address != nil, length != nil else { throw .EFAULT }
        let name = try c.stack.getsockname(try c.socket(id))
        try InetSocketAddress.write(name.address.ipv4 ?? .any, name.port, address, length)
        return 0
    }
}

@_cdecl("mtcp_getpeername")
public func mtcp_getpeername(
    _ mctx: OpaquePointer?, _ id: Int32, _ address: UnsafeMutablePointer<sockaddr>?,
    _ length: UnsafeMutablePointer<socklen_t>?
) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        guard address != nil, length != nil else { throw .EFAULT }
        let name = try c.stack.getpeername(try c.socket(id))
        try InetSocketAddress.write(name.address.ipv4 ?? .any, name.port, address, length)
        return 0
    }
}

@_cdecl("mtcp_read")
public func mtcp_read(_ mctx: OpaquePointer?, _ id: Int32, _ buffer: UnsafeMutablePointer<CChar>?, _ length: Int)
    -> Int
{
    call(mctx) { (c) throws(Errno) in
        guard length >= 0 else { throw .EINVAL }
        guard let buffer else { throw length == 0 ? .EINVAL : .EFAULT }
        return try c.read(id, into: UnsafeMutableRawBufferPointer(start: buffer, count: length))
    }
}

@_cdecl("mtcp_recv")
public func mtcp_recv(
    _ mctx: OpaquePointer?, _ id: Int32, _ buffer: UnsafeMutablePointer<CChar>?, _ length: Int, _ flags: Int32
) -> Int {
    call(mctx) { (c) throws(Errno) in
        guard length >= 0 else { throw .EINVAL }
        guard let buffer else { throw .EFAULT }
        let peek = flags & Int32(MSG_PEEK) != 0
        let nonBlocking = flags & Int32(MSG_DONTWAIT) != 0
        return try c.read(
            id, into: UnsafeMutableRawBufferPointer(start: buffer, count: length), mayBlock: !nonBlocking, peek: peek)
    }
}

@_cdecl("mtcp_readv")
public func mtcp_readv(_ mctx: OpaquePointer?, _ id: Int32, _ vectors: UnsafePointer<iovec>?, _ count: Int32) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        guard count >= 0 else { throw .EINVAL }
        guard let vectors else { throw .EFAULT }
        return Int32(clamping: try c.readv(id, UnsafeBufferPointer(start: vectors, count: Int(count))))
    }
}

@_cdecl("mtcp_write")
public func mtcp_write(_ mctx: OpaquePointer?, _ id: Int32, _ buffer: UnsafePointer<CChar>?, _ length: Int) -> Int {
    call(mctx) { (c) throws(Errno) in
        guard length >= 0 else { throw .EINVAL }
        guard let buffer else { throw .EFAULT }
        return try c.write(id, UnsafeRawBufferPointer(start: buffer, count: length))
    }
}

@_cdecl("mtcp_writev")
public func mtcp_writev(_ mctx: OpaquePointer?, _ id: Int32, _ vectors: UnsafePointer<iovec>?, _ count: Int32)
    -> Int32
{
    call(mctx) { (c) throws(Errno) in
        guard count >= 0 else { throw .EINVAL }
        guard let vectors else { throw .EFAULT }
        return Int32(clamping: try c.writev(id, UnsafeBufferPointer(start: vectors, count: Int(count))))
    }
}

@_cdecl("mtcp_setsockopt")
public func mtcp_setsockopt(
    _ mctx: OpaquePointer?, _ id: Int32, _ level: Int32, _ name: Int32, _ value: UnsafeRawPointer?,
    _ length: socklen_t
) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        guard let value else { throw .EFAULT }
        try c.setsockopt(id, level: level, name: name, value: UnsafeRawBufferPointer(start: value, count: Int(length)))
        return 0
    }
}

@_cdecl("mtcp_getsockopt")
public func mtcp_getsockopt(
    _ mctx: OpaquePointer?, _ id: Int32, _ level: Int32, _ name: Int32, _ value: UnsafeMutableRawPointer?,
    _ length: UnsafeMutablePointer<socklen_t>?
) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        guard let value, let length else { throw .EFAULT }
        let n = try c.getsockopt(
            id, level: level, name: name, into: UnsafeMutableRawBufferPointer(start: value, count: Int(length.pointee)))
        length.pointee = socklen_t(n)
        return 0
    }
}

@_cdecl("mtcp_setsock_nonblock")
public func mtcp_setsock_nonblock(_ mctx: OpaquePointer?, _ id: Int32) -> Int32 {
    call(mctx) { (c) throws(Errno) in
        try c.setNonBlocking(id, true)
        return 0
    }
}

@_cdecl("mtcp_socket_ioctl")
public func mtcp_socket_ioctl(
    _ mctx: OpaquePointer?, _ id: Int32, _ request: Int32, _ argument: UnsafeMutableRawPointer?
)
    -> Int32
{
    call(mctx) { (c) throws(Errno) in
        guard let argument else { throw .EFAULT }
        var value = argument.loadUnaligned(as: Int32.self)
        try c.ioctl(id, request: UInt(UInt32(bitPattern: request)), &value)
        argument.storeBytes(of: value, as: Int32.self)
        return 0
    }
}
