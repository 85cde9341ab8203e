import Glibc
import Stack
import Wire

/// The C `struct sockaddr_in` of socket calls, read and written as Linux does, for the
/// preload library and mTCP's C API.
public enum InetSocketAddress {
    /// The address and port of an AF_INET `sockaddr`: EFAULT without one, EINVAL when it is
    /// too short, EAFNOSUPPORT for another family.
    public static func read(_ address: UnsafePointer<sockaddr>?, _ length: socklen_t) throws(Errno) -> (
        IPv4Address, UInt16
    ) {
        guard let address else { throw .EFAULT }
        guard length >= socklen_t(MemoryLayout<sockaddr_in>.size) else { throw .EINVAL }
        let inet = UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in.self)
        guard inet.sin_family == sa_family_t(AF_INET) else { throw .EAFNOSUPPORT }
        return (IPv4Address(rawValue: UInt32(bigEndian: inet.sin_addr.s_addr)), UInt16(bigEndian: inet.sin_port))
    }

    /// Writes a sockaddr_in truncated to `*length`, then sets `*length` to its full size;
    /// nothing when either pointer is nil.
    public static func write(
        _ address: IPv4Address, _ port: UInt16, _ out: UnsafeMutablePointer<sockaddr>?,
        _ length: UnsafeMutablePointer<socklen_t>?
    ) throws(Errno) {
        guard let out, let length else { return }
        var inet = sockaddr_in()
        inet.sin_family = sa_family_t(AF_INET)
        inet.sin_port = port.bigEndian
        inet.sin_addr.s_addr = address.rawValue.bigEndian
        if let error = withUnsafeBytes(of: &inet, { copyOut($0, out, length) }) { throw error }
    }

    /// Copies a socket address out as the kernel does: cut to `*length`, then `*length` says
    /// the whole size; the error when the length is unusable.
    static func copyOut(
        _ bytes: UnsafeRawBufferPointer, _ out: UnsafeMutablePointer<sockaddr>,
        _ length: UnsafeMutablePointer<socklen_t>
    ) -> Errno? {
        let room = Int(length.pointee)
        guard room >= 0 else { return .EINVAL }
        UnsafeMutableRawPointer(out).copyMemory(from: bytes.baseAddress!, byteCount: min(room, bytes.count))
        length.pointee = socklen_t(bytes.count)
        return nil
    }
}

/// The C `struct sockaddr_in6` of AF_INET6 sockets, read and written as Linux does. An IPv4
/// address travels v4-mapped (`::ffff:a.b.c.d`), which is how `IPAddress` keeps it.
public enum Inet6SocketAddress {
    /// The address of an AF_INET6 `sockaddr` and its port: EFAULT without one, EINVAL when
    /// shorter than RFC 2133's 24 bytes, EAFNOSUPPORT for another family (Linux's inet6_bind
    /// and tcp_v6_connect).
    public static func read(_ address: UnsafePointer<sockaddr>?, _ length: socklen_t) throws(Errno) -> (
        IPAddress, UInt16
    ) {
        guard let address else { throw .EFAULT }
        guard length >= 24 else { throw .EINVAL }
        let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(address), count: 24)
        guard raw.loadUnaligned(as: sa_family_t.self) == sa_family_t(AF_INET6) else { throw .EAFNOSUPPORT }
        let port = UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        return (IPAddress.load(from: raw, at: 8), port)
    }

    /// Writes a sockaddr_in6 (an IPv4 address v4-mapped, IPv4's any address as `::`),
    /// truncated to `*length`, which then says 28.
    public static func write(
        _ address: IPAddress, _ port: UInt16, _ out: UnsafeMutablePointer<sockaddr>?,
        _ length: UnsafeMutablePointer<socklen_t>?
    ) throws(Errno) {
        guard let out, let length else { return }
        var bytes = [UInt8](repeating: 0, count: 28)
        withUnsafeBytes(of: sa_family_t(AF_INET6)) { for (i, b) in $0.enumerated() { bytes[i] = b } }
        bytes[2] = UInt8(port >> 8)
        bytes[3] = UInt8(port & 0xFF)
        let shown = address == IPAddress(IPv4Address.any) ? IPAddress.unspecified : address
        bytes.withUnsafeMutableBytes { shown.store(to: $0, at: 8) }
        if let error = bytes.withUnsafeBytes({ InetSocketAddress.copyOut($0, out, length) }) { throw error }
    }
}
