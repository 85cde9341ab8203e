import Glibc
import Wire

/// The kernel's listening TCP sockets in this network namespace (/proc/net/tcp and tcp6): in
/// shared mode a port the kernel listens on at our address (or at any address) stays the
/// kernel's, so binding it on the stack fails as a second bind in the kernel would.
public enum KernelListeners {
    /// Does a kernel socket listen on `port` at `address` or at a wildcard address?
    public static func listen(port: UInt16, at address: IPAddress) -> Bool {
        for (path, family6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
            for (local, localPort) in listeners(path: path, ipv6: family6) where localPort == port {
                if local.isUnspecified || local == address || address.isUnspecified { return true }
                // A v4-mapped wildcard (::ffff:0.0.0.0) does not occur; [::] covers IPv4 too
                // unless IPV6_V6ONLY, which /proc does not tell: counted as covering.
            }
        }
        return false
    }

    /// The local address and port of each socket in state LISTEN (0A) in one of the files.
    static func listeners(path: String, ipv6: Bool) -> [(IPAddress, UInt16)] {
        guard let file = fopen(path, "r") else { return [] }
        defer { fclose(file) }
        var result: [(IPAddress, UInt16)] = []
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), file) != nil {
            // "  0: 0200A8C0:1F90 00000000:0000 0A ...": sl, local, remote, state.
            let fields = String(cString: line).split(separator: " ")
            guard fields.count >= 4, fields[3] == "0A" else { continue }
            let local = fields[1].split(separator: ":")
            guard local.count == 2, let port = UInt16(local[1], radix: 16),
                let address = parse(String(local[0]), ipv6: ipv6)
            else { continue }
            result.append((address, port))
        }
        return result
    }

    /// /proc prints each 32-bit word of the address as the hex of its native value (the bytes
    /// are in network order in memory).
    public static func parse(_ hex: String, ipv6: Bool) -> IPAddress? {
        let words = ipv6 ? 4 : 1
        guard hex.count == 8 * words else { return nil }
        var values: [UInt32] = []
        var rest = Substring(hex)
        for _ in 0..<words {
            guard let word = UInt32(rest.prefix(8), radix: 16) else { return nil }
            values.append(UInt32(bigEndian: word))
            rest = rest.dropFirst(8)
        }
        if !ipv6 { return IPAddress(IPv4Address(rawValue: values[0])) }
        return IPAddress(
            high: UInt64(values[0]) << 32 | UInt64(values[1]), low: UInt64(values[2]) << 32 | UInt64(values[3]))
    }
}
