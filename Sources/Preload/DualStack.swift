import CPreload
import Glibc
import PreloadState
import Stack

/// AF_INET6 sockets on the stack: their IPv4 traffic is the stack's, their IPv4 addresses
/// are shown v4-mapped, and their IPv6 traffic is the stack's when it has an IPv6 address;
/// loopback and addresses the stack does not own or reach move the socket to the kernel
/// (`readAddress(_:_:of:connecting:ipv6:)`). Here: the IPPROTO_IPV6 options, answered as
/// Linux answers them.
extension PreloadRuntime {
    /// net.ipv6.bindv6only: IPV6_V6ONLY of new AF_INET6 sockets (0 on most systems).
    static let bindV6OnlyDefault: Bool = {
        let fd = open("/proc/sys/net/ipv6/bindv6only", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { _ = mtcp_real_close(fd) }
        var byte: UInt8 = 0
        return read(fd, &byte, 1) == 1 && byte == UInt8(ascii: "1")
    }()

    /// The IPPROTO_IPV6 options a stack socket keeps, with Linux's ranges and defaults.
    static let ipv6Options: [Int32: (range: ClosedRange<Int32>, initial: Int32)] = [
        IPV6_TCLASS: (-1...255, 0),
        IPV6_UNICAST_HOPS: (-1...255, 64),
        IPV6_RECVPKTINFO: (Int32.min...Int32.max, 0),
        IPV6_RECVTCLASS: (Int32.min...Int32.max, 0),
        IPV6_RECVHOPLIMIT: (Int32.min...Int32.max, 0),
    ]

    /// setsockopt(IPPROTO_IPV6, name) on record `r` (instance lock held): ENOPROTOOPT on an
    /// AF_INET socket (Linux's ip_setsockopt), IPV6_V6ONLY only before bind (EINVAL after).
    func setIPv6Option(_ instance: StackInstance, _ r: Int, name: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
        guard instance.records[r]!.inet6 else { return fail(.ENOPROTOOPT) }
        guard bytes.count >= 4 else { return fail(.EINVAL) }
        let value = bytes.loadUnaligned(as: Int32.self)
        if name == IPV6_V6ONLY {
            // Linux refuses once the socket has a local port: bound, listening, or connected.
            guard !instance.records[r]!.bound, instance.records[r]!.localPort == 0 else { return fail(.EINVAL) }
            if let stack = instance.stack {
                do throws(Errno) {
                    try stack.setV6Only(instance.records[r]!.stackID, value != 0)
                } catch {
                    return fail(error)
                }
            }
            instance.records[r]!.v6Only = value != 0
            instance.records[r]!.keep(level: Int32(IPPROTO_IPV6), name: name, value: Array(bytes))
            return 0
        }
        guard let option = Self.ipv6Options[name] else {
            logOnce("ipv6-option:\(name)", "IPPROTO_IPV6 option \(name) is not served on stack sockets: ENOPROTOOPT")
            return fail(.ENOPROTOOPT)
        }
        guard option.range.contains(value) else { return fail(.EINVAL) }
        // -1 asks for the default (IPV6_TCLASS, IPV6_UNICAST_HOPS).
        let kept = value == -1 && option.range.lowerBound == -1 ? option.initial : value
        instance.records[r]!.ipv6Options[name] =
            name == IPV6_TCLASS || name == IPV6_UNICAST_HOPS ? kept : (value != 0 ? 1 : 0)
        instance.records[r]!.keep(level: Int32(IPPROTO_IPV6), name: name, value: Array(bytes))
        return 0
    }

    /// What getsockopt answers from the record itself: SO_DOMAIN of an AF_INET6 socket and its
    /// IPPROTO_IPV6 options; nil for everything else (the stack answers).
    static func familyOption(_ record: SocketRecord, level: Int32, name: Int32) -> Int32? {
        if level == SOL_SOCKET && name == SO_DOMAIN { return record.inet6 ? AF_INET6 : nil }
        guard level == Int32(IPPROTO_IPV6), record.inet6 else { return nil }
        if name == IPV6_V6ONLY { return record.v6Only ? 1 : 0 }
        guard let option = ipv6Options[name] else { return nil }
        return record.ipv6Options[name] ?? option.initial
    }
}
