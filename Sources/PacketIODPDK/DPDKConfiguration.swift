import Glibc

/// Everything a `DPDKPort` is opened with: the EAL's command line and the port's set-up.
///
/// The EAL arguments are DPDK's own (`-l 0-1 -n 4 --no-huge --vdev=net_af_packet0,iface=veth0
/// -a 0000:01:00.0 ...`); the structured fields below add the common ones, and `ealArguments`
/// adds what a stack process needs when the user did not say otherwise: `--no-telemetry`, and
/// no shared run-time files (`--no-shconf` with `--no-huge`, else `--in-memory`) so several
/// processes never meet in /var/run/dpdk.
public struct DPDKConfiguration: Sendable, Hashable {
    /// EAL arguments given as text (MTCP_DPDK_ARGS / --dpdk-args), passed on as they are.
    public var arguments: [String] = []
    /// `-l`: the lcore list, e.g. "0-1"; nil leaves it to the EAL (every core).
    public var lcores: String?
    /// `-n`: memory channels.
    public var memoryChannels: Int?
    /// `--no-huge`: plain pages, no hugetlbfs (no NIC DMA; virtual devices only).
    public var noHugePages = false
    /// `-m`: megabytes of memory to reserve.
    public var memoryMegabytes: Int?
    /// `--vdev` values, e.g. "net_af_packet0,iface=veth0".
    public var virtualDevices: [String] = []
    /// `-a` PCI addresses (the allow-list).
    public var allowedPCI: [String] = []

    /// The port: its device name ("net_af_packet0", "0000:01:00.0") or its number ("0").
    public var port = "0"
    /// RX/TX queue pairs, one per stack instance.
    public var queues = 1
    public var receiveDescriptors = 1024
    public var transmitDescriptors = 1024
    /// Mbufs in each queue's pool: enough for both rings, a burst held by the stack, spare.
    public var mbufsPerQueue = 4095
    /// Program the symmetric Toeplitz key when the port has RSS and there are several queues.
    public var rss = true
    /// Use IPv4 and TCP transmit checksum offloads when the port offers them.
    public var checksumOffload = true

    public init() {}

    /// Splits MTCP_DPDK_ARGS text into arguments at spaces, tabs and newlines; double quotes
    /// group. By Unicode scalar, as a shell splits bytes: as characters, a separator followed by
    /// a combining mark ("\r\n" or " \u{301}") would be one character and no separator.
    public static func split(_ text: String) -> [String] {
        var result: [String] = []
        var current = String.UnicodeScalarView()
        var quoted = false
        var started = false
        for c in text.unicodeScalars {
            if c == "\"" {
                quoted.toggle()
                started = true
            } else if isSeparator(c) && !quoted {
                if started { result.append(String(current)) }
                current = String.UnicodeScalarView()
                started = false
            } else {
                current.append(c)
                started = true
            }
        }
        if started { result.append(String(current)) }
        return result
    }

    /// Whether `split` cuts `argument` apart: an argument that does must be quoted.
    public static func needsQuotes(_ argument: String) -> Bool {
        argument.isEmpty || argument.unicodeScalars.contains(where: isSeparator)
    }

    static func isSeparator(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\n" }

    /// argv for rte_eal_init: program name, the structured options, `arguments`, then the
    /// defaults the user did not override.
    public func ealArguments(programName: String = "mtcp") -> [String] {
        var result = [programName]
        if let lcores { result += ["-l", lcores] }
        if let memoryChannels { result += ["-n", "\(memoryChannels)"] }
        if let memoryMegabytes { result += ["-m", "\(memoryMegabytes)"] }
        if noHugePages { result.append("--no-huge") }
        for device in virtualDevices { result.append("--vdev=\(device)") }
        for address in allowedPCI { result += ["-a", address] }
        result += arguments
        let given = Set(result.map { $0.split(separator: "=", maxSplits: 1).first.map(String.init) ?? $0 })
        if given.isDisjoint(with: ["--in-memory", "--no-shconf", "--file-prefix", "--proc-type"]) {
            // --in-memory implies legacy memory's opposite; with --no-huge only --no-shconf works.
            result.append(given.contains("--no-huge") ? "--no-shconf" : "--in-memory")
        }
        if given.isDisjoint(with: ["--telemetry", "--no-telemetry"]) { result.append("--no-telemetry") }
        return result
    }
}
