import CShim
import Glibc
import Wire

/// What the kernel knows about a network interface, read through ioctls on any socket.
enum InterfaceQuery {
    /// Throws `.noSuchInterface` or `.interfaceNameTooLong` for the matching errno, else `.system`.
    static func check(_ result: Int32, _ call: String, interface: String) throws(PacketIOError) {
        guard result < 0 else { return }
        let code = mtcp_shim_errno()
        switch code {
        case ENODEV, ENXIO: throw .noSuchInterface(interface)
        case ENAMETOOLONG: throw .interfaceNameTooLong(interface)
        default: throw .system(call: call, errno: code)
        }
    }

    static func index(socket fd: Int32, interface: String) throws(PacketIOError) -> Int32 {
        let index = mtcp_shim_if_index(fd, interface)
        try check(index, "ioctl(SIOCGIFINDEX)", interface: interface)
        return index
    }

    static func mtu(socket fd: Int32, interface: String) throws(PacketIOError) -> Int {
        let mtu = mtcp_shim_if_mtu(fd, interface)
        try check(mtu, "ioctl(SIOCGIFMTU)", interface: interface)
        return Int(mtu)
    }

    static func hardwareAddress(socket fd: Int32, interface: String) throws(PacketIOError) -> MACAddress {
        var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0)
        let result = withUnsafeMutableBytes(of: &bytes) { raw in
            mtcp_shim_if_hwaddr(fd, interface, raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        try check(result, "ioctl(SIOCGIFHWADDR)", interface: interface)
        return MACAddress(bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5)
    }
}
