import CDPDK
import Glibc

/// The packet sockets a net_af_packet device opens for its queues, found by comparing this
/// process's packet sockets on the device's interface before and after the device is probed.
///
/// Each queue is a packet socket with a receive ring, and poll(2) on it says when the ring has
/// frames, so a stack on such a queue can sleep until frames come instead of polling. DPDK does
/// not expose the socket, but the driver opens one per queue pair in order, and nothing else
/// in the process opens packet sockets on that interface meanwhile.
struct PacketSocketCensus {
    let interfaceIndex: Int32
    let before: [Int32]

    /// Counts the sockets on the kernel interface under `device` (its `iface=`); nil when the
    /// device has none (not a --vdev, or not an interface of this namespace).
    init?(device: String, ealArguments: [String]) {
        guard let interface = DPDKChildPort.kernelInterface(of: device, in: ealArguments) else { return nil }
        let index = if_nametoindex(interface)
        guard index > 0 else { return nil }
        interfaceIndex = Int32(index)
        before = Self.sockets(interfaceIndex)
    }

    /// The sockets opened since, ascending: queue i's is the i-th.
    func added() -> [Int32] {
        Self.sockets(interfaceIndex).filter { !before.contains($0) }
    }

    static func sockets(_ interfaceIndex: Int32) -> [Int32] {
        var fds = [Int32](repeating: -1, count: 256)
        let count = mtcp_dpdk_packet_sockets(interfaceIndex, &fds, Int32(fds.count))
        guard count > 0 else { return [] }
        return Array(fds.prefix(Int(min(count, Int32(fds.count)))))
    }
}
