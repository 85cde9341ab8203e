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

/// What an AF_INET6 socket address names, to a stack that serves IPv4: an IPv4 address as
/// Linux maps it (`::ffff:a.b.c.d`, or `::` for any address), or an IPv6 address, which only
/// the kernel can carry.
public enum Inet6Target: Equatable, Sendable {
    /// `::ffff:a.b.c.d`: IPv4 `a.b.c.d`.
    case mapped(IPv4Address)
    /// `::`, the unspecified address.
    case unspecified
    /// Any other IPv6 address (`::1`, link-local, global).
    case ipv6
}

/// The C `struct sockaddr_in6` of dual-stack sockets, read and written as Linux does.
public enum Inet6SocketAddress {
    /// What the address of an AF_INET6 `sockaddr` names, and its port: EFAULT without one,
    /// EINVAL when shorter than RFC 2133's 24 bytes, EAFNOSUPPORT for another family (Linux's
    /// inet6_bind and tcp_v6_connect).
    public static func read(_ address: UnsafePointer<sockaddr>?, _ length: socklen_t) throws(Errno) -> (
        Inet6Target, UInt16
    ) {
        guard let address else { throw .EFAULT }
        guard length >= 24 else { throw .EINVAL }
        let raw = UnsafeRawPointer(address)
        guard raw.loadUnaligned(as: sa_family_t.self) == sa_family_t(AF_INET6) else { throw .EAFNOSUPPORT }
        let port = UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<16 { bytes[i] = raw.load(fromByteOffset: 8 + i, as: UInt8.self) }
        return (target(of: bytes), port)
    }

    /// The meaning of a 16-byte IPv6 address.
    public static func target(of bytes: [UInt8]) -> Inet6Target {
        if bytes.allSatisfy({ $0 == 0 }) { return .unspecified }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return .mapped(IPv4Address(bytes[12], bytes[13], bytes[14], bytes[15]))
        }
        return .ipv6
    }

    /// Writes a sockaddr_in6 for IPv4 `address` as Linux shows it on a dual-stack socket
    /// (`::ffff:a.b.c.d`; `::` for any), truncated to `*length`, which then says 28.
    public static func write(
        _ address: IPv4Address, _ port: UInt16, _ out: UnsafeMutablePointer<sockaddr>?,
        _ length: UnsafeMutablePointer<socklen_t>?
    ) throws(Errno) {
        guard let out, let length else { return }
        var bytes = [UInt8](repeating: 0, count: 28)
        withUnsafeBytes(of: sa_family_t(AF_INET6)) { for (i, b) in $0.enumerated() { bytes[i] = b } }
        bytes[2] = UInt8(port >> 8)
        bytes[3] = UInt8(port & 0xFF)
        if address != .any {
            bytes[18] = 0xFF
            bytes[19] = 0xFF
            let v = address.rawValue
            bytes[20] = UInt8(v >> 24)
            bytes[21] = UInt8((v >> 16) & 0xFF)
            bytes[22] = UInt8((v >> 8) & 0xFF)
            bytes[23] = UInt8(v & 0xFF)
        }
        if let error = bytes.withUnsafeBytes({ InetSocketAddress.copyOut($0, out, length) }) { throw error }
    }
}
