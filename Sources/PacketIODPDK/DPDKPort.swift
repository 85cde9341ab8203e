import CDPDK
import PacketIO
import Wire

/// One DPDK port (ethdev) set up with a queue pair per stack instance: `queues[i]` is the
/// `PacketIO` of instance i.
///
/// With several queues and a port that hashes (RSS), the port is programmed with the
/// symmetric Toeplitz key of `SymmetricRSSKey`, so both directions of a flow land on one
/// queue, and its redirection table spreads over the queues. Ports without RSS may still
/// offer several queues and spread flows their own way: net_af_packet with `qpairs=N` joins
/// its sockets in a kernel PACKET_FANOUT hash group, net_tap lets the kernel pick a tun queue
/// (it accepts an RSS key but applies RSS only to rte_flow rules); `distribution` tells which.
public final class DPDKPort {
    /// How received flows are spread over the queues.
    public enum Distribution: Sendable, Equatable {
        /// One queue: nothing to spread.
        case single
        /// RSS with the symmetric Toeplitz key on these RTE_ETH_RSS_* types.
        case symmetricRSS(types: UInt64)
        /// Several queues on a port without RSS: the driver spreads flows by its own hash.
        case driver
    }

    public let portID: UInt16
    /// The device name, e.g. "net_af_packet0", "0000:01:00.0".
    public let name: String
    /// The driver, e.g. "net_af_packet", "net_tap", "net_ice".
    public let driver: String
    public let macAddress: MACAddress
    public let mtu: Int
    public let distribution: Distribution
    /// True when frames leave with IPv4 and TCP checksums for the port to fill in.
    public let transmitChecksumOffload: Bool
    /// The redirection table update's result when RSS is on (0, or a negative errno such as
    /// -ENOTSUP for ports that keep their own table).
    public let redirectionTableResult: Int32
    public let queues: [DPDKQueue]
    let handle: DPDKPortHandle

    /// Initializes the EAL (first time in the process) and opens the configured port.
    public convenience init(configuration: DPDKConfiguration, programName: String = "mtcp") throws(PacketIOError) {
        guard (1...64).contains(configuration.queues) else {
            throw .invalidConfiguration("DPDK queue count must be 1-64, not \(configuration.queues)")
        }
        let arguments = configuration.ealArguments(programName: programName)
        let census = PacketSocketCensus(device: configuration.port, ealArguments: arguments)
        try DPDKEnvironment.initialize(arguments: arguments)
        try self.init(
            probed: Self.find(configuration.port), configuration: configuration,
            waitDescriptors: census?.added() ?? [])
    }

    /// Configures and starts `port`, already probed by the EAL; `configuration.port` names it
    /// in messages and its EAL arguments are not used. `waitDescriptors`: the packet socket of
    /// each queue (net_af_packet), else empty.
    init(probed port: UInt16, configuration: DPDKConfiguration, waitDescriptors: [Int32]) throws(PacketIOError) {
        guard (1...64).contains(configuration.queues) else {
            throw .invalidConfiguration("DPDK queue count must be 1-64, not \(configuration.queues)")
        }
        var info = mtcp_dpdk_port_info()
        let infoResult = mtcp_dpdk_port_info(port, &info)
        guard infoResult == 0 else {
            throw .invalidConfiguration(
                "DPDK port \(configuration.port): no device information (\(DPDKEnvironment.errorText(infoResult)))")
        }
        let driver = withUnsafeBytes(of: info.driver) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        let queues = configuration.queues
        guard queues <= Int(info.max_rx_queues), queues <= Int(info.max_tx_queues) else {
            let hint = driver == "net_af_packet" ? " (add qpairs=\(queues) to its --vdev)" : ""
            throw .invalidConfiguration(
                "DPDK port \(configuration.port) (\(driver)) has \(min(info.max_rx_queues, info.max_tx_queues))"
                    + " queue pairs, \(queues) wanted\(hint)")
        }
        let mtu = Int(info.mtu)
        // Room for a full frame with a VLAN tag, at least the usual 2 KiB.
        let frameSize = max(2048, (mtu + 18 + 63) & ~63)
        let key = SymmetricRSSKey.bytes(length: info.hash_key_size > 0 ? Int(info.hash_key_size) : 40)
        var state = mtcp_dpdk_port_state()
        var failedStep: UnsafePointer<CChar>? = nil
        let startResult = key.withUnsafeBufferPointer { keyBytes in
            var config = mtcp_dpdk_port_config()
            config.queues = UInt16(queues)
            config.rx_descriptors = UInt16(clamping: configuration.receiveDescriptors)
            config.tx_descriptors = UInt16(clamping: configuration.transmitDescriptors)
            config.mbufs_per_queue = UInt32(clamping: configuration.mbufsPerQueue)
            config.frame_size = UInt32(frameSize)
            config.rss_key = configuration.rss ? keyBytes.baseAddress : nil
            config.rss_key_length = UInt8(keyBytes.count)
            config.rss_types = MTCP_DPDK_RSS_IPV4_TYPES
            config.tx_checksum = configuration.checksumOffload ? 1 : 0
            return mtcp_dpdk_port_start(port, configuration.port, &config, &state, &failedStep)
        }
        guard startResult == 0 else {
            let step = failedStep.map { String(cString: $0) } ?? "port set-up"
            throw .invalidConfiguration(
                "DPDK port \(configuration.port) (\(driver)): \(step) failed: \(DPDKEnvironment.errorText(startResult))"
            )
        }
        let handle = DPDKPortHandle(port: port, state: state, queues: UInt16(queues))
        let mac = MACAddress(info.mac.0, info.mac.1, info.mac.2, info.mac.3, info.mac.4, info.mac.5)
        let offload = state.tx_checksum != 0
        var made: [DPDKQueue] = []
        for index in 0..<queues {
            let pool = withUnsafeBytes(of: state.pools) {
                $0.load(fromByteOffset: index * 8, as: UnsafeMutableRawPointer.self)
            }
            made.append(
                DPDKQueue(
                    handle: handle, queue: UInt16(index), pool: pool, macAddress: mac, mtu: mtu,
                    maxFrame: frameSize, checksumOffload: offload,
                    waitDescriptor: waitDescriptors.count >= queues ? waitDescriptors[index] : -1))
        }
        self.portID = port
        self.name = Self.deviceName(port) ?? configuration.port
        self.driver = driver
        self.macAddress = mac
        self.mtu = mtu
        // A port that takes an RSS key but has no redirection table (net_tap) does not spread
        // by it: its queues are the driver's own.
        let hashes = state.rss != 0 && info.reta_size > 0
        self.distribution = queues == 1 ? .single : hashes ? .symmetricRSS(types: state.rss_types) : .driver
        self.transmitChecksumOffload = offload
        self.redirectionTableResult = state.reta_result
        self.queues = made
        self.handle = handle
    }

    /// The port named by a device name or a number.
    static func find(_ name: String) throws(PacketIOError) -> UInt16 {
        let count = mtcp_dpdk_port_count()
        if let number = UInt16(name) {
            guard number < count else {
                throw .invalidConfiguration("DPDK port \(number) does not exist (\(count) ports probed)")
            }
            return number
        }
        var port: UInt16 = 0
        guard mtcp_dpdk_port_by_name(name, &port) == 0 else {
            throw .invalidConfiguration(
                "no DPDK port named \(name) (\(count) ports probed; give a --vdev or -a for it in the EAL arguments)")
        }
        return port
    }

    /// The device name of a probed port.
    static func deviceName(_ port: UInt16) -> String? {
        var buffer = [CChar](repeating: 0, count: 64)
        guard mtcp_dpdk_port_name(port, &buffer, UInt32(buffer.count)) == 0 else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A one-line description for logs.
    public var summary: String {
        let spread: String
        switch distribution {
        case .single: spread = "1 queue"
        case .symmetricRSS(let types):
            spread = "\(queues.count) queues, symmetric RSS (types 0x\(String(types, radix: 16)))"
        case .driver: spread = "\(queues.count) queues spread by the driver (no RSS)"
        }
        return "dpdk port \(portID) (\(name)) \(driver) mac \(macAddress) mtu \(mtu), \(spread), checksums "
            + (transmitChecksumOffload ? "offloaded" : "in software")
            + (queues.allSatisfy { $0.waitDescriptor >= 0 }
                ? ", idle queues sleep on their packet sockets" : ", polled")
    }
}

/// Owns the started port: stops and closes it, and frees its pools, when the port object and
/// every queue are gone.
final class DPDKPortHandle {
    let port: UInt16
    var state: mtcp_dpdk_port_state
    let queues: UInt16

    init(port: UInt16, state: mtcp_dpdk_port_state, queues: UInt16) {
        self.port = port
        self.state = state
        self.queues = queues
    }

    deinit { mtcp_dpdk_port_close(port, &state, queues) }

    /// The port's drop counters: receive (missed, errors, no mbuf) and transmit errors.
    func drops() -> (receive: UInt64, transmit: UInt64) {
        var receive: UInt64 = 0
        var transmit: UInt64 = 0
        _ = mtcp_dpdk_port_drops(port, &receive, &transmit)
        return (receive, transmit)
    }
}
