import Stack
import TCP
import Wire

/// The settings of mTCP's configuration file (`mtcp_init(path)`), in mTCP's own format:
/// `key = value` lines with mTCP's keys, plus ours for what mTCP kept in other files.
///
///     io              afpacket (default), tap or dpdk (mTCP's psio, netmap and onvm: not here)
///     num_cores       contexts the program may create (1-64, default 1)
///     core_mask       CPUs as a hex mask (accepted; mtcp_core_affinitize pins)
///     num_mem_ch      memory channels (DPDK)
///     port            the interface the stack owns (mTCP listed DPDK ports here; one is used)
///     max_concurrency sockets per context (default 10000): ids stay below it
///     max_num_buffers buffers per context (accepted; ours are allocated per connection)
///     rcvbuf, sndbuf  TCP buffer sizes in bytes (default 262144 here; mTCP's was 8192)
///     tcp_timeout     idle timeout in seconds (accepted and reported; -1 or 0: none)
///     tcp_timewait    TIME-WAIT length in seconds (default 60 here)
///     stat_print      interface whose statistics mTCP printed: each context's counters go to
///                     stderr when it is destroyed
///     multiprocess    mTCP's multi-process mode (accepted)
///     addr            ours: our address A/N (mTCP read it from the interface)
///     gateway         ours: the default gateway (mTCP's route.conf)
///     backend         ours: afpacket, tap or dpdk (wins over io)
///
/// Unknown keys and bad values are errors naming the file and line.
public struct MTCPSettings: Sendable {
    public static let keys = [
        "io", "num_cores", "core_mask", "num_mem_ch", "port", "max_concurrency", "max_num_buffers", "rcvbuf",
        "sndbuf", "tcp_timeout", "tcp_timewait", "stat_print", "multiprocess", "addr", "gateway", "backend",
    ]

    public var numCores = 1
    public var coreMask: UInt64?
    public var memoryChannels = 0
    public var maxConcurrency = 10000
    public var maxNumBuffers = 10000
    public var receiveBuffer = 256 * 1024
    public var sendBuffer = 256 * 1024
    public var tcpTimeout = 30
    public var tcpTimewait = 60
    /// stat_print: set when contexts should print their counters as they end.
    public var statPrint: String?
    /// The stack options every context starts from (interface, address, backend, TCP buffers).
    public var options = StackOptions()

    public init() {}

    /// Reads and checks the file at `path`.
    public init(path: String) throws(OptionsError) {
        try self.init(file: try ConfigFile(path: path, keys: MTCPSettings.keys))
    }

    /// Parses `text` as if read from `path`.
    public init(text: String, path: String) throws(OptionsError) {
        try self.init(file: try ConfigFile(text: text, path: path, keys: MTCPSettings.keys))
    }

    init(file: ConfigFile) throws(OptionsError) {
        var io: StackOptions.Backend?
        var backend: StackOptions.Backend?
        for setting in file.settings {
            do {
                try apply(setting, io: &io, backend: &backend)
            } catch {
                throw OptionsError("\(file.path):\(setting.line): \(setting.key) = \(setting.value): \(error)")
            }
        }
        options.backend = backend ?? io ?? .afpacket
        options.configPath = file.path
        guard !options.interface.isEmpty else { throw OptionsError("\(file.path): no port (the interface) given") }
        guard options.hasAddress else { throw OptionsError("\(file.path): no addr (A/N) given") }
        syncTCP()
    }

    mutating func apply(
        _ setting: ConfigFile.Setting, io: inout StackOptions.Backend?, backend: inout StackOptions.Backend?
    ) throws(OptionsError) {
        let value = setting.value
        switch setting.key {
        case "io":
            io = try MTCPSettings.backend(value, mtcpNames: true)
        case "backend":
            backend = try MTCPSettings.backend(value, mtcpNames: false)
        case "num_cores":
            numCores = try MTCPSettings.integer(value, in: 1...64)
        case "core_mask":
            let digits = value.hasPrefix("0x") || value.hasPrefix("0X") ? String(value.dropFirst(2)) : value
            guard let mask = UInt64(digits, radix: 16), mask != 0 else {
                throw OptionsError("expected a non-zero hex mask")
            }
            coreMask = mask
        case "num_mem_ch":
            memoryChannels = try MTCPSettings.integer(value, in: 0...64)
        case "port":
            let names = value.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard names.count == 1 else { throw OptionsError("one interface is supported, not \(names.count)") }
            options.interface = String(names[0])
        case "max_concurrency":
            maxConcurrency = try MTCPSettings.integer(value, in: 16...1_000_000)
        case "max_num_buffers":
            maxNumBuffers = try MTCPSettings.integer(value, in: 1...10_000_000)
        case "rcvbuf":
            receiveBuffer = try MTCPSettings.integer(value, in: 2048...(64 << 20))
        case "sndbuf":
            sendBuffer = try MTCPSettings.integer(value, in: 2048...(64 << 20))
        case "tcp_timeout":
            tcpTimeout = try MTCPSettings.integer(value, in: -1...86400)
        case "tcp_timewait":
            tcpTimewait = try MTCPSettings.integer(value, in: 0...3600)
        case "stat_print":
            statPrint = value
        case "multiprocess":
            break
        case "addr":
            try options.apply(key: "MTCP_ADDR", value: value)
        case "gateway":
            try options.apply(key: "MTCP_GATEWAY", value: value)
        default:
            throw OptionsError("unknown key")
        }
    }

    /// Copies the TCP settings into the stack options (after a change by mtcp_setconf too).
    public mutating func syncTCP() {
        options.tcp.receiveBufferSize = receiveBuffer
        options.tcp.sendBufferSize = sendBuffer
        options.tcp.timeWaitDuration = .seconds(UInt64(tcpTimewait))
        options.cores = numCores
    }

    static func backend(_ value: String, mtcpNames: Bool) throws(OptionsError) -> StackOptions.Backend {
        if let backend = StackOptions.Backend(rawValue: value) { return backend }
        if mtcpNames && ["psio", "netmap", "onvm"].contains(value) {
            throw OptionsError("mTCP's \(value) I/O is not available here (afpacket, tap, dpdk)")
        }
        throw OptionsError("unknown backend (afpacket, tap, dpdk)")
    }

    static func integer(_ value: String, in range: ClosedRange<Int>) throws(OptionsError) -> Int {
        guard let n = Int(value), range.contains(n) else {
            throw OptionsError("expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }
}
