import Glibc
import Wire

/// The addresses the kernel has on one interface (getifaddrs) and its default IPv4 route
/// through it (/proc/net/route): what shared mode takes when `--addr` is left out, and how
/// it knows that a given address is the kernel's too.
public struct KernelAddresses: Sendable {
    public var ipv4: [(address: IPv4Address, prefixLength: Int)] = []
    /// Global (not link-local) IPv6 addresses.
    public var ipv6: [(address: IPAddress, prefixLength: Int)] = []
    public var gateway: IPv4Address?

    public init() {}

    /// What the kernel has on `interface` now (empty when the interface does not exist).
    public static func of(interface: String) -> KernelAddresses {
        var result = KernelAddresses()
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return result }
        defer { freeifaddrs(list) }
        var entry = list
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            guard let name = current.pointee.ifa_name, String(cString: name) == interface,
                let address = current.pointee.ifa_addr, let mask = current.pointee.ifa_netmask
            else { continue }
            switch Int32(address.pointee.sa_family) {
            case AF_INET:
                let ip = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    UInt32(bigEndian: $0.pointee.sin_addr.s_addr)
                }
                let bits = mask.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    UInt32(bigEndian: $0.pointee.sin_addr.s_addr).nonzeroBitCount
                }
                result.ipv4.append((IPv4Address(rawValue: ip), bits))
            case AF_INET6:
                let (ip, bits) = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { a in
                    mask.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { m in
                        (Self.ipv6(a.pointee.sin6_addr), Self.ipv6(m.pointee.sin6_addr))
                    }
                }
                guard !ip.isLinkLocal else { continue }
                result.ipv6.append((ip, bits.high.nonzeroBitCount + bits.low.nonzeroBitCount))
            default: continue
            }
        }
        result.gateway = defaultGateway(interface: interface)
        return result
    }

    /// The gateway of the default route through `interface` in the main table, if any.
    static func defaultGateway(interface: String) -> IPv4Address? {
        guard let file = fopen("/proc/net/route", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), file) != nil {
            let fields = String(cString: line).split(whereSeparator: { $0 == "\t" || $0 == " " || $0 == "\n" })
            // Iface Destination Gateway Flags ...: each address the hex of its four bytes (network
            // order) read as one native word.
            guard fields.count >= 4, fields[0] == interface, fields[1] == "00000000",
                let gateway = UInt32(fields[2], radix: 16), gateway != 0
            else { continue }
            return IPv4Address(rawValue: UInt32(bigEndian: gateway))
        }
        return nil
    }

    /// The kernel's complete IPv4 neighbours on `interface` (/proc/net/arp: address, type,
    /// flags, hardware address, mask, device; flag 0x2 is a complete entry).
    public static func neighbours(interface: String) -> [(IPv4Address, MACAddress)] {
        guard let file = fopen("/proc/net/arp", "r") else { return [] }
        defer { fclose(file) }
        var result: [(IPv4Address, MACAddress)] = []
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), file) != nil {
            let fields = String(cString: line).split(whereSeparator: { $0 == " " || $0 == "\n" })
            guard fields.count >= 6, fields[5] == interface, let flags = UInt32(fields[2].dropFirst(2), radix: 16),
                flags & 0x2 != 0, let address = IPv4Address(String(fields[0]))
            else { continue }
            let bytes = fields[3].split(separator: ":").compactMap { UInt8($0, radix: 16) }
            guard bytes.count == 6 else { continue }
            let mac = MACAddress(bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5])
            guard mac != .zero else { continue }
            result.append((address, mac))
        }
        return result
    }

    static func ipv6(_ address: in6_addr) -> IPAddress {
        var bytes = address
        return withUnsafeBytes(of: &bytes) { raw in
            var high: UInt64 = 0
            var low: UInt64 = 0
            for k in 0..<8 { high = high << 8 | UInt64(raw[k]) }
            for k in 8..<16 { low = low << 8 | UInt64(raw[k]) }
            return IPAddress(high: high, low: low)
        }
    }

    /// Has the kernel `address` on the interface?
    public func has(_ address: IPv4Address) -> Bool { ipv4.contains { $0.address == address } }
    public func has(_ address: IPAddress) -> Bool { ipv6.contains { $0.address == address } }
}
