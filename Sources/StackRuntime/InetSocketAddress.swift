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
        let size = MemoryLayout<sockaddr_in>.size
        let room = Int(length.pointee)
        guard room >= 0 else { throw .EINVAL }
        withUnsafeBytes(of: &inet) { bytes in
            UnsafeMutableRawPointer(out).copyMemory(from: bytes.baseAddress!, byteCount: min(room, size))
        }
        length.pointee = socklen_t(size)
    }
}
