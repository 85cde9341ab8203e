import Glibc
import PacketIO

/// How a process opens the links of its instances, for every host: the examples' launcher,
/// mTCP's C API and (for TAP and impairment) the preload library, whose AF_PACKET sockets are
/// steered per instance instead (`FlowSteering`).
public enum LinkOpening {
    /// `count` AF_PACKET rings on `interface`. With more than one they form a fanout group of
    /// this process steered by the TCP port sum, joined in order, so that instance i is member
    /// i and picks source ports whose replies come back to it (`ActiveOpenSteering.portSum`).
    public static func afPacketRings(interface: String, count: Int) throws(PacketIOError) -> [AFPacketRing] {
        var configuration = AFPacketRing.Configuration()
        configuration.fanoutSteering = .portSum
        let group = count > 1 ? UInt16(truncatingIfNeeded: getpid()) : nil
        var rings: [AFPacketRing] = []
        for _ in 0..<count {
            rings.append(try AFPacketRing(interface: interface, fanoutGroup: group, configuration: configuration))
        }
        return rings
    }

    /// `count` queues of TAP device `name` (a multi-queue device when more than one).
    public static func tapQueues(name: String, count: Int) throws(PacketIOError) -> [TAPDevice] {
        count > 1 ? try TAPDevice.openQueues(name: name, count: count) : [try TAPDevice(name: name)]
    }
}
