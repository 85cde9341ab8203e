extension AFPacketRing {
    /// How frames are spread over a fanout group's members.
    public enum FanoutSteering: String, Sendable, Hashable {
        case flowHash
        case portSum
    }

    /// TPACKET_V3 blocks or TPACKET_V2 frames on receive.
    public enum ReceiveMode: String, Sendable, Hashable {
        case blocks
        case frames
    }

    /// Ring sizes and switches for an `AFPacketRing`.
    public struct Configuration: Sendable, Hashable {
        /// Bytes per TPACKET_V3 receive block (a power of two, at least 64 KiB): large enough
        /// for a 64 KiB GSO frame the kernel peer may hand over.
        public var blockSize = 1 << 20
        /// Receive blocks in the ring.
        public var blockCount = 16
        /// Milliseconds after which the kernel hands over a partly filled block, so a
        /// lone frame is not held back.
        public var retireTimeoutMilliseconds = 1
        /// How the receive ring hands frames over: `.blocks` (TPACKET_V3, the kernel wakes the
        /// reader once per retired block: fewest wake-ups, up to the retire timeout of added
        /// latency) or `.frames` (TPACKET_V2, every frame is visible and wakes the reader at
        /// once: the choice for request/response traffic). Frames larger than the V2 frame
        /// slot (MTU-sized) are counted as receive drops.
        public var receiveMode = ReceiveMode.frames
        /// How a fanout group spreads frames over its members: the kernel's flow hash, or the
        /// sum of the TCP ports modulo the member count (`.portSum`), which the stack can
        /// steer: it picks source ports whose replies come back to the member that opened
        /// the connection. Members join in order (the first is member 0).
        public var fanoutSteering = FanoutSteering.flowHash
        /// Frame slots in a `.frames` receive ring.
        public var receiveFrameCount = 4096
        /// Frames in the transmit ring (rounded up to whole blocks).
        public var transmitFrameCount = 1024
        /// Sends skip the interface's qdisc (PACKET_QDISC_BYPASS): faster, but no tc shaping.
        public var qdiscBypass = true
        /// Finishes TCP/UDP checksums of frames marked TP_STATUS_CSUMNOTREADY before
        /// handing them over.
        public var completeChecksums = true

        /// The defaults: per-frame receive (4096 slots), 1024 transmit frames.
        public init() {}

        /// Throws `.invalidConfiguration` when the kernel would refuse these sizes.
        func validate() throws(PacketIOError) {
            guard blockSize >= 1 << 16, blockSize & (blockSize - 1) == 0, blockSize <= 1 << 30 else {
                throw .invalidConfiguration("blockSize must be a power of two from 64 KiB to 1 GiB")
            }
            guard blockCount >= 1, blockCount <= 1 << 16 else {
                throw .invalidConfiguration("blockCount must be 1...65536")
            }
            guard retireTimeoutMilliseconds >= 1, retireTimeoutMilliseconds <= 1000 else {
                throw .invalidConfiguration("retireTimeoutMilliseconds must be 1...1000")
            }
            guard receiveFrameCount >= 16, receiveFrameCount <= 1 << 20 else {
                throw .invalidConfiguration("receiveFrameCount must be 16...1048576")
            }
            guard transmitFrameCount >= 1, transmitFrameCount <= 1 << 20 else {
                throw .invalidConfiguration("transmitFrameCount must be 1...1048576")
            }
        }
    }
}
