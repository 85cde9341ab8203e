import CShim

extension AFPacketRing {
    /// Hands over ready frames, oldest first.
    public func receive(limit: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> Int {
        switch receiveMode {
        case .frames: receiveFrames(limit: limit, body)
        case .blocks: receiveBlocks(limit: limit, body)
        }
    }

    /// `.frames`: each slot the kernel marked TP_STATUS_USER, handed back right after use.
    func receiveFrames(limit: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> Int {
        var delivered = 0
        while delivered < limit {
            let frame = rxRing + rxFrameIndex * rxFrameSize
            let status = mtcp_shim_v2_frame_status(frame)
            guard status & UInt32(TP_STATUS_USER) != 0 else { break }
            let ok = deliver(
                frame, pkttype: mtcp_shim_v2_frame_pkttype(frame), snaplen: mtcp_shim_v2_frame_snaplen(frame),
                length: mtcp_shim_v2_frame_len(frame), macOffset: mtcp_shim_v2_frame_mac_offset(frame),
                status: status, body)
            if ok { delivered += 1 }
            mtcp_shim_v2_frame_set_status(frame, UInt32(TP_STATUS_KERNEL))
            rxFrameIndex = rxFrameIndex + 1 == rxFrameCount ? 0 : rxFrameIndex + 1
        }
        return delivered
    }

    /// `.blocks`: walks retired blocks frame by frame; a block goes back to the kernel as soon
    /// as its last frame has been handed over (at the latest at the end of the burst).
    func receiveBlocks(limit: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> Int {
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
            let ok = deliver(
                frame, pkttype: mtcp_shim_v3_frame_pkttype(frame), snaplen: mtcp_shim_v3_frame_snaplen(frame),
                length: mtcp_shim_v3_frame_len(frame), macOffset: mtcp_shim_v3_frame_mac_offset(frame),
                status: mtcp_shim_v3_frame_status(frame), body)
            if ok { delivered += 1 }
        }
        if blockHeld && framesLeftInBlock == 0 { releaseBlock() }
        return delivered
    }

    /// Hands one ring frame to `body` unless it is our own outgoing frame or truncated.
    @inline(__always)
    func deliver(
        _ frame: UnsafeMutableRawPointer, pkttype: UInt8, snaplen: UInt32, length: UInt32, macOffset: UInt32,
        status: UInt32, _ body: (UnsafeRawBufferPointer) -> Void
    ) -> Bool {
        // The whole frame of a truncated slot waits in the socket's queue, in slot order: it
        // is read even when the frame is skipped, so the next one finds its own.
        var whole: UnsafeMutableRawPointer?
        if status & UInt32(TP_STATUS_COPY) != 0 {
            let n = recv(rxSocket, largeFrame.baseAddress, largeFrame.count, Int32(MSG_DONTWAIT | MSG_TRUNC))
            if n == Int(length) && n <= largeFrame.count { whole = largeFrame.baseAddress }
        }
        if pkttype == UInt8(PACKET_OUTGOING) {
            outgoingSkipped += 1
            return false
        }
        var captured = Int(snaplen)
        var data = frame + Int(macOffset)
        if captured != Int(length) {
            guard let whole else {
                // Larger than a slot or block can hold and not queued whole: the tail is gone.
                counters.receiveDrops += 1
                return false
            }
            data = whole
            captured = Int(length)
            counters.largeFramesReceived += 1
        }
        // Checked by the kernel (or the NIC), or a local peer's partial checksum (completed
        // below all the same: parked SYNs, handovers and captures carry the bytes on).
        receivedChecksumVerified = status & UInt32(TP_STATUS_CSUM_VALID | TP_STATUS_CSUMNOTREADY) != 0
        if completeChecksums && status & UInt32(TP_STATUS_CSUMNOTREADY) != 0 {
            if OffloadChecksum.complete(frame: UnsafeMutableRawBufferPointer(start: data, count: captured)) {
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
