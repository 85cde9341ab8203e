import CShim

extension AFPacketRing {
    /// Walks retired blocks frame by frame; a block goes back to the kernel as soon as its
    /// last frame has been handed over (at the latest at the end of the burst).
    public func receive(limit: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> Int {
        var delivered = 0
        while delivered < limit {
            if framesLeftInBlock == 0 {
                if blockHeld { releaseBlock() }
                let block = rxRing + blockIndex * blockSize
                guard mtcp_shim_v3_block_status(block) & UInt32(TP_STATUS_USER) != 0 else { break }
                blockHeld = true
                framesLeftInBlock = Int(mtcp_shim_v3_block_packets(block))
                nextFrame = block + Int(mtcp_shim_v3_block_first_offset(block))
                continue
            }
            let frame = nextFrame
            framesLeftInBlock -= 1
            nextFrame = frame + Int(mtcp_shim_v3_frame_next_offset(frame))
            if deliver(frame, body) { delivered += 1 }
        }
        if blockHeld && framesLeftInBlock == 0 { releaseBlock() }
        return delivered
    }

    /// Hands one ring frame to `body` unless it is our own outgoing frame or truncated.
    @inline(__always)
    func deliver(_ frame: UnsafeMutableRawPointer, _ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        if mtcp_shim_v3_frame_pkttype(frame) == UInt8(PACKET_OUTGOING) {
            outgoingSkipped += 1
            return false
        }
        let captured = Int(mtcp_shim_v3_frame_snaplen(frame))
        guard captured == Int(mtcp_shim_v3_frame_len(frame)) else {
            // Larger than a block can hold: the tail is gone.
            counters.receiveDrops += 1
            return false
        }
        let data = frame + Int(mtcp_shim_v3_frame_mac_offset(frame))
        if completeChecksums && mtcp_shim_v3_frame_status(frame) & UInt32(TP_STATUS_CSUMNOTREADY) != 0 {
            if OffloadChecksum.completeIPv4(frame: UnsafeMutableRawBufferPointer(start: data, count: captured)) {
                checksumsCompleted += 1
            }
        }
        counters.framesReceived += 1
        counters.bytesReceived += captured
        body(UnsafeRawBufferPointer(start: data, count: captured))
        return true
    }

    func releaseBlock() {
        mtcp_shim_v3_block_release(rxRing + blockIndex * blockSize)
        blockIndex = blockIndex + 1 == blockCount ? 0 : blockIndex + 1
        blockHeld = false
    }
}
