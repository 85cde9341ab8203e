import Wire

/// Batched frame I/O for one queue of one interface: the boundary between the stack and a
/// NIC, a veth, a TAP device or an in-memory link.
///
/// The stack is generic over its `PacketIO`, so every call is statically dispatched. One
/// owner (a per-core stack instance) drives each queue; implementations need no locks.
public protocol PacketIO: AnyObject {
    /// The hardware address frames are sent from.
    var macAddress: MACAddress { get }
    /// Largest IP packet (Ethernet payload) the link carries.
    var mtu: Int { get }
    /// A file descriptor that becomes readable when frames wait, to sleep on when idle;
    /// -1 when the backend has none (in-memory links are polled).
    var waitDescriptor: Int32 { get }
    var statistics: PacketIOStatistics { get }

    /// Hands up to `limit` received frames to `body`, oldest first, and returns how many.
    /// A frame's bytes are valid only during its call.
    func receive(limit: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> Int

    /// A buffer for the next frame to send (at least `mtu + 14` bytes), or nil when the
    /// transmit ring is full. The frame is queued by `commitTransmit`.
    func nextTransmitBuffer() -> UnsafeMutableRawBufferPointer?

    /// Queues the frame written into the buffer from `nextTransmitBuffer` with this length.
    func commitTransmit(length: Int)

    /// Makes queued frames leave (one kick for the whole burst).
    func flush()

    /// When the backend itself must be called again although no frame arrives (e.g. frames an
    /// impairment layer holds back), in CLOCK_MONOTONIC nanoseconds; nil when never.
    var nextReleaseTime: UInt64? { get }

    /// True when the port fills in the IPv4 and TCP checksums of frames it sends: the stack
    /// then leaves the TCP checksum to it.
    var transmitChecksumOffload: Bool { get }

    /// During `receive`'s call for a frame: true when that frame's TCP/UDP checksum needs no
    /// check here (the kernel or NIC verified it, or a kernel peer on this host left it to
    /// "hardware": it never crossed a wire). The stack then skips its own.
    var receivedChecksumVerified: Bool { get }
}

extension PacketIO {
    public var nextReleaseTime: UInt64? { nil }
    public var transmitChecksumOffload: Bool { false }
    public var receivedChecksumVerified: Bool { false }
}

/// Counters every backend keeps.
public struct PacketIOStatistics: Hashable, Sendable {
    public var framesReceived = 0
    public var bytesReceived = 0
    public var framesSent = 0
    public var bytesSent = 0
    /// Frames the backend had to drop on receive (ring overrun, kernel drops).
    public var receiveDrops = 0
    /// Frames larger than a receive slot (GSO/GRO super-frames from a kernel peer or the
    /// interface's GRO) that were taken whole all the same (AF_PACKET's copy path).
    public var largeFramesReceived = 0
    /// Sends refused because the transmit ring was full.
    public var transmitRingFull = 0
    /// Frames that failed to go out (an error from the kernel or device).
    public var transmitErrors = 0
    public init() {}
}
