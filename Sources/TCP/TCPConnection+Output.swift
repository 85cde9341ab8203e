import Wire

/// Timers and segment output: RFC 6298 retransmission, RFC 5681/6582/6675 recovery sending,
/// Nagle and silly-window avoidance, persist and keepalive probes, delayed ACKs.
extension TCPConnection {
    /// Runs due timers and hands every segment that should go out now to `sink`.
    public mutating func poll<Sink: TCPSegmentSink>(now: Instant, into sink: inout Sink) {
        runTimers(now: now)
        if let seq = resetReplySequence {
            resetReplySequence = nil
            emitControl(TCPSegment(sequenceNumber: seq, flags: .rst), into: &sink)
        }
        if resetPending {
            resetPending = false
            emitControl(
                TCPSegment(
                    sequenceNumber: sendMax, acknowledgmentNumber: receiveNext, flags: [.rst, .ack]),
                into: &sink)
            enterClosed(error: nil)
            return
        }
        switch state {
        case .closed, .listen:
            return
        case .synSent, .synReceived:
            if sendNext == initialSendSequence {
                emitSYN(now: now, into: &sink)
            } else if ackNow && state == .synReceived {
                emitAck(now: now, into: &sink)
            }
        case .timeWait:
            if ackNow { emitAck(now: now, into: &sink) }
            // A TIME-WAIT of zero (mTCP's tcp_timewait = 0) ends once the last ACK is out.
            if now >= timeWaitDeadline { enterClosed(error: nil) }
        default:
            transmit(now: now, into: &sink)
        }
    }

    // MARK: Timers

    mutating func runTimers(now: Instant) {
        // TIME-WAIT's end waits for the ACK of the peer's FIN it may still owe (poll sends it).
        if (now >= timeWaitDeadline && !(state == .timeWait && ackNow)) || now >= finWait2Deadline {
            enterClosed(error: nil)
            return
        }
        if now >= retransmitDeadline { retransmissionTimeout(now: now) }
        if state == .closed { return }
        if now >= delayedAckDeadline {
            delayedAckDeadline = .never
            if ackPending { ackNow = true }
        }
        if now >= keepAliveDeadline { keepAliveTimeout(now: now) }
    }

    /// RFC 6298 5.4-5.7: back off, shrink the window to one segment and resend from SND.UNA.
    mutating func retransmissionTimeout(now: Instant) {
        statistics.retransmissionTimeouts += 1
        retransmitCount += 1
        let synchronizing = state == .synSent || state == .synReceived
        let limit = synchronizing ? configuration.maximumSYNRetransmissions : configuration.maximumRetransmissions
        if retransmitCount > limit {
            enterClosed(error: .timedOut)
            return
        }
        timedSequence = nil
        if synchronizing {
            sendNext = initialSendSequence
        } else {
            congestion.onRetransmissionTimeout(flightSize: sendMax - sendUnacknowledged, now: now)
            inRecovery = false
            duplicateAcks = 0
            fastRetransmitPending = false
            recoveryPoint = sendMax
            // Forget SACK state: the receiver may have reneged (RFC 2018 8).
            scoreboard.reset()
            sendNext = sendUnacknowledged
            highRetransmitted = sendUnacknowledged
        }
        retransmitDeadline = now + rttEstimator.backedOff(retransmitCount)
    }

    mutating func keepAliveTimeout(now: Instant) {
        guard configuration.keepAlive, state == .established || state == .closeWait else {
            keepAliveDeadline = .never
            return
        }
        if keepAliveProbesSent >= configuration.keepAliveCount {
            enterClosed(error: .timedOut)
            return
        }
        keepAliveProbesSent += 1
        keepAliveProbeDue = true
        keepAliveDeadline = now + configuration.keepAliveInterval
    }

    // MARK: Data output

    var dataEnd: SequenceNumber { dataStart + sendBuffer.count }

    /// Option bytes that SACK blocks would add to the next segment.
    var sackOptionBytes: Int {
        let count = currentSACKBlocks().count
        return count == 0 ? 0 : 4 + 8 * count
    }

    mutating func transmit<Sink: TCPSegmentSink>(now: Instant, into sink: inout Sink) {
        let persistFired = now >= persistDeadline
        if persistFired { persistDeadline = .never }
        let segmentCap = max(sendMSS - sackOptionBytes, 64)

        if fastRetransmitPending {
            fastRetransmitPending = false
            let length = min(segmentCap, max(dataEnd - sendUnacknowledged, 0))
            if length > 0 || (finRequested && sendUnacknowledged == finSequence) {
                emitData(from: sendUnacknowledged, length: length, now: now, into: &sink)
                if highRetransmitted < sendUnacknowledged + length {
                    highRetransmitted = sendUnacknowledged + length
                }
            }
        }
        if inRecovery && sackEnabled {
            transmitDuringSACKRecovery(segmentCap: segmentCap, now: now, into: &sink)
        } else {
            transmitNewData(segmentCap: segmentCap, persistFired: persistFired, now: now, into: &sink)
        }
        if keepAliveProbeDue {
            keepAliveProbeDue = false
            statistics.keepAliveProbes += 1
            // <SEQ=SND.UNA-1> makes the peer answer with an ACK without new data.
            emitControl(
                TCPSegment(
                    sequenceNumber: sendUnacknowledged - 1, acknowledgmentNumber: receiveNext, flags: .ack,
                    window: windowField(now: now), options: outgoingOptions(now: now, sack: false)),
                into: &sink)
        }
        if ackNow { emitAck(now: now, into: &sink) }
    }

    /// New data and FIN within min(cwnd, peer window), with Nagle and sender SWS avoidance.
    mutating func transmitNewData<Sink: TCPSegmentSink>(
        segmentCap: Int, persistFired: Bool, now: Instant, into sink: inout Sink
    ) {
        var override = persistFired
        let push = pushPending
        pushPending = false
        if !configuration.cork || dataEnd - sendNext <= 0 { corkDeadline = .never }
        while true {
            let remaining = max(dataEnd - sendNext, 0)
            let finToSend = finRequested && sendNext == finSequence
            if remaining == 0 && !finToSend { return }
            let inFlight = sendNext - sendUnacknowledged
            let byPeer = (sendUnacknowledged + sendWindow) - sendNext
            // RFC 3042 limited transmit: two segments past cwnd on the first duplicate ACKs.
            let extra = (!inRecovery && duplicateAcks > 0 && duplicateAcks < 3) ? duplicateAcks * sendMSS : 0
            let byCongestion = congestion.congestionWindow + extra - inFlight
            if remaining == 0 {
                // FIN alone needs one sequence number of peer window.
                guard byPeer >= 1 else {
                    if override { sendWindowProbe(now: now, into: &sink) } else { armPersist(now: now) }
                    return
                }
                emitData(from: sendNext, length: 0, now: now, into: &sink)
                return
            }
            var length = min(remaining, segmentCap, byPeer, byCongestion)
            if length <= 0 {
                if byPeer <= 0 && inFlight == 0 {
                    if override {
                        sendWindowProbe(now: now, into: &sink)
                        override = false
                    } else {
                        armPersist(now: now)
                    }
                }
                return
            }
            if length < segmentCap && length < remaining {
                // Window-limited small segment: RFC 9293 3.8.6.2.1 sender SWS avoidance.
                let limitedByPeer = byPeer < min(remaining, segmentCap)
                if limitedByPeer && length < maxSendWindow / 2 && !override {
                    if inFlight == 0 { armPersist(now: now) }
                    return
                }
                if !limitedByPeer && inFlight > 0 && !override { return }
            }
            let partialTail =
                length == remaining && length < segmentCap && !(finRequested && sendNext + length == finSequence)
            if partialTail && configuration.cork && !override && !push {
                // TCP_CORK: wait for a full segment, but no longer than the cork limit.
                if corkDeadline == .never { corkDeadline = now + configuration.corkLimit }
                if now < corkDeadline { return }
                corkDeadline = .never
            }
            if partialTail && !configuration.noDelay && inFlight > 0 && !push {
                // Nagle: one small segment in flight at a time.
                return
            }
            override = false
            length = max(length, 0)
            emitData(from: sendNext, length: length, now: now, into: &sink)
        }
    }

    /// RFC 6675 section 5 step (C): while pipe leaves room, NextSeg rules 1 to 4.
    mutating func transmitDuringSACKRecovery<Sink: TCPSegmentSink>(
        segmentCap: Int, now: Instant, into sink: inout Sink
    ) {
        var budget = 64
        while budget > 0 {
            budget -= 1
            let pipe = scoreboard.pipe(
                sendUnacknowledged: sendUnacknowledged, sendNext: sendMax, highRetransmitted: highRetransmitted,
                mss: sendMSS)
            if congestion.congestionWindow - pipe < sendMSS { return }
            let next = scoreboard.nextSegment(
                sendUnacknowledged: sendUnacknowledged, sendNext: sendMax, highRetransmitted: highRetransmitted,
                mss: segmentCap)
            if let next, !next.rescue {
                retransmit(next, segmentCap: segmentCap, now: now, into: &sink)
                continue
            }
            // Rule 2: new data, if the peer's window allows.
            let remaining = max(dataEnd - sendNext, 0)
            let byPeer = (sendUnacknowledged + sendWindow) - sendNext
            if sendNext == sendMax && (remaining > 0 || (finRequested && sendNext == finSequence)) && byPeer > 0 {
                emitData(from: sendNext, length: min(remaining, segmentCap, byPeer), now: now, into: &sink)
                continue
            }
            if let next {
                retransmit(next, segmentCap: segmentCap, now: now, into: &sink)
                continue
            }
            return
        }
    }

    mutating func retransmit<Sink: TCPSegmentSink>(
        _ hole: SACKRetransmission, segmentCap: Int, now: Instant, into sink: inout Sink
    ) {
        let dataLength = min(hole.length, segmentCap, max(dataEnd - hole.start, 0))
        emitData(from: hole.start, length: dataLength, now: now, into: &sink)
        let end = hole.start + max(dataLength, 1)
        if highRetransmitted < end { highRetransmitted = end }
    }

    /// Zero-window probe (RFC 9293 3.8.6.1): one byte past the window, or FIN alone. It is not
    /// counted as in flight, so an ACK with a zero window never times the connection out.
    mutating func sendWindowProbe<Sink: TCPSegmentSink>(now: Instant, into sink: inout Sink) {
        unansweredProbes += 1
        if unansweredProbes > configuration.maximumRetransmissions {
            enterClosed(error: .timedOut)
            return
        }
        statistics.windowProbes += 1
        let remaining = max(dataEnd - sendNext, 0)
        let savedNext = sendNext
        emitData(from: sendNext, length: min(remaining, 1), now: now, into: &sink, probe: true)
        sendNext = savedNext
        persistBackoff += 1
        armPersist(now: now)
    }

    mutating func armPersist(now: Instant) {
        guard persistDeadline == .never, retransmitDeadline == .never else { return }
        persistDeadline = now + max(rttEstimator.backedOff(persistBackoff), configuration.minimumRTO)
    }

    // MARK: Segment construction

    /// Emits data [seq, seq+length) from the send buffer, with FIN when it ends at our FIN.
    mutating func emitData<Sink: TCPSegmentSink>(
        from seq: SequenceNumber, length: Int, now: Instant, into sink: inout Sink, probe: Bool = false
    ) {
        let offset = seq - dataStart
        let (head, tail) = sendBuffer.peek(offset: max(offset, 0), length: length)
        var flags: TCPFlags = .ack
        let end = seq + length
        if finRequested && end == finSequence && (probe || (sendUnacknowledged + sendWindow) - end >= 1) {
            flags.insert(.fin)
        }
        if length > 0 && end == dataEnd { flags.insert(.psh) }
        let segment = TCPSegment(
            sequenceNumber: seq, acknowledgmentNumber: receiveNext, flags: flags, window: windowField(now: now),
            options: outgoingOptions(now: now, sack: true), payload: head, payloadTail: tail)
        let sequenceLength = segment.sequenceLength
        let isRetransmission = seq < sendMax
        sink.send(segment)
        noteSent(now: now)
        if sequenceLength == 0 { return }
        let segmentEnd = seq + sequenceLength
        if isRetransmission {
            statistics.retransmittedSegments += 1
            if let timed = timedSequence, seq < timed { timedSequence = nil }
        } else {
            statistics.bytesSent += length
            if timedSequence == nil && !probe {
                timedSequence = segmentEnd
                timedAt = now
            }
        }
        if probe {
            if windowProbeEnd < segmentEnd { windowProbeEnd = segmentEnd }
            return
        }
        if sendMax < segmentEnd { sendMax = segmentEnd }
        if windowProbeEnd < sendMax { windowProbeEnd = sendMax }
        if seq == sendNext { sendNext = segmentEnd }
        if retransmitDeadline == .never {
            retransmitDeadline = now + rttEstimator.backedOff(retransmitCount)
            persistDeadline = .never
        }
    }

    mutating func emitSYN<Sink: TCPSegmentSink>(now: Instant, into sink: inout Sink) {
        var options = TCPOptions()
        options.maximumSegmentSize = UInt16(clamping: configuration.maximumSegmentSize)
        let answering = state == .synReceived
        if configuration.windowScaling && (!answering || windowScalingEnabled) {
            options.windowScale = receiveWindowShift
        }
        if configuration.selectiveAcknowledgments && (!answering || sackEnabled) {
            options.sackPermitted = true
        }
        if configuration.timestamps && (!answering || timestampsEnabled) {
            options.timestamp = TCPTimestampOption(
                value: now.milliseconds32 &+ timestampOffset, echoReply: answering ? recentTimestamp : 0)
        }
        let window = min(advertisableSpace, 65535)
        let segment = TCPSegment(
            sequenceNumber: initialSendSequence, acknowledgmentNumber: answering ? receiveNext : SequenceNumber(0),
            flags: answering ? [.syn, .ack] : .syn, window: UInt16(window), options: options)
        sink.send(segment)
        if answering {
            advertisedRightEdge = receiveNext + window
            promisedRightEdge = advertisedRightEdge
        }
        noteSent(now: now)
        if retransmitCount > 0 {
            statistics.retransmittedSegments += 1
        } else if timedSequence == nil {
            timedSequence = initialSendSequence + 1
            timedAt = now
        }
        sendNext = initialSendSequence + 1
        if sendMax < sendNext { sendMax = sendNext }
        if retransmitDeadline == .never {
            retransmitDeadline = now + rttEstimator.backedOff(retransmitCount)
        }
    }

    /// A pure ACK carries SND.NXT in the RFC's sense, the highest sequence sent (`sendMax`):
    /// after a timeout rewinds `sendNext`, an older number would make the peer drop the ACK
    /// as out of window, and two rewound peers would answer each other's ACKs forever.
    mutating func emitAck<Sink: TCPSegmentSink>(now: Instant, into sink: inout Sink) {
        let segment = TCPSegment(
            sequenceNumber: sendMax, acknowledgmentNumber: receiveNext, flags: .ack, window: windowField(now: now),
            options: outgoingOptions(now: now, sack: true))
        sink.send(segment)
        noteSent(now: now)
    }

    mutating func emitControl<Sink: TCPSegmentSink>(_ segment: TCPSegment, into sink: inout Sink) {
        sink.send(segment)
        statistics.segmentsSent += 1
    }

    /// Every segment we send carries the current ACK: nothing more is owed.
    mutating func noteSent(now: Instant) {
        statistics.segmentsSent += 1
        ackPending = false
        ackNow = false
        segmentsSinceAck = 0
        delayedAckDeadline = .never
        lastAckSent = receiveNext
        lastSendTime = now
    }

    func outgoingOptions(now: Instant, sack: Bool) -> TCPOptions {
        var options = TCPOptions()
        if timestampsEnabled {
            options.timestamp = TCPTimestampOption(
                value: now.milliseconds32 &+ timestampOffset, echoReply: recentTimestamp)
        }
        if sack && sackEnabled { options.sackBlocks = currentSACKBlocks() }
        return options
    }

    /// The SACK block for an out-of-order range of the receive buffer (offsets from RCV.NXT).
    func sackBlock(for range: Range<Int>) -> SACKBlock {
        SACKBlock(left: (receiveNext + range.lowerBound).rawValue, right: (receiveNext + range.upperBound).rawValue)
    }

    /// The reported SACK blocks, refreshed against what the receive buffer holds now.
    func currentSACKBlocks() -> SACKBlockList {
        var blocks = SACKBlockList()
        guard sackEnabled, receiveBuffer.hasOutOfOrderData else { return blocks }
        let limit = timestampsEnabled ? 3 : 4
        for reported in reportedSACK where blocks.count < limit {
            let offset = SequenceNumber(reported.left) - receiveNext
            guard offset > 0, let range = receiveBuffer.outOfOrderRange(containing: offset) else { continue }
            let block = sackBlock(for: range)
            if !blocks.contains(block) { blocks.append(block) }
        }
        // Blocks never reported yet (e.g. after a table reset) follow in ascending order.
        var index = 0
        while blocks.count < limit && index < receiveBuffer.outOfOrderRangeCount {
            let range = receiveBuffer.outOfOrderRange(index)
            let block = sackBlock(for: range)
            if !blocks.contains(block) { blocks.append(block) }
            index += 1
        }
        return blocks
    }

    /// The window field for the next segment: never shrinks the right edge already offered,
    /// and opens only by min(buffer/2, MSS) or more (receiver SWS avoidance, RFC 9293 3.8.6.2.2).
    mutating func windowField(now: Instant) -> UInt16 {
        let current = max(advertisedRightEdge - receiveNext, 0)
        let free = advertisableSpace
        let threshold = min(receiveBuffer.capacity / 2, configuration.maximumSegmentSize)
        var window = free - current >= threshold ? free : current
        let shift = Int(receiveWindowShift)
        window = min(window, 65535 << shift)
        let field = min((window + (1 << shift) - 1) >> shift, 65535)
        advertisedRightEdge = receiveNext + window
        let promised = receiveNext + (field << shift)
        if promisedRightEdge < promised { promisedRightEdge = promised }
        return UInt16(field)
    }

    /// The window we could offer now, before SWS rounding.
    func receiveWindowCandidate() -> Int { advertisableSpace }

    /// After the application reads: send a window update if the window grew enough to matter.
    mutating func considerWindowUpdate(previousCandidate: Int) {
        guard state.acceptsData else { return }
        let current = max(advertisedRightEdge - receiveNext, 0)
        let possible = advertisableSpace
        let threshold = min(receiveBuffer.capacity / 2, 2 * configuration.maximumSegmentSize)
        if possible - current >= threshold && possible >= 2 * current {
            requestImmediateAck()
        }
    }
}
