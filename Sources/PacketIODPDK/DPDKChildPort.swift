import CDPDK
import PacketIO

/// A forked child's own port: a second instance of the virtual device its ancestor's port runs
/// on, hot-plugged into the EAL the child inherited.
///
/// A child must never touch its parent's port (the packet sockets and rings behind it are the
/// parent's too, and the EAL's threads did not survive fork). Right after fork, while it may
/// still have the privilege for packet sockets, it asks the vdev bus for a new device named
/// after the configured one's driver with a suffix of its own ("net_af_packet_c4242"; the bus
/// picks the driver whose name is a prefix) and the same device arguments, and configures and
/// starts it (starting sets the interface's flags, which also takes the privilege). The EAL is
/// not initialized again.
///
/// Only drivers that can run twice on one interface qualify: net_af_packet opens packet
/// sockets of its own (in a fanout group keyed by the pid, so each instance sees every frame;
/// the shared port claims decide which process answers which flow). net_tap would create a
/// second kernel tap device, and a PCI device has one owner.
///
/// The EAL's memory must be private to the process, so that fork gives the child a
/// copy-on-write copy of the heap: the heap's bookkeeping is per process, and a child
/// allocating in memory it shares with its parent would hand out what the parent uses. That
/// means --no-huge without the "nohuge" memory file DPDK makes when it can (the preload library
/// has DPDK fall back to an anonymous mapping); hugepages are always shared.
public enum DPDKChildPort {
    /// The device a child hot-plugs: its name and the driver's arguments.
    public struct Plan: Sendable, Equatable {
        public var name: String
        public var arguments: String

        public init(name: String, arguments: String) {
            self.name = name
            self.arguments = arguments
        }
    }

    /// Drivers (vdev names or aliases) that can be instantiated again on the same interface.
    static let repeatableDrivers = ["net_af_packet", "eth_af_packet"]

    /// Mbufs in a child port's pool. net_af_packet copies frames between its kernel ring and
    /// mbufs, so a queue holds only a burst or two at a time; the default pool (sized for NIC
    /// rings, about 9 MB) would be taken again by every generation of children from the 64 MB
    /// the EAL has with --no-huge.
    public static let mbufs = 1023

    /// The device a child with pid `pid` creates for the port named `device` (as probed, e.g.
    /// "net_af_packet0"), from the EAL arguments its ancestor initialized with; the error says
    /// why the port cannot have a child instance.
    public static func plan(ealArguments: [String], device: String, pid: Int32) throws(PacketIOError) -> Plan {
        guard ealArguments.contains("--no-huge") else {
            throw .invalidConfiguration(
                "the EAL runs on hugepages, which stay shared with the parent after fork (a child's port would"
                    + " allocate over the parent's heap): run with --no-huge")
        }
        guard let value = virtualDevice(device, in: ealArguments) else {
            throw .invalidConfiguration(
                "port \(device) is not a virtual device of the EAL arguments (a PCI device has one owner)")
        }
        guard let driver = repeatableDrivers.first(where: { device.hasPrefix($0) }) else {
            throw .invalidConfiguration(
                "the driver of \(device) cannot run a second instance on one interface (only net_af_packet can;"
                    + " net_tap would create another kernel tap device)")
        }
        // One queue pair: a child runs one stack instance, and the sockets of further pairs
        // would take their share of the frames (a fanout group) unread.
        let arguments = value.split(separator: ",", omittingEmptySubsequences: true).dropFirst()
            .filter { !$0.hasPrefix("qpairs=") }
        return Plan(name: "\(driver)_c\(pid)", arguments: arguments.joined(separator: ","))
    }

    /// The `--vdev` value ("net_af_packet0,iface=veth0") that made `device`, nil when no
    /// --vdev names it.
    public static func virtualDevice(_ device: String, in ealArguments: [String]) -> String? {
        var found: String?
        var index = ealArguments.startIndex
        while index < ealArguments.endIndex {
            let argument = ealArguments[index]
            var given: String?
            if argument.hasPrefix("--vdev=") {
                given = String(argument.dropFirst("--vdev=".count))
            } else if argument == "--vdev", index + 1 < ealArguments.endIndex {
                index += 1
                given = ealArguments[index]
            }
            if let given,
                given.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false).first == device[...]
            {
                found = given
            }
            index += 1
        }
        return found
    }

    /// The kernel interface under a virtual device (its `iface=` argument), nil for others.
    public static func kernelInterface(of device: String, in ealArguments: [String]) -> String? {
        guard let value = virtualDevice(device, in: ealArguments) else { return nil }
        let iface = value.split(separator: ",").dropFirst().last { $0.hasPrefix("iface=") }
        return iface.map { String($0.dropFirst("iface=".count)) }
    }

    /// Hot-plugs the planned device and configures and starts it (the child, right after
    /// fork), with `configuration`'s queue set-up: one queue, a pool of `mbufs`.
    public static func open(_ plan: Plan, configuration: DPDKConfiguration) throws(PacketIOError) -> DPDKPort {
        guard let arguments = DPDKEnvironment.initializedArguments else {
            throw .invalidConfiguration("DPDK is not initialized in this process")
        }
        guard mtcp_dpdk_memory_is_private() != 0 else {
            throw .invalidConfiguration(
                "the EAL's memory is shared with the parent (hugepages or a memory file): a child's port would"
                    + " allocate over the parent's heap")
        }
        let census = PacketSocketCensus(
            device: plan.name, ealArguments: arguments + ["--vdev=\(plan.name),\(plan.arguments)"])
        let result = mtcp_dpdk_vdev_create(plan.name, plan.arguments)
        guard result == 0 else {
            throw .invalidConfiguration(
                "rte_vdev_init(\(plan.name), \(plan.arguments)) failed: \(DPDKEnvironment.errorText(result))")
        }
        var configuration = configuration
        configuration.port = plan.name
        configuration.queues = 1
        configuration.mbufsPerQueue = min(configuration.mbufsPerQueue, mbufs)
        return try DPDKPort(
            probed: DPDKPort.find(plan.name), configuration: configuration, waitDescriptors: census?.added() ?? [])
    }
}
