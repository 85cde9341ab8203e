import CShim

extension AFPacketRing {
    /// The data area of the next free TX frame; when the ring is full, kicks the kernel once
    /// (it may drain synchronously) before giving up.
    public func nextTransmitBuffer() -> UnsafeMutableRawBufferPointer? {
        let frame = txRing + txHead * txFrameSize
        if !frameIsFree(frame) {
            if txNeedsKick { flush() }
            guard frameIsFree(frame) else {
                counters.transmitRingFull += 1
                return nil
            }
        }
        return UnsafeMutableRawBufferPointer(start: frame + txDataOffset, count: txFrameSize - txDataOffset)
    }

    /// Marks the frame TP_STATUS_SEND_REQUEST; it leaves at the next `flush`.
    public func commitTransmit(length: Int) {
        let frame = txRing + txHead * txFrameSize
        guard length > 0, length <= txFrameSize - txDataOffset, frameIsFree(frame) else {
            counters.transmitErrors += 1
            return
        }
        mtcp_shim_v2_frame_send_request(frame, UInt32(length))
        txHead = txHead + 1 == txFrameCount ? 0 : txHead + 1
        txNeedsKick = true
        counters.framesSent += 1
        counters.bytesSent += length
    }

    /// One `send(fd, NULL, 0, MSG_DONTWAIT)` for every frame committed since the last kick.
    public func flush() {
        guard txNeedsKick else { return }
        if mtcp_shim_packet_kick(txSocket) < 0 {
            let code = mtcp_shim_errno()
            // Busy device or socket buffer: the frames stay queued for the next kick.
            if code == EAGAIN || code == ENOBUFS || code == EINTR { return }
            counters.transmitErrors += 1
        }
        txNeedsKick = false
    }

    /// True when the kernel has finished with the frame; a frame it rejected
    /// (TP_STATUS_WRONG_FORMAT) is counted as an error and reclaimed.
    @inline(__always)
    func frameIsFree(_ frame: UnsafeMutableRawPointer) -> Bool {
        let status = mtcp_shim_v2_frame_status(frame)
        if status == UInt32(TP_STATUS_AVAILABLE) { return true }
        if status & UInt32(TP_STATUS_WRONG_FORMAT) != 0 {
            counters.transmitErrors += 1
            mtcp_shim_v2_frame_set_status(frame, UInt32(TP_STATUS_AVAILABLE))
            return true
        }
        return false
    }
}
