import CDPDK
import Glibc
import PacketIO
import Synchronization

/// The process's DPDK environment (EAL). It can be initialized once per process. A forked
/// child inherits a copy of it (with --no-huge its memory is private copy-on-write) but not its
/// threads: it must not touch any port of its parent, and may hot-plug a port of its own
/// (`DPDKChildPort`).
public enum DPDKEnvironment {
    static let state = Mutex<[String]?>(nil)

    /// True when this build has DPDK (libdpdk-dev was there when it was built).
    public static var isAvailable: Bool { mtcp_dpdk_available() != 0 }

    /// The arguments rte_eal_init ran with in this process (or in the parent it was forked
    /// from), nil before.
    public static var initializedArguments: [String]? { state.withLock { $0 } }

    /// Runs rte_eal_init with `arguments` (argv[0] first) the first time; later calls with
    /// the same arguments do nothing, with other arguments they fail.
    public static func initialize(arguments: [String]) throws(PacketIOError) {
        let result: PacketIOError? = state.withLock { initialized in
            if let initialized {
                return initialized == arguments
                    ? nil
                    : .invalidConfiguration(
                        "DPDK is already initialized with other arguments (\(initialized.joined(separator: " ")))")
            }
            guard isAvailable else {
                return .invalidConfiguration("dpdk backend not built: libdpdk-dev was missing when this was built")
            }
            // rte_eal_init may keep pointers into argv (device arguments): the copies live on.
            let argv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: arguments.count + 1)
            for (index, argument) in arguments.enumerated() { argv[index] = strdup(argument) }
            argv[arguments.count] = nil
            let code = mtcp_dpdk_eal_init(Int32(arguments.count), argv)
            guard code == 0 else {
                return .invalidConfiguration(
                    "rte_eal_init(\(arguments.dropFirst().joined(separator: " "))) failed: \(errorText(code))")
            }
            initialized = arguments
            return nil
        }
        if let result { throw result }
    }

    /// Releases the EAL's resources (after every port is closed).
    public static func cleanup() {
        state.withLock { initialized in
            guard initialized != nil else { return }
            _ = mtcp_dpdk_eal_cleanup()
        }
    }

    static func errorText(_ code: Int32) -> String {
        "\(String(cString: mtcp_dpdk_strerror(code))) (\(code))"
    }
}
