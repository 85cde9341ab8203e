import Glibc

// How Linux takes the arguments of the socket calls before it acts on them, so that the
// preload library answers a hostile argument with the kernel's errno, in the kernel's order,
// and never faults itself where the kernel would fail the call instead. Each rule names the
// kernel function it follows.

/// What Linux answers instead of doing the call.
public struct KernelError: Error, Equatable {
    public let errno: Int32
    public init(_ errno: Int32) { self.errno = errno }
}

/// Pointers a program hands over, as the kernel sees them. The kernel checks a range against
/// the end of user space up front (access_ok) and fails with EFAULT when a copy touches an
/// unmapped page. The library copies in user space, where a touch of an unmapped page is a
/// crash: it treats NULL and the first page (never mapped: vm.mmap_min_addr) as faulting. It
/// cannot tell other unmapped addresses from a short buffer without a system call, and takes
/// them as mapped.
public enum UserMemory {
    /// Where user space ends: x86-64's TASK_SIZE_MAX with 4-level page tables (with 5 levels
    /// the kernel maps above it only when asked to), arm64's 48-bit space elsewhere.
    #if arch(x86_64)
        public static let end: UInt = 0x7fff_ffff_f000
    #else
        public static let end: UInt = 1 << 48
    #endif
    /// Nothing is mapped below this (vm.mmap_min_addr is at least a page).
    public static let firstMappable: UInt = 4096
    /// The most one read or write moves (MAX_RW_COUNT: INT_MAX rounded down to a page).
    public static let transferLimit = 0x7fff_f000
    /// The most buffers one call takes (IOV_MAX, UIO_MAXIOV: a macro Swift cannot import).
    public static let vectorLimit = 1024

    /// access_ok: `length` bytes from `base` lie in user space.
    public static func inUserSpace(_ base: UnsafeRawPointer?, _ length: UInt) -> Bool {
        let (last, overflow) = UInt(bitPattern: base).addingReportingOverflow(length)
        return !overflow && last <= end
    }

    /// A touch of `base` faults: NULL, the first page, or beyond user space.
    public static func faults(_ base: UnsafeRawPointer?) -> Bool {
        let address = UInt(bitPattern: base)
        return address < firstMappable || address >= end
    }

    /// The library may read or write `length` bytes at `base` (none: any pointer will do).
    public static func usable(_ base: UnsafeRawPointer?, _ length: UInt) -> Bool {
        inUserSpace(base, length) && (length == 0 || !faults(base))
    }
}

/// How much a read or write may move, checked as Linux checks its buffers before moving a byte.
public enum Transfer: Equatable {
    /// Moves up to `length` bytes. `faults`: a buffer in it faults when touched; Linux's TCP
    /// copies a segment's worth at a time, so the call moves nothing and fails with EFAULT
    /// once there is something to move (an error, end of stream or EAGAIN come first).
    case move(length: Int, faults: Bool)
    case fail(KernelError)

    /// read and write (vfs_read, vfs_write): the whole count must lie in user space; then it
    /// is cut to `UserMemory.transferLimit`.
    public static func whole(_ base: UnsafeRawPointer?, _ count: UInt) -> Transfer {
        guard UserMemory.inUserSpace(base, count) else { return .fail(KernelError(EFAULT)) }
        return cut(base, count)
    }

    /// recv, send, recvfrom, sendto and a vector of one (import_ubuf): the count is cut to
    /// `UserMemory.transferLimit` first, then checked.
    public static func single(_ base: UnsafeRawPointer?, _ count: UInt) -> Transfer {
        let length = Int(min(count, UInt(UserMemory.transferLimit)))
        guard UserMemory.inUserSpace(base, UInt(length)) else { return .fail(KernelError(EFAULT)) }
        return cut(base, count)
    }

    private static func cut(_ base: UnsafeRawPointer?, _ count: UInt) -> Transfer {
        let length = Int(min(count, UInt(UserMemory.transferLimit)))
        return .move(length: length, faults: length > 0 && UserMemory.faults(base))
    }

    /// readv, writev and a msghdr's iovec array (__import_iovec): more than IOV_MAX buffers is
    /// `tooMany` (EINVAL, or EMSGSIZE for a msghdr); an array the library cannot read, EFAULT;
    /// a negative length anywhere, EINVAL; then each buffer must lie in user space, and the
    /// total is cut to `UserMemory.transferLimit`.
    public static func vector(_ iov: UnsafePointer<iovec>?, _ count: UInt, tooMany: Int32) -> Transfer {
        guard count <= UInt(UserMemory.vectorLimit) else { return .fail(KernelError(tooMany)) }
        guard count > 0 else { return .move(length: 0, faults: false) }
        guard let iov, UserMemory.usable(iov, count * UInt(MemoryLayout<iovec>.stride)) else {
            return .fail(KernelError(EFAULT))
        }
        let n = Int(count)
        for k in 0..<n where iov[k].iov_len < 0 { return .fail(KernelError(EINVAL)) }
        if n == 1 { return single(iov[0].iov_base, UInt(iov[0].iov_len)) }
        var total = 0
        var faults = false
        for k in 0..<n {
            let length = iov[k].iov_len
            guard UserMemory.inUserSpace(iov[k].iov_base, UInt(length)) else { return .fail(KernelError(EFAULT)) }
            let taken = min(length, UserMemory.transferLimit - total)
            if taken > 0 && UserMemory.faults(iov[k].iov_base) { faults = true }
            total += taken
        }
        return .move(length: total, faults: faults)
    }
}

/// Socket addresses in and out of the kernel (net/socket.c).
public enum SocketAddressCopy {
    /// Room for any address (sizeof(struct sockaddr_storage)).
    public static let storageSize = 128

    /// move_addr_to_kernel: EINVAL for a negative length or one past `storageSize`, EFAULT when
    /// the address cannot be read; nil when it can be.
    public static func inbound(_ address: UnsafeRawPointer?, _ length: socklen_t) -> KernelError? {
        guard Int32(bitPattern: length) >= 0, Int(length) <= storageSize else { return KernelError(EINVAL) }
        guard UserMemory.usable(address, UInt(length)) else { return KernelError(EFAULT) }
        return nil
    }

    /// move_addr_to_user: how many bytes of an address of `size` bytes go to `address` (the
    /// caller then sets `*length` to `size`): EFAULT when `length` cannot be read or the bytes
    /// cannot be written, EINVAL for a negative `*length`.
    public static func outbound(
        _ address: UnsafeMutableRawPointer?, _ length: UnsafeMutablePointer<socklen_t>?, size: Int
    ) -> Result<Int, KernelError> {
        guard let length, UserMemory.usable(length, UInt(MemoryLayout<socklen_t>.size)) else {
            return .failure(KernelError(EFAULT))
        }
        let room = min(Int(Int32(bitPattern: length.pointee)), size)
        guard room >= 0 else { return .failure(KernelError(EINVAL)) }
        guard UserMemory.usable(address, UInt(room)) else { return .failure(KernelError(EFAULT)) }
        return .success(room)
    }
}

/// setsockopt and getsockopt as Linux checks them before it looks at the option itself.
public enum SocketOptionRules {
    static let levelSocket = SOL_SOCKET
    static let levelTCP = Int32(IPPROTO_TCP)
    static let levelIP = Int32(IPPROTO_IP)
    static let levelIPv6 = Int32(IPPROTO_IPV6)

    /// setsockopt (do_sock_setsockopt, sk_setsockopt, do_tcp_setsockopt, do_ipv6_setsockopt):
    /// EINVAL for a negative length; at SOL_SOCKET and IPPROTO_TCP an int's length at least
    /// (a congestion name's one byte), then EFAULT when the value cannot be read; nil to go on.
    public static func set(level: Int32, name: Int32, value: UnsafeRawPointer?, length: socklen_t) -> KernelError? {
        guard Int32(bitPattern: length) >= 0 else { return KernelError(EINVAL) }
        let least: socklen_t
        switch level {
        case levelSocket: least = 4
        case levelTCP: least = name == TCP_CONGESTION ? 1 : 4
        case levelIPv6:
            // An int when given one; NULL reads as 0 (do_ipv6_setsockopt).
            guard length >= 4, value != nil else { return nil }
            return UserMemory.usable(value, 4) ? nil : KernelError(EFAULT)
        default:
            // IPPROTO_IP and levels nobody serves: the option decides (ENOPROTOOPT here).
            return nil
        }
        guard length >= least else { return KernelError(EINVAL) }
        return UserMemory.usable(value, UInt(valueSize(level: level, name: name, length: length)))
            ? nil : KernelError(EFAULT)
    }

    /// How many bytes of a setsockopt value the option reads: Linux copies in the option's own
    /// size (an int, struct linger, struct timeval, a congestion name), never `length` bytes.
    public static func valueSize(level: Int32, name: Int32, length: socklen_t) -> Int {
        let given = Int(min(length, 1 << 16))
        switch (level, name) {
        case (levelSocket, SO_LINGER): return min(given, MemoryLayout<linger>.size)
        case (levelSocket, SO_RCVTIMEO), (levelSocket, SO_SNDTIMEO): return min(given, MemoryLayout<timeval>.size)
        case (levelTCP, TCP_CONGESTION): return min(given, 15)  // TCP_CA_NAME_MAX - 1
        default: return min(given, 4)
        }
    }

    /// getsockopt before the option (sk_getsockopt, do_tcp_getsockopt, do_ip_getsockopt):
    /// levels an AF_INET socket does not have are EOPNOTSUPP (ENOPROTOOPT on AF_INET6) before
    /// anything is read; then EFAULT when the length cannot be read, EINVAL when it is negative.
    public static func get(level: Int32, length: UnsafeMutablePointer<socklen_t>?, inet6: Bool) -> KernelError? {
        let known = level == levelSocket || level == levelTCP || level == levelIP || (inet6 && level == levelIPv6)
        guard known else { return KernelError(inet6 ? ENOPROTOOPT : EOPNOTSUPP) }
        guard let length, UserMemory.usable(length, UInt(MemoryLayout<socklen_t>.size)) else {
            return KernelError(EFAULT)
        }
        return Int32(bitPattern: length.pointee) < 0 ? KernelError(EINVAL) : nil
    }

    /// What SO_RCVTIMEO or SO_SNDTIMEO's struct timeval asks for, as sock_set_timeout takes it.
    public enum Timeout: Equatable {
        case none
        /// A negative time: the socket waits not at all (EAGAIN at once), and reads back 0.
        case immediately
        case after(seconds: Int64, microseconds: Int64)

        /// The wait in nanoseconds as the records keep it (0: none).
        public var nanoseconds: Int64 {
            switch self {
            case .none: return 0
            case .immediately: return 1
            case .after(let seconds, let microseconds):
                return WaitTimeout.nanoseconds(Int(seconds), Int(microseconds) * 1_000)
            }
        }

        /// The seconds and microseconds getsockopt reads back.
        public var shown: (seconds: Int64, microseconds: Int64) {
            if case .after(let seconds, let microseconds) = self { return (seconds, microseconds) }
            return (0, 0)
        }
    }

    /// sock_set_timeout: EINVAL for fewer bytes than a timeval, EDOM for microseconds outside
    /// a second.
    public static func timeout(_ value: UnsafeRawBufferPointer) -> Result<Timeout, KernelError> {
        guard value.count >= MemoryLayout<timeval>.size else { return .failure(KernelError(EINVAL)) }
        let seconds = value.loadUnaligned(as: Int64.self)
        let microseconds = value.loadUnaligned(fromByteOffset: 8, as: Int64.self)
        guard (0..<1_000_000).contains(microseconds) else { return .failure(KernelError(EDOM)) }
        if seconds < 0 { return .success(.immediately) }
        if seconds == 0 && microseconds == 0 { return .success(.none) }
        return .success(.after(seconds: seconds, microseconds: microseconds))
    }
}

/// A sendmsg's control messages, as __sys_sendmsg copies them in and TCP reads them.
public enum ControlMessages {
    /// What Linux finds: `error` (ENOBUFS past INT_MAX bytes, EFAULT when they cannot be read,
    /// EINVAL for a malformed header, as sock_cmsg_send); `socketLevel` when one is at
    /// SOL_SOCKET (TCP acts on those; every other level it skips).
    public static func check(_ control: UnsafeRawPointer?, _ length: Int) -> (error: KernelError?, socketLevel: Bool) {
        let size = UInt(bitPattern: length)
        guard size <= UInt(Int32.max) else { return (KernelError(ENOBUFS), false) }
        guard size > 0 else { return (nil, false) }
        guard let control, UserMemory.usable(control, size) else { return (KernelError(EFAULT), false) }
        let header = MemoryLayout<cmsghdr>.size
        var offset = 0
        var socketLevel = false
        // CMSG_FIRSTHDR and CMSG_NXTHDR: a header needs room for itself.
        while offset + header <= length {
            let messageLength = control.loadUnaligned(fromByteOffset: offset, as: Int.self)
            guard messageLength >= header, messageLength <= length - offset else { return (KernelError(EINVAL), false) }
            if control.loadUnaligned(fromByteOffset: offset + 8, as: Int32.self) == SOL_SOCKET { socketLevel = true }
            offset += (messageLength + 7) & ~7
        }
        return (nil, socketLevel)
    }
}

/// The timeouts of select, pselect and ppoll, as the kernel (and glibc's select) take them.
public enum WaitTimeout {
    /// select's struct timeval (glibc's __select64): EINVAL when either field is negative;
    /// microseconds past a second carried into the seconds. In nanoseconds.
    public static func select(seconds: Int, microseconds: Int) -> Result<Int64, KernelError> {
        guard seconds >= 0, microseconds >= 0 else { return .failure(KernelError(EINVAL)) }
        let (carried, overflow) = seconds.addingReportingOverflow(microseconds / 1_000_000)
        if overflow { return .success(Int64.max) }
        return .success(nanoseconds(carried, microseconds % 1_000_000 * 1_000))
    }

    /// A timespec of ppoll or pselect (poll_select_set_timeout): EINVAL unless the seconds are
    /// not negative and the nanoseconds within a second. In nanoseconds.
    public static func timespec(seconds: Int, nanoseconds ns: Int) -> Result<Int64, KernelError> {
        guard seconds >= 0, (0..<1_000_000_000).contains(ns) else { return .failure(KernelError(EINVAL)) }
        return .success(nanoseconds(seconds, ns))
    }

    /// Long waits stay positive (past 292 years is forever enough): a sum that wrapped, just
    /// under the limit, read as a negative wait, which is none (found by the preload fuzz target).
    static func nanoseconds(_ seconds: Int, _ ns: Int) -> Int64 {
        let (whole, overflow) = Int64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let (total, over) = whole.addingReportingOverflow(Int64(ns))
        return overflow || over ? Int64.max : total
    }
}
