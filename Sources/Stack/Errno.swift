/// A Linux errno value, the error every socket call reports.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let EPERM = Errno(rawValue: 1)
    public static let ENOENT = Errno(rawValue: 2)
    public static let EINTR = Errno(rawValue: 4)
    public static let EBADF = Errno(rawValue: 9)
    public static let EAGAIN = Errno(rawValue: 11)
    public static let ENOMEM = Errno(rawValue: 12)
    public static let EFAULT = Errno(rawValue: 14)
    public static let EEXIST = Errno(rawValue: 17)
    public static let EINVAL = Errno(rawValue: 22)
    public static let EMFILE = Errno(rawValue: 24)
    public static let ENOTTY = Errno(rawValue: 25)
    public static let EPIPE = Errno(rawValue: 32)
    public static let ENOTSOCK = Errno(rawValue: 88)
    public static let EMSGSIZE = Errno(rawValue: 90)
    public static let ENOPROTOOPT = Errno(rawValue: 92)
    public static let EOPNOTSUPP = Errno(rawValue: 95)
    public static let EAFNOSUPPORT = Errno(rawValue: 97)
    public static let EADDRINUSE = Errno(rawValue: 98)
    public static let EADDRNOTAVAIL = Errno(rawValue: 99)
    public static let ENETUNREACH = Errno(rawValue: 101)
    public static let ECONNABORTED = Errno(rawValue: 103)
    public static let ECONNRESET = Errno(rawValue: 104)
    public static let ENOBUFS = Errno(rawValue: 105)
    public static let EISCONN = Errno(rawValue: 106)
    public static let ENOTCONN = Errno(rawValue: 107)
    public static let ETIMEDOUT = Errno(rawValue: 110)
    public static let ECONNREFUSED = Errno(rawValue: 111)
    public static let EHOSTUNREACH = Errno(rawValue: 113)
    public static let EALREADY = Errno(rawValue: 114)
    public static let EINPROGRESS = Errno(rawValue: 115)

    /// "errno N" (names are for the C layer's strerror).
    public var description: String { "errno \(rawValue)" }
}
