import Glibc

/// Why a packet I/O backend could not be opened.
public enum PacketIOError: Error, Equatable, CustomStringConvertible {
    /// A system call failed with this errno.
    case system(call: String, errno: Int32)
    /// No network interface has this name.
    case noSuchInterface(String)
    /// The interface name is longer than the kernel allows (15 bytes).
    case interfaceNameTooLong(String)
    /// A configuration value the backend cannot use, with the reason.
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .system(let call, let code):
            let text = strerror(code).map { String(cString: $0) } ?? "unknown error"
            return "\(call) failed: \(text) (errno \(code))"
        case .noSuchInterface(let name):
            return "no network interface named \(name)"
        case .interfaceNameTooLong(let name):
            return "interface name too long (at most 15 bytes): \(name)"
        case .invalidConfiguration(let reason):
            return "invalid configuration: \(reason)"
        }
    }
}
