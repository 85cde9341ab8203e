import Glibc
import PacketIO
import PacketIODPDK

/// The dpdk backend from the stack options: the EAL arguments of MTCP_DPDK_ARGS, the port
/// named by --iface (a DPDK device name such as net_af_packet0, a PCI address, or a port
/// number), one queue pair per core.
///
/// DPDK is initialized once per process; only the process that opened the port may use it (a
/// forked child gets a copy of the mappings but not the EAL's threads, and must not poll the
/// queues: it may make a port of its own, `DPDKChildPort`).
public enum DPDKBackend {
    /// The DPDK settings the options stand for.
    public static func configuration(_ options: StackOptions) -> DPDKConfiguration {
        var configuration = DPDKConfiguration()
        configuration.arguments = options.dpdkArguments
        configuration.port = options.interface
        configuration.queues = options.cores
        return configuration
    }

    /// Initializes the EAL (first call in the process) and opens and starts the port; its
    /// `queues` are the instances' PacketIO. Logs a summary at --log info.
    public static func open(_ options: StackOptions, programName: String = "mtcp") throws(OptionsError) -> DPDKPort {
        let port: DPDKPort
        do {
            port = try DPDKPort(configuration: configuration(options), programName: programName)
        } catch {
            throw OptionsError("cannot open DPDK port \(options.interface): \(error)")
        }
        if options.logLevel >= .info {
            fputs("mtcp: \(port.summary)\n", stderr)
        }
        return port
    }
}
