import CShim
import Glibc
import Wire

/// Frame I/O on one Linux interface through AF_PACKET memory-mapped rings.
///
/// Receive, in one of two modes: a TPACKET_V2 ring of MTU-sized frame slots, each visible
/// (and waking a sleeping reader) as soon as the kernel has copied it — the default, for
/// request/response latency; or a TPACKET_V3 ring of large blocks the kernel fills and
/// retires (after the configured timeout at the latest), whose frames `receive` walks before
/// handing the block back — fewer wake-ups for bulk traffic, up to the timeout of latency. Transmit: a second socket with a TPACKET_V2
/// ring, bound to protocol 0 so it receives nothing. A separate socket because the packet
/// version is per socket, V3 gives no benefit for TX (its TX ring is fixed frames like V2),
/// and keeping TX off the RX socket lets it bypass the qdisc without affecting receive.
/// `flush` kicks the ring once with `send(fd, NULL, 0, MSG_DONTWAIT)`.
///
/// Frames this host sends (PACKET_OUTGOING) are not delivered, so the stack never sees its
/// own frames. With a `fanoutGroup`, instances opened on the same interface share its
/// traffic by flow hash (PACKET_FANOUT_HASH, defragmenting first), like RSS queues.
///
/// On a veth the kernel peer hands over frames with TCP/UDP checksums left to "hardware"
/// (TP_STATUS_CSUMNOTREADY) and GSO frames above the MTU (a NIC's GRO makes such frames too).
/// The ring completes IPv4 TCP/UDP checksums in place (counted in `checksumsCompleted`) and
/// tells the stack it need not verify them (`receivedChecksumVerified`); V3 blocks hold 64 KiB
/// frames, and a V2 slot too small for one is backed by the socket's queue, where the kernel
/// puts the whole frame (PACKET_COPY_THRESH, `largeFramesReceived`).
public final class AFPacketRing: PacketIO {
    /// The interface's hardware address.
    public let macAddress: MACAddress
    /// The interface's MTU.
    public let mtu: Int
    /// The interface name.
    public let interface: String
    /// The kernel's index for the interface.
    public let interfaceIndex: Int32
    /// The receive socket: readable (POLLIN) when a frame (or a block) is ready.
    public var waitDescriptor: Int32 { rxSocket }
    /// Counters, with the kernel's receive drops (PACKET_STATISTICS) folded in when read.
    public var statistics: PacketIOStatistics {
        refreshKernelDrops()
        return counters
    }
    /// Frames whose L4 checksum was completed in software (TP_STATUS_CSUMNOTREADY).
    public internal(set) var checksumsCompleted = 0
    /// The frame being delivered came with TP_STATUS_CSUM_VALID or TP_STATUS_CSUMNOTREADY.
    public internal(set) var receivedChecksumVerified = false
    /// Frames seen on receive that this host sent, skipped.
    public internal(set) var outgoingSkipped = 0

    let rxSocket: Int32
    let txSocket: Int32
    let rxRing: UnsafeMutableRawPointer
    let blockSize: Int
    let blockCount: Int
    let receiveMode: ReceiveMode
    let rxLength: Int
    /// `.frames` mode: slot size and count, and the next slot to look at.
    let rxFrameSize: Int
    let rxFrameCount: Int
    var rxFrameIndex = 0
    let txRing: UnsafeMutableRawPointer
    let txFrameSize: Int
    let txFrameCount: Int
    let txDataOffset: Int
    let completeChecksums: Bool
    /// Where a frame larger than a receive slot is read whole (allocated once).
    let largeFrame = UnsafeMutableRawBufferPointer.allocate(byteCount: AFPacketRing.largeFrameCapacity, alignment: 64)
    /// The largest frame taken whole (64 KiB of IP and its link header, with room to spare),
    /// and the socket queue that holds such frames until read.
    static let largeFrameCapacity = 1 << 17
    static let largeFrameQueueBytes = 8 << 20

    /// The block being read (or to read next), and where its next frame is.
    var blockIndex = 0
    var blockHeld = false
    var framesLeftInBlock = 0
    var nextFrame: UnsafeMutableRawPointer
    /// The next transmit frame to fill, and whether committed frames await a kick.
    var txHead = 0
    var txNeedsKick = false
    var counters = PacketIOStatistics()

    /// Opens both rings on `interface`, joining fanout group `fanoutGroup` when given.
    /// `preopened` are two packet sockets made earlier with protocol 0 (`openSockets()`), for a
    /// process that has since dropped the privilege to make them (a forked nginx worker); the
    /// ring takes them over. `steering` is attached to the receive socket before it is bound,
    /// so that it never sees another instance's frames.
    public init(
        interface: String, fanoutGroup: UInt16? = nil, configuration: Configuration = Configuration(),
        preopened: (receive: Int32, transmit: Int32)? = nil, steering: FlowSteering? = nil
    ) throws(PacketIOError) {
        try configuration.validate()
        var sockets = SocketPair()
        defer { sockets.closeUnclaimed() }

        // Protocol 0 until the ring is ready: no frames from other interfaces slip in.
        if let preopened {
            sockets.rx = preopened.receive
            sockets.tx = preopened.transmit
        } else {
            sockets.rx = try Self.check(mtcp_shim_packet_socket(0), "socket(AF_PACKET)")
        }
        let rx = sockets.rx
        try steering?.attach(to: rx)
        let index = try InterfaceQuery.index(socket: rx, interface: interface)
        let mtu = try InterfaceQuery.mtu(socket: rx, interface: interface)
        let mac = try InterfaceQuery.hardwareAddress(socket: rx, interface: interface)

        let rxLength: Int
        var rxFrameSize = 0
        var rxFrameCount = 0
        switch configuration.receiveMode {
        case .blocks:
            rxLength = configuration.blockSize * configuration.blockCount
            try Self.check(
                mtcp_shim_packet_rx_ring_v3(
                    rx, UInt32(configuration.blockSize), UInt32(configuration.blockCount), 2048,
                    UInt32(configuration.retireTimeoutMilliseconds)), "setsockopt(PACKET_RX_RING)")
        case .frames:
            // A slot holds the V2 header, the sockaddr_ll, alignment padding and one frame.
            rxFrameSize = 2048
            while rxFrameSize < mtu + 14 + 128 { rxFrameSize <<= 1 }
            let framesPerBlock = max(1, (1 << 16) / rxFrameSize)
            let blockBytes = framesPerBlock * rxFrameSize
            let blocks = (configuration.receiveFrameCount + framesPerBlock - 1) / framesPerBlock
            rxFrameCount = blocks * framesPerBlock
            rxLength = blockBytes * blocks
            try Self.check(
                mtcp_shim_packet_rx_ring_v2(rx, UInt32(blockBytes), UInt32(blocks), UInt32(rxFrameSize)),
                "setsockopt(PACKET_RX_RING)")
            // A frame larger than a slot (a kernel peer's 64 KiB GSO frame over a veth, or the
            // interface's GRO) also goes whole to the socket's queue (TP_STATUS_COPY in its
            // truncated slot), for `receive` to read there; the queue needs room for a few.
            _ = mtcp_shim_setsockopt_int(rx, SOL_PACKET, PACKET_COPY_THRESH, 1)
            if mtcp_shim_setsockopt_int(rx, SOL_SOCKET, SO_RCVBUFFORCE, Int32(Self.largeFrameQueueBytes)) != 0 {
                _ = mtcp_shim_setsockopt_int(rx, SOL_SOCKET, SO_RCVBUF, Int32(Self.largeFrameQueueBytes))
            }
        }
        // Older kernels lack PACKET_IGNORE_OUTGOING; the per-frame pkttype check covers them.
        _ = mtcp_shim_setsockopt_int(rx, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        guard let rxRing = mtcp_shim_mmap_shared(rx, rxLength, MAP_POPULATE) else {
            throw .system(call: "mmap(rx ring)", errno: mtcp_shim_errno())
        }
        sockets.rxMapping = (rxRing, rxLength)
        try Self.check(mtcp_shim_packet_bind(rx, index, ETH_P_ALL), "bind(rx)")
        // No multicast listener reports are sent: take every group (the stack filters).
        try Self.check(mtcp_shim_packet_all_multicast(rx, index), "setsockopt(PACKET_ADD_MEMBERSHIP)")
        if let group = fanoutGroup {
            switch configuration.fanoutSteering {
            case .flowHash:
                let mode = UInt16(PACKET_FANOUT_HASH) | UInt16(PACKET_FANOUT_FLAG_DEFRAG)
                try Self.check(mtcp_shim_packet_fanout(rx, group, mode), "setsockopt(PACKET_FANOUT)")
            case .portSum:
                try Self.check(mtcp_shim_packet_fanout_port_sum(rx, group), "setsockopt(PACKET_FANOUT cBPF)")
            }
        }

        if sockets.tx < 0 { sockets.tx = try Self.check(mtcp_shim_packet_socket(0), "socket(AF_PACKET)") }
        let tx = sockets.tx
        let dataOffset = Int(mtcp_shim_v2_tx_data_offset())
        var frameSize = 2048
        while frameSize < mtu + 14 + dataOffset { frameSize <<= 1 }
        let txBlockSize = max(frameSize, 1 << 16)
        let framesPerBlock = txBlockSize / frameSize
        let txBlocks = (configuration.transmitFrameCount + framesPerBlock - 1) / framesPerBlock
        let txLength = txBlockSize * txBlocks
        if configuration.qdiscBypass {
            try Self.check(
                mtcp_shim_setsockopt_int(tx, SOL_PACKET, PACKET_QDISC_BYPASS, 1), "setsockopt(PACKET_QDISC_BYPASS)")
        }
        try Self.check(
            mtcp_shim_packet_tx_ring_v2(tx, UInt32(txBlockSize), UInt32(txBlocks), UInt32(frameSize)),
            "setsockopt(PACKET_TX_RING)")
        guard let txRing = mtcp_shim_mmap_shared(tx, txLength, MAP_POPULATE) else {
            throw .system(call: "mmap(tx ring)", errno: mtcp_shim_errno())
        }
        sockets.txMapping = (txRing, txLength)
        try Self.check(mtcp_shim_packet_bind(tx, index, 0), "bind(tx)")

        sockets.claimed = true
        self.interface = interface
        self.interfaceIndex = index
        self.mtu = mtu
        self.macAddress = mac
        self.rxSocket = rx
        self.txSocket = tx
        self.rxRing = rxRing
        self.blockSize = configuration.blockSize
        self.blockCount = configuration.blockCount
        self.receiveMode = configuration.receiveMode
        self.rxLength = rxLength
        self.rxFrameSize = rxFrameSize
        self.rxFrameCount = rxFrameCount
        self.txRing = txRing
        self.txFrameSize = frameSize
        self.txFrameCount = framesPerBlock * txBlocks
        self.txDataOffset = dataOffset
        self.completeChecksums = configuration.completeChecksums
        self.nextFrame = rxRing
    }

    /// Two idle packet sockets (protocol 0, unbound: they receive nothing) for a later `init`
    /// after privileges are gone; nil when this process may not make them.
    public static func openSockets() -> (receive: Int32, transmit: Int32)? {
        let receive = mtcp_shim_packet_socket(0)
        guard receive >= 0 else { return nil }
        let transmit = mtcp_shim_packet_socket(0)
        guard transmit >= 0 else {
            close(receive)
            return nil
        }
        return (receive, transmit)
    }

    deinit {
        largeFrame.deallocate()
        munmap(rxRing, rxLength)
        munmap(txRing, txFrameSize * txFrameCount)
        close(rxSocket)
        close(txSocket)
    }

    /// Adds the kernel's receive drops since the last read (reading resets them).
    func refreshKernelDrops() {
        var packets: UInt32 = 0
        var drops: UInt32 = 0
        if mtcp_shim_packet_statistics_v3(rxSocket, &packets, &drops) == 0 {
            counters.receiveDrops += Int(drops)
        }
    }

    @discardableResult
    static func check(_ result: Int32, _ call: String) throws(PacketIOError) -> Int32 {
        guard result >= 0 else { throw .system(call: call, errno: mtcp_shim_errno()) }
        return result
    }
}

/// Descriptors and mappings opened so far by `AFPacketRing.init`, released if it throws.
private struct SocketPair {
    var rx: Int32 = -1
    var tx: Int32 = -1
    var rxMapping: (UnsafeMutableRawPointer, Int)?
    var txMapping: (UnsafeMutableRawPointer, Int)?
    var claimed = false

    func closeUnclaimed() {
        guard !claimed else { return }
        if let (pointer, length) = rxMapping { munmap(pointer, length) }
        if let (pointer, length) = txMapping { munmap(pointer, length) }
        if rx >= 0 { close(rx) }
        if tx >= 0 { close(tx) }
    }
}
