import Glibc
import Stack
import TCP
import Wire

/// How a program on the stack finds its interface and address: command-line flags first,
/// then the MTCP_* environment variables the preload library also reads.
///
///     --iface IF        MTCP_IFACE     interface the stack owns (no kernel address on it)
///     --addr A/N        MTCP_ADDR      our address and prefix length
///     --gateway G       MTCP_GATEWAY   default gateway
///     --backend B       MTCP_BACKEND   afpacket (default) or tap
///     --cores N         MTCP_CORES     stack instances, one thread each (fanout shares flows)
///     --impair SPEC     MTCP_IMPAIR    seeded impairment in both directions, e.g.
///                                      loss=0.02,dup=0.01,reorder=0.05,corrupt=0.001,delay-us=100,seed=7
///     --impair-tx SPEC  MTCP_IMPAIR_TX only on frames the stack sends
///     --impair-rx SPEC  MTCP_IMPAIR_RX only on frames the stack receives
public struct StackOptions: Sendable {
    public enum Backend: String, Sendable { case afpacket, tap }

    public var interface = ""
    public var address = IPv4Address(0, 0, 0, 0)
    public var prefixLength = 24
    public var gateway: IPv4Address?
    public var backend = Backend.afpacket
    public var cores = 1
    /// Impairment of frames the stack sends and of frames it receives.
    public var impairTransmit: ImpairmentSpec?
    public var impairReceive: ImpairmentSpec?
    public var tcp = TCPConfiguration()

    public static let usage = """
        stack options: --iface IF --addr A/N [--gateway G] [--backend afpacket|tap] [--cores N]
                       [--impair|--impair-tx|--impair-rx loss=P,dup=P,reorder=P,corrupt=P,delay-us=N,seed=N]
                       [--cc reno|cubic]
        (or MTCP_IFACE, MTCP_ADDR, MTCP_GATEWAY, MTCP_BACKEND, MTCP_CORES, MTCP_IMPAIR, MTCP_IMPAIR_TX, MTCP_IMPAIR_RX)
        """

    /// Reads the environment, then removes the stack flags from `arguments` (the rest stays
    /// for the program).
    public static func parse(_ arguments: inout [String]) throws(OptionsError) -> StackOptions {
        var options = StackOptions()
        try options.apply(name: "--iface", value: environment("MTCP_IFACE"))
        try options.apply(name: "--addr", value: environment("MTCP_ADDR"))
        try options.apply(name: "--gateway", value: environment("MTCP_GATEWAY"))
        try options.apply(name: "--backend", value: environment("MTCP_BACKEND"))
        try options.apply(name: "--cores", value: environment("MTCP_CORES"))
        try options.apply(name: "--impair", value: environment("MTCP_IMPAIR"))
        try options.apply(name: "--impair-tx", value: environment("MTCP_IMPAIR_TX"))
        try options.apply(name: "--impair-rx", value: environment("MTCP_IMPAIR_RX"))
        var rest: [String] = []
        var index = 0
        while index < arguments.count {
            let flag = arguments[index]
            if [
                "--iface", "--addr", "--gateway", "--backend", "--cores", "--impair", "--impair-tx", "--impair-rx",
                "--cc",
            ].contains(flag) {
                guard index + 1 < arguments.count else { throw OptionsError("missing value for \(flag)") }
                try options.apply(name: flag, value: arguments[index + 1])
                index += 2
            } else {
                rest.append(flag)
                index += 1
            }
        }
        arguments = rest
        guard !options.interface.isEmpty else { throw OptionsError("no interface: give --iface or MTCP_IFACE") }
        guard options.address != IPv4Address(0, 0, 0, 0) else {
            throw OptionsError("no address: give --addr A/N or MTCP_ADDR")
        }
        return options
    }

    mutating func apply(name: String, value: String?) throws(OptionsError) {
        guard let value, !value.isEmpty else { return }
        switch name {
        case "--iface":
            interface = value
        case "--addr":
            let parts = value.split(separator: "/", maxSplits: 1).map(String.init)
            guard let a = IPv4Address(parts[0]) else { throw OptionsError("bad address \(value)") }
            address = a
            if parts.count == 2 {
                guard let n = Int(parts[1]), (1...32).contains(n) else { throw OptionsError("bad prefix in \(value)") }
                prefixLength = n
            }
        case "--gateway":
            guard let g = IPv4Address(value) else { throw OptionsError("bad gateway \(value)") }
            gateway = g
        case "--backend":
            guard let b = Backend(rawValue: value) else {
                throw OptionsError("backend \(value) is not available here (afpacket, tap)")
            }
            backend = b
        case "--cores":
            guard let n = Int(value), (1...64).contains(n) else { throw OptionsError("bad core count \(value)") }
            cores = n
        case "--impair":
            impairTransmit = try ImpairmentSpec(parsing: value)
            impairReceive = impairTransmit
        case "--impair-tx":
            impairTransmit = try ImpairmentSpec(parsing: value)
        case "--impair-rx":
            impairReceive = try ImpairmentSpec(parsing: value)
        case "--cc":
            guard let a = CongestionAlgorithm(rawValue: value) else { throw OptionsError("unknown --cc \(value)") }
            tcp.congestionAlgorithm = a
        default:
            throw OptionsError("unknown option \(name)")
        }
    }

    public var stackConfiguration: StackConfiguration {
        StackConfiguration(address: address, prefixLength: prefixLength, gateway: gateway, tcp: tcp)
    }
}

/// `--impair` text: comma-separated key=value pairs, the same in both directions.
public struct ImpairmentSpec: Sendable {
    public var loss = 0.0
    public var duplicate = 0.0
    public var reorder = 0.0
    public var corrupt = 0.0
    public var delayMicroseconds: UInt64 = 0
    public var seed: UInt64 = 1

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

func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}
