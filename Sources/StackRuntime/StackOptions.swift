import Glibc
import PacketIODPDK
import Stack
import TCP
import Wire

/// How a program on the stack finds its settings. Command-line flags win over the MTCP_*
/// environment variables, which win over the config file (`--config` or MTCP_CONFIG, see
/// `ConfigFile`). The preload library reads the same variables and file (`fromEnvironment`).
///
///     --iface IF          MTCP_IFACE          interface the stack runs on
///     --addr A/N[,A6/N]   MTCP_ADDR           our IPv4 and/or IPv6 address with prefix lengths; an
///                                             address the kernel has on IF is shared with it, and
///                                             without --addr the kernel's are taken (afpacket: the
///                                             stack keeps its ports, the kernel the rest)
///     --gateway G[,G6]    MTCP_GATEWAY        default gateway (IPv4 and/or IPv6)
///     --backend B         MTCP_BACKEND        afpacket (default), tap or dpdk
///     --cores N           MTCP_CORES          stack instances, one thread each (fanout shares flows)
///     --dpdk-args "ARGS"  MTCP_DPDK_ARGS      EAL arguments of the dpdk backend, e.g.
///                                             "--no-huge --no-pci --vdev=net_af_packet0,iface=veth0";
///                                             with dpdk, --iface names the port (device name or number)
///     --log LEVEL         MTCP_LOG            error, warn (default), info, debug, or 0-3
///     --stats PREFIX      MTCP_STATS          each process writes its counters to PREFIX.PID at exit
///     --no-kernel-listen  MTCP_KERNEL_LISTEN  (1 default) a 0.0.0.0 listener also accepts on kernel
///                                             interfaces such as loopback; 0 or the flag: not
///                         MTCP_STEERING       kernel (default): processes sharing the interface get
///                                             only their own flows' frames (a BPF filter each, see
///                                             FlowSteering); claims: every process sees every frame
///                                             and a shared port table decides who answers
///                         MTCP_ENABLE         (1 default) 0: the preload library passes all to libc
///     --config FILE       MTCP_CONFIG         a file of KEY = value lines with the keys above
///     --impair SPEC       MTCP_IMPAIR         seeded impairment in both directions, e.g.
///                                             loss=0.02,dup=0.01,reorder=0.05,corrupt=0.001,delay-us=100,seed=7
///     --impair-tx SPEC    MTCP_IMPAIR_TX      only on frames the stack sends
///     --impair-rx SPEC    MTCP_IMPAIR_RX      only on frames the stack receives
///     --cc ALGORITHM      (flag only)         reno or cubic
///     --busy-poll USEC    MTCP_BUSY_POLL      (0 default) a wait that finds nothing keeps looking for
///                                             USEC microseconds (yielding the CPU between looks)
///                                             before it sleeps, as Onload's EF_POLL_USEC
///     --no-stats-shm      MTCP_STATS_SHM      (1 default) each process publishes counters and sockets
///                                             in shared memory for mtcp-stat; 0 or the flag: not
///     --stats-dir DIR     MTCP_STATS_DIR      where those regions live (/dev/shm)
///                         MTCP_STATS_KEEP     (0 default) 1: a region stays after a normal exit too
///     --pcap FILE         MTCP_PCAP           pcapng of every frame the stack receives and sends; %p and
///                                             %i in FILE are the pid and instance (else other processes
///                                             and instances write FILE.PID.INSTANCE beside it)
///     --pcap-size MIB     MTCP_PCAP_SIZE      (64 default) a file rotates at this size ...
///     --pcap-files N      MTCP_PCAP_FILES     (4 default) ... keeping FILE, FILE.1 ... FILE.N-1
///     --pcap-snaplen N    MTCP_PCAP_SNAPLEN   (65535 default) bytes kept of each frame
///     --log-file FILE     MTCP_LOG_FILE       log lines go to FILE (appended) instead of stderr
///     --stat-print SEC    MTCP_STAT_PRINT     (0 default) every SEC seconds each process logs its
///                                             instances' rates, as mTCP's stat_print
public struct StackOptions: Sendable {
    /// How processes that share one interface divide its frames.
    public enum Steering: String, Sendable {
        /// The kernel gives each process only its own flows (`FlowSteering`).
        case kernel
        /// Every process sees every frame; the shared `PortClaims` table decides who answers.
        case claims
    }

    public enum Backend: String, Sendable { case afpacket, tap, dpdk }

    /// How much the stack reports on stderr; each level includes the ones before it.
    public enum LogLevel: Int, Sendable, Comparable {
        case error, warn, info, debug

        /// A name (error, warn or warning, info, debug) or a number 0-3.
        public init?(parsing text: String) {
            switch text.lowercased() {
            case "error", "0": self = .error
            case "warn", "warning", "1": self = .warn
            case "info", "2": self = .info
            case "debug", "3": self = .debug
            default: return nil
            }
        }

        public var name: String {
            switch self {
            case .error: "error"
            case .warn: "warn"
            case .info: "info"
            case .debug: "debug"
            }
        }

        public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// MTCP_ENABLE: false makes the preload library a pure pass-through to libc.
    public var enabled = true
    public var interface = ""
    public var address = IPv4Address(0, 0, 0, 0)
    public var prefixLength = 24
    public var gateway: IPv4Address?
    /// Our IPv6 address with its prefix length, and the IPv6 default router (nil: a router
    /// that advertises itself, if any).
    public var address6: IPAddress?
    public var prefixLength6 = 64
    public var gateway6: IPAddress?
    /// The kernel has our address on the interface too (shared mode, afpacket only): set by
    /// `adoptKernelAddresses` when MTCP_ADDR names one of the kernel's addresses there or is
    /// left out (then the kernel's are taken).
    public var kernelSharesAddress = false
    public var backend = Backend.afpacket
    public var cores = 1
    /// MTCP_DPDK_ARGS: the EAL's arguments for the dpdk backend (see `DPDKConfiguration`).
    public var dpdkArguments: [String] = []
    public var logLevel = LogLevel.warn
    /// MTCP_KERNEL_LISTEN: a listener on 0.0.0.0 also accepts on the kernel's interfaces.
    public var kernelListen = true
    /// MTCP_STEERING: how processes sharing the interface divide its frames (preload library).
    public var steering = Steering.kernel
    /// MTCP_STATS: path prefix of the counter files (PREFIX.PID), none when nil.
    public var statsPath: String?
    /// Impairment of frames the stack sends and of frames it receives.
    public var impairTransmit: ImpairmentSpec?
    public var impairReceive: ImpairmentSpec?
    public var tcp = TCPConfiguration()
    /// MTCP_BUSY_POLL: microseconds an epoll_wait that finds nothing keeps looking before it
    /// sleeps (saves a sleep and a wake-up when the next frame comes soon; costs CPU).
    public var busyPollMicroseconds = 0
    /// MTCP_STATS_SHM: publish counters and sockets in a statistics region for mtcp-stat.
    public var statsRegion = true
    /// MTCP_STATS_DIR: where statistics regions are made.
    public var statsDirectory = "/dev/shm"
    /// MTCP_STATS_KEEP: keep the region after a normal exit (it always stays after a crash).
    public var statsKeep = false
    /// MTCP_PCAP: the capture file (nil: no capture), its rotation size, files and snap length.
    public var pcapPath: String?
    public var pcapFileMegabytes = 64
    public var pcapFiles = 4
    public var pcapSnapLength = 65535
    /// MTCP_LOG_FILE: where log lines go instead of stderr.
    public var logFile: String?
    /// MTCP_STAT_PRINT: seconds between counter lines (0: none).
    public var statPrintSeconds = 0
    /// The config file the settings were read from, if any.
    public var configPath: String?

    public init() {}

    public static let usage = """
        stack options: --iface IF [--addr A/N[,A6/N6]] [--gateway G[,G6]] [--backend afpacket|tap|dpdk] [--cores N]
                       [--dpdk-args "EAL ARGUMENTS"]
                       [--config FILE] [--log error|warn|info|debug] [--stats PREFIX] [--no-kernel-listen]
                       [--impair|--impair-tx|--impair-rx loss=P,dup=P,reorder=P,corrupt=P,delay-us=N,seed=N]
                       [--cc reno|cubic] [--busy-poll USEC]
                       [--no-stats-shm] [--stats-dir DIR] [--pcap FILE [--pcap-size MIB] [--pcap-files N]
                       [--pcap-snaplen N]] [--log-file FILE] [--stat-print SECONDS]
        (or MTCP_IFACE, MTCP_ADDR, MTCP_GATEWAY, MTCP_BACKEND, MTCP_CORES, MTCP_DPDK_ARGS, MTCP_CONFIG, MTCP_LOG,
         MTCP_STATS, MTCP_KERNEL_LISTEN, MTCP_STEERING, MTCP_IMPAIR, MTCP_IMPAIR_TX, MTCP_IMPAIR_RX, MTCP_BUSY_POLL,
         MTCP_STATS_SHM, MTCP_STATS_DIR, MTCP_STATS_KEEP, MTCP_PCAP, MTCP_PCAP_SIZE, MTCP_PCAP_FILES,
         MTCP_PCAP_SNAPLEN, MTCP_LOG_FILE, MTCP_STAT_PRINT)
        """

    /// Flags that take a value, and the variable each stands for ("--cc" has none).
    static let valueFlags: [String: String] = [
        "--iface": "MTCP_IFACE", "--addr": "MTCP_ADDR", "--gateway": "MTCP_GATEWAY", "--backend": "MTCP_BACKEND",
        "--cores": "MTCP_CORES", "--log": "MTCP_LOG", "--stats": "MTCP_STATS", "--impair": "MTCP_IMPAIR",
        "--impair-tx": "MTCP_IMPAIR_TX", "--impair-rx": "MTCP_IMPAIR_RX", "--cc": "--cc", "--config": "MTCP_CONFIG",
        "--dpdk-args": "MTCP_DPDK_ARGS", "--busy-poll": "MTCP_BUSY_POLL", "--stats-dir": "MTCP_STATS_DIR",
        "--pcap": "MTCP_PCAP", "--pcap-size": "MTCP_PCAP_SIZE", "--pcap-files": "MTCP_PCAP_FILES",
        "--pcap-snaplen": "MTCP_PCAP_SNAPLEN", "--log-file": "MTCP_LOG_FILE", "--stat-print": "MTCP_STAT_PRINT",
    ]
    /// Flags without a value, and the variable and value each stands for.
    static let switchFlags: [String: (key: String, value: String)] = [
        "--no-kernel-listen": ("MTCP_KERNEL_LISTEN", "0"), "--no-stats-shm": ("MTCP_STATS_SHM", "0"),
    ]

    /// Reads the config file and the process environment, then removes the stack flags from
    /// `arguments` (the rest stays for the program) and applies them.
    public static func parse(_ arguments: inout [String]) throws(OptionsError) -> StackOptions {
        try parse(&arguments, environment: processEnvironment())
    }

    /// `parse` with the environment given as a dictionary (for tests and launchers).
    public static func parse(
        _ arguments: inout [String], environment: [String: String]
    ) throws(OptionsError) -> StackOptions {
        var flags: [(flag: String, value: String)] = []
        var rest: [String] = []
        var index = 0
        while index < arguments.count {
            let flag = arguments[index]
            if let meaning = switchFlags[flag] {
                flags.append((flag, meaning.value))
                index += 1
            } else if valueFlags[flag] != nil {
                guard index + 1 < arguments.count else { throw OptionsError("missing value for \(flag)") }
                flags.append((flag, arguments[index + 1]))
                index += 2
            } else {
                rest.append(flag)
                index += 1
            }
        }
        var config = environment["MTCP_CONFIG"]
        for (flag, value) in flags where flag == "--config" { config = value }
        var options = try layered(config: config, environment: environment)
        for (flag, value) in flags where flag != "--config" {
            let key = switchFlags[flag]?.key ?? valueFlags[flag]!
            do { try options.apply(key: key, value: value) } catch { throw OptionsError("\(flag): \(error)") }
        }
        arguments = rest
        try options.adoptKernelAddresses()
        try options.validate()
        return options
    }

    /// What the preload library runs on: the MTCP_CONFIG file, then the environment (no
    /// flags). Interface and address are required only when the stack is enabled;
    /// MTCP_ENABLE=0 in the environment means pass-through, whatever else is set or broken.
    public static func fromEnvironment() throws(OptionsError) -> StackOptions {
        try fromEnvironment(processEnvironment())
    }

    /// `fromEnvironment` with the environment given as a dictionary (for tests).
    public static func fromEnvironment(_ environment: [String: String]) throws(OptionsError) -> StackOptions {
        if let enable = environment["MTCP_ENABLE"], (try? boolean(enable)) == false {
            var disabled = StackOptions()
            disabled.enabled = false
            return disabled
        }
        var options = try layered(config: environment["MTCP_CONFIG"], environment: environment)
        if options.enabled {
            try options.adoptKernelAddresses()
            try options.validate()
        }
        return options
    }

    /// Defaults, then the config file (when `config` names one), then the variables.
    public static func layered(config: String?, environment: [String: String]) throws(OptionsError) -> StackOptions {
        var options = StackOptions()
        if let config, !config.isEmpty {
            let file = try ConfigFile(path: config)
            for setting in file.settings {
                do { try options.apply(key: setting.key, value: setting.value) } catch {
                    throw OptionsError("\(config):\(setting.line): \(setting.key) = \(setting.value): \(error)")
                }
            }
            options.configPath = config
        }
        for key in ConfigFile.keys {
            guard let value = environment[key] else { continue }
            do { try options.apply(key: key, value: value) } catch { throw OptionsError("\(key): \(error)") }
        }
        return options
    }

    /// The MTCP_* names this layer reads from the process environment.
    public static let environmentKeys = ConfigFile.keys + ["MTCP_CONFIG"]

    /// The MTCP_* variables of this process that are set.
    public static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        for key in environmentKeys {
            if let value = getenv(key) { result[key] = String(cString: value) }
        }
        return result
    }

    /// Shared mode: with no address given, the kernel's addresses on the interface (and its
    /// default gateway there) become ours; an address given that the kernel has there is
    /// shared. Only on afpacket (a TAP device's kernel side is the peer; DPDK takes the port).
    public mutating func adoptKernelAddresses(
        _ lookup: (String) -> KernelAddresses = KernelAddresses.of(interface:)
    ) throws(OptionsError) {
        kernelSharesAddress = false
        guard backend == .afpacket, !interface.isEmpty else { return }
        let kernel = lookup(interface)
        if !hasAddress {
            guard !kernel.ipv4.isEmpty || !kernel.ipv6.isEmpty else { return }
            if let first = kernel.ipv4.first { (address, prefixLength) = (first.address, first.prefixLength) }
            if let first = kernel.ipv6.first { (address6, prefixLength6) = (first.address, first.prefixLength) }
            if gateway == nil { gateway = kernel.gateway }
        }
        let hasIPv4 = address != IPv4Address(0, 0, 0, 0)
        let shared4 = hasIPv4 && kernel.has(address)
        let shared6 = address6.map { kernel.has($0) } ?? false
        guard shared4 || shared6 else { return }
        // The kernel answers ARP and neighbour discovery for both families or for neither.
        if hasIPv4 && !shared4 || address6 != nil && !shared6 {
            throw OptionsError(
                "\(addressText): one address is \(interface)'s kernel address and one is not; share both or neither")
        }
        guard steering == .kernel else {
            throw OptionsError("sharing \(interface)'s kernel address needs MTCP_STEERING=kernel")
        }
        kernelSharesAddress = true
    }

    /// Interface and address are there: what a stack needs to start.
    public func validate() throws(OptionsError) {
        guard !interface.isEmpty else { throw OptionsError("no interface: give --iface or MTCP_IFACE") }
        guard hasAddress else {
            throw OptionsError(
                "no address: give --addr A/N or MTCP_ADDR (\(interface) has no kernel address to share)")
        }
    }

    /// Sets one setting from its text; `key` is an MTCP_* name or "--cc". Empty text leaves
    /// the setting as it was (an exported but empty variable counts as unset).
    mutating func apply(key: String, value: String) throws(OptionsError) {
        guard !value.isEmpty else { return }
        switch key {
        case "MTCP_ENABLE":
            enabled = try StackOptions.boolean(value)
        case "MTCP_IFACE":
            interface = value
        case "MTCP_ADDR":
            // One address per family, comma-separated: "10.0.0.2/24,fd00::2/64".
            address = IPv4Address(0, 0, 0, 0)
            address6 = nil
            for item in value.split(separator: ",").map({ String($0.filter { $0 != " " }) }) {
                let parts = item.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                guard let a = IPAddress(parts[0]), !a.isUnspecified, !a.isMulticast, !a.isLoopback else {
                    throw OptionsError("bad address \(item)")
                }
                let limit = a.isIPv4 ? 32 : 128
                var length = a.isIPv4 ? 24 : 64
                if parts.count == 2 {
                    guard let n = Int(parts[1]), (1...limit).contains(n) else {
                        throw OptionsError("bad prefix in \(item)")
                    }
                    length = n
                }
                if let v4 = a.ipv4 {
                    guard address == IPv4Address(0, 0, 0, 0) else {
                        throw OptionsError("two IPv4 addresses in \(value)")
                    }
                    (address, prefixLength) = (v4, length)
                } else {
                    guard address6 == nil else { throw OptionsError("two IPv6 addresses in \(value)") }
                    (address6, prefixLength6) = (a, length)
                }
            }
        case "MTCP_GATEWAY":
            gateway = nil
            gateway6 = nil
            for item in value.split(separator: ",").map({ String($0.filter { $0 != " " }) }) {
                guard let g = IPAddress(item), !g.isUnspecified, !g.isMulticast else {
                    throw OptionsError("bad gateway \(item)")
                }
                if let v4 = g.ipv4 { gateway = v4 } else { gateway6 = g }
            }
        case "MTCP_BACKEND":
            guard let b = Backend(rawValue: value) else {
                throw OptionsError("backend \(value) is not available here (afpacket, tap, dpdk)")
            }
            backend = b
        case "MTCP_CORES":
            guard let n = Int(value), (1...64).contains(n) else { throw OptionsError("bad core count \(value) (1-64)") }
            cores = n
        case "MTCP_DPDK_ARGS":
            dpdkArguments = DPDKConfiguration.split(value)
        case "MTCP_LOG":
            guard let level = LogLevel(parsing: value) else {
                throw OptionsError("bad log level \(value) (error, warn, info, debug, or 0-3)")
            }
            logLevel = level
        case "MTCP_KERNEL_LISTEN":
            kernelListen = try StackOptions.boolean(value)
        case "MTCP_STEERING":
            guard let mode = Steering(rawValue: value) else {
                throw OptionsError("bad steering \(value) (kernel or claims)")
            }
            steering = mode
        case "MTCP_STATS":
            statsPath = value
        case "MTCP_IMPAIR":
            impairTransmit = try ImpairmentSpec(parsing: value)
            impairReceive = impairTransmit
        case "MTCP_IMPAIR_TX":
            impairTransmit = try ImpairmentSpec(parsing: value)
        case "MTCP_IMPAIR_RX":
            impairReceive = try ImpairmentSpec(parsing: value)
        case "MTCP_BUSY_POLL":
            guard let n = Int(value), (0...1_000_000).contains(n) else {
                throw OptionsError("bad busy-poll time \(value) (0-1000000 microseconds)")
            }
            busyPollMicroseconds = n
        case "MTCP_STATS_SHM":
            statsRegion = try StackOptions.boolean(value)
        case "MTCP_STATS_DIR":
            statsDirectory = value
        case "MTCP_STATS_KEEP":
            statsKeep = try StackOptions.boolean(value)
        case "MTCP_PCAP":
            pcapPath = value
        case "MTCP_PCAP_SIZE":
            pcapFileMegabytes = try StackOptions.number(value, in: 1...1_000_000, what: "capture file size (MiB)")
        case "MTCP_PCAP_FILES":
            pcapFiles = try StackOptions.number(value, in: 1...1000, what: "capture file count")
        case "MTCP_PCAP_SNAPLEN":
            pcapSnapLength = try StackOptions.number(value, in: 64...65535, what: "snap length")
        case "MTCP_LOG_FILE":
            logFile = value
        case "MTCP_STAT_PRINT":
            statPrintSeconds = try StackOptions.number(value, in: 0...3600, what: "stat-print interval (seconds)")
        case "--cc":
            guard let a = CongestionAlgorithm(rawValue: value) else { throw OptionsError("unknown --cc \(value)") }
            tcp.congestionAlgorithm = a
        default:
            throw OptionsError("unknown option \(key)")
        }
    }

    /// The settings of what a process shows outside (statistics region, capture, log file,
    /// periodic counter lines): hosts with settings of their own (mTCP's config file) still
    /// take these from the environment.
    public static let observationKeys = [
        "MTCP_STATS_SHM", "MTCP_STATS_DIR", "MTCP_STATS_KEEP", "MTCP_PCAP", "MTCP_PCAP_SIZE", "MTCP_PCAP_FILES",
        "MTCP_PCAP_SNAPLEN", "MTCP_LOG_FILE", "MTCP_STAT_PRINT",
    ]

    /// Applies the `observationKeys` set in `environment`.
    public mutating func applyObservationSettings(from environment: [String: String]) throws(OptionsError) {
        for key in Self.observationKeys {
            guard let value = environment[key] else { continue }
            do { try apply(key: key, value: value) } catch { throw OptionsError("\(key): \(error)") }
        }
    }

    /// A whole number in `range`, or an error naming `what`.
    static func number(_ text: String, in range: ClosedRange<Int>, what: String) throws(OptionsError) -> Int {
        guard let n = Int(text), range.contains(n) else {
            throw OptionsError("bad \(what) \(text) (\(range.lowerBound)-\(range.upperBound))")
        }
        return n
    }

    /// 1/0, yes/no, true/false, on/off.
    static func boolean(_ text: String) throws(OptionsError) -> Bool {
        switch text.lowercased() {
        case "1", "yes", "true", "on": return true
        case "0", "no", "false", "off": return false
        default: throw OptionsError("expected 1 or 0, not \(text)")
        }
    }

    /// The settings as the MTCP_* variables that give them back (`fromEnvironment` of these
    /// alone yields the same options, except --cc, which has no variable): what mtcp-run exports.
    public var environmentVariables: [(name: String, value: String)] {
        var result: [(name: String, value: String)] = [("MTCP_ENABLE", enabled ? "1" : "0")]
        if !interface.isEmpty { result.append(("MTCP_IFACE", interface)) }
        if hasAddress { result.append(("MTCP_ADDR", addressText)) }
        let gateways = [gateway.map { "\($0)" }, gateway6.map { "\($0)" }].compactMap { $0 }
        if !gateways.isEmpty { result.append(("MTCP_GATEWAY", gateways.joined(separator: ","))) }
        result.append(("MTCP_BACKEND", backend.rawValue))
        result.append(("MTCP_CORES", "\(cores)"))
        if !dpdkArguments.isEmpty {
            let quoted = dpdkArguments.map { DPDKConfiguration.needsQuotes($0) ? "\"\($0)\"" : $0 }
            result.append(("MTCP_DPDK_ARGS", quoted.joined(separator: " ")))
        }
        result.append(("MTCP_LOG", logLevel.name))
        result.append(("MTCP_KERNEL_LISTEN", kernelListen ? "1" : "0"))
        result.append(("MTCP_STEERING", steering.rawValue))
        if let statsPath { result.append(("MTCP_STATS", statsPath)) }
        if let impairTransmit { result.append(("MTCP_IMPAIR_TX", impairTransmit.text)) }
        if let impairReceive { result.append(("MTCP_IMPAIR_RX", impairReceive.text)) }
        if busyPollMicroseconds > 0 { result.append(("MTCP_BUSY_POLL", "\(busyPollMicroseconds)")) }
        result.append(("MTCP_STATS_SHM", statsRegion ? "1" : "0"))
        result.append(("MTCP_STATS_DIR", statsDirectory))
        if statsKeep { result.append(("MTCP_STATS_KEEP", "1")) }
        if let pcapPath {
            result.append(("MTCP_PCAP", pcapPath))
            result.append(("MTCP_PCAP_SIZE", "\(pcapFileMegabytes)"))
            result.append(("MTCP_PCAP_FILES", "\(pcapFiles)"))
            result.append(("MTCP_PCAP_SNAPLEN", "\(pcapSnapLength)"))
        }
        if let logFile { result.append(("MTCP_LOG_FILE", logFile)) }
        if statPrintSeconds > 0 { result.append(("MTCP_STAT_PRINT", "\(statPrintSeconds)")) }
        return result
    }

    /// An address of either family is set.
    public var hasAddress: Bool { address != IPv4Address(0, 0, 0, 0) || address6 != nil }

    /// The addresses as MTCP_ADDR takes them ("10.0.0.2/24,fd00::2/64").
    public var addressText: String {
        var addresses: [String] = []
        if address != IPv4Address(0, 0, 0, 0) { addresses.append("\(address)/\(prefixLength)") }
        if let address6 { addresses.append("\(address6)/\(prefixLength6)") }
        return addresses.joined(separator: ",")
    }

    public var stackConfiguration: StackConfiguration {
        var configuration = StackConfiguration(address: address, prefixLength: prefixLength, gateway: gateway, tcp: tcp)
        configuration.ipv6 = address6.map { IPv6Interface(address: $0, prefixLength: prefixLength6, gateway: gateway6) }
        configuration.kernelSharesAddress = kernelSharesAddress
        return configuration
    }
}

/// `--impair` text: comma-separated key=value pairs, the same in both directions.
public struct ImpairmentSpec: Sendable, Equatable {
    public var loss = 0.0
    public var duplicate = 0.0
    public var reorder = 0.0
    public var corrupt = 0.0
    public var delayMicroseconds: UInt64 = 0
    public var seed: UInt64 = 1

    /// The spec as `--impair` text that parses back to it.
    public var text: String {
        "loss=\(loss),dup=\(duplicate),reorder=\(reorder),corrupt=\(corrupt),delay-us=\(delayMicroseconds),seed=\(seed)"
    }

    public init(parsing text: String) throws(OptionsError) {
        for item in text.split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { throw OptionsError("bad impairment item \(item)") }
            let key = pair[0]
            let value = pair[1]
            switch key {
            case "loss", "dup", "reorder", "corrupt":
                guard let p = Double(value), p >= 0, p < 1 else {
                    throw OptionsError("\(key) takes a probability in [0, 1), not \(value)")
                }
                switch key {
                case "loss": loss = p
                case "dup": duplicate = p
                case "reorder": reorder = p
                default: corrupt = p
                }
            case "delay-us":
                guard let d = UInt64(value) else { throw OptionsError("bad delay-us \(value)") }
                delayMicroseconds = d
            case "seed":
                guard let s = UInt64(value) else { throw OptionsError("bad seed \(value)") }
                seed = s
            default:
                throw OptionsError("unknown impairment \(key) (loss, dup, reorder, corrupt, delay-us, seed)")
            }
        }
    }
}

public struct OptionsError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
