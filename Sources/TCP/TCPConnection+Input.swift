import Wire

/// Segment arrival: RFC 9293 section 3.10.7 in order, with RFC 5961 and RFC 7323 checks.
extension TCPConnection {
    /// Processes one arriving segment that the endpoint matched to this connection.
    public mutating func handle(_ segment: TCPSegment, now: Instant) {
        statistics.segmentsReceived += 1
        switch state {
        case .closed, .listen:
            return
        case .synSent:
            handleInSYNSent(segment, now: now)
            return
        default:
            break
        }
        var segment = segment
        if state == .synReceived, segment.flags.contains([.syn, .ack]), segment.sequenceNumber == initialReceiveSequence
        {
            // Simultaneous open (RFC 9293 figure 8): the peer's SYN-ACK repeats a SYN we already
            // hold; only its ACK is new, so trim the SYN and process the rest.
            segment.flags.remove(.syn)
            segment.sequenceNumber = segment.sequenceNumber + 1
        }
        let flags = segment.flags
        let seq = segment.sequenceNumber

        // A copy of the SYN that made this connection: our SYN-ACK was lost, so resend it now.
        if state == .synReceived, flags.contains(.syn), !flags.contains(.ack), seq == initialReceiveSequence {
            sendNext = initialSendSequence
            return
        }

        // PAWS (RFC 7323 5.3): an older timestamp marks an old duplicate; ACK and drop it.
        if timestampsEnabled, !flags.contains(.rst), let ts = segment.options.timestamp,
            Int32(bitPattern: ts.value &- recentTimestamp) < 0,
            now - recentTimestampTime < Interval.seconds(24 * 24 * 3600)
        {
            statistics.pawsRejected += 1
            requestImmediateAck()
            return
        }

        guard isAcceptable(segment) else {
            statistics.unacceptableSegments += 1
            if !flags.contains(.rst) { requestImmediateAck() }
            if state == .timeWait && flags.contains(.fin) {
                timeWaitDeadline = now + configuration.timeWaitDuration
            }
            return
        }

        // RFC 7323 4.3: remember the peer's newest timestamp from segments at the left window edge.
        if timestampsEnabled, let ts = segment.options.timestamp, !(lastAckSent < seq),
            Int32(bitPattern: ts.value &- recentTimestamp) >= 0
        {
            recentTimestamp = ts.value
            recentTimestampTime = now
        }
        lastReceiveTime = now
        if configuration.keepAlive && (state == .established || state == .closeWait) {
            keepAliveProbesSent = 0
            keepAliveDeadline = now + configuration.keepAliveIdle
        }

        if flags.contains(.rst) {
            // RFC 5961 3.2: only an exact match resets; any other in-window RST gets a challenge ACK.
            if seq == receiveNext {
                handleReset()
            } else {
                sendChallengeAck(now: now)
            }
            return
        }

        if flags.contains(.syn) {
            // RFC 9293 3.10.7.4 fourth step: a new SYN on a passive embryo returns it to LISTEN;
            // in synchronized states RFC 5961 4.2 answers with a challenge ACK.
            if state == .synReceived && isPassive {
                enterClosed(error: nil)
            } else {
                sendChallengeAck(now: now)
            }
            return
        }

        guard flags.contains(.ack) else { return }
        guard processAcknowledgment(segment, now: now) else { return }
        if state == .closed { return }
        processPayloadAndFIN(segment, now: now)
    }

    /// RFC 9293 3.10.7.4 first step: the four-case acceptability test against the window we offered.
    func isAcceptable(_ segment: TCPSegment) -> Bool {
        let window = max(promisedRightEdge - receiveNext, 0)
        let length = segment.sequenceLength
        let seq = segment.sequenceNumber
        if length == 0 {
            if window == 0 { return seq == receiveNext }
            // Inclusive right edge, as Linux: a peer whose window probe filled the window sends
            // its ACKs with SEG.SEQ at the edge, and those ACKs must not be lost.
            return !(seq < receiveNext) && !(receiveNext + window < seq)
        }
        if window == 0 {
            // Nothing fits, but the ACK, RST and window fields of a segment at RCV.NXT still count.
            return seq == receiveNext
        }
        let last = seq + (length - 1)
        let firstInside = !(seq < receiveNext) && seq < receiveNext + window
        let lastInside = !(last < receiveNext) && last < receiveNext + window
        return firstInside || lastInside
    }

    mutating func handleInSYNSent(_ segment: TCPSegment, now: Instant) {
        let flags = segment.flags
        var ackAcceptable = false
        if flags.contains(.ack) {
            let ack = segment.acknowledgmentNumber
            if !(initialSendSequence < ack) || sendMax < ack {
                if !flags.contains(.rst) { resetReplySequence = ack }
                return
            }
            ackAcceptable = true
        }
        if flags.contains(.rst) {
            if ackAcceptable { enterClosed(error: .connectionRefused) }
            return
        }
        guard flags.contains(.syn) else { return }
        acceptPeerSYN(segment, now: now)
        if ackAcceptable {
            sampleRTT(ack: segment.acknowledgmentNumber, now: now)
            sendUnacknowledged = segment.acknowledgmentNumber
            if sendNext < sendUnacknowledged { sendNext = sendUnacknowledged }
            windowUpdateSequence = segment.sequenceNumber
            windowUpdateAck = segment.acknowledgmentNumber
            establish(now: now)
            requestImmediateAck()
        } else {
            // Simultaneous open (RFC 9293 figure 7): answer with SYN-ACK from SYN-RECEIVED.
            state = .synReceived
            sendNext = initialSendSequence
            retransmitDeadline = .never
            timedSequence = nil
        }
    }

    /// Records what the peer's SYN told us: its ISN, MSS, window and which options both sides use.
    mutating func acceptPeerSYN(_ syn: TCPSegment, now: Instant) {
        initialReceiveSequence = syn.sequenceNumber
        receiveNext = syn.sequenceNumber + 1
        lastAckSent = receiveNext
        let options = syn.options
        if let mss = options.maximumSegmentSize, mss > 0 {
            peerMSS = max(Int(mss), 64)
        } else {
            peerMSS = 536
        }
        if configuration.windowScaling, let shift = options.windowScale {
            windowScalingEnabled = true
            sendWindowShift = min(shift, 14)
        } else {
            windowScalingEnabled = false
            sendWindowShift = 0
            receiveWindowShift = 0
        }
        sackEnabled = configuration.selectiveAcknowledgments && options.sackPermitted
        if configuration.timestamps, let ts = options.timestamp {
            timestampsEnabled = true
            recentTimestamp = ts.value
            recentTimestampTime = now
        } else {
            timestampsEnabled = false
        }
        // Windows in SYN segments are never scaled (RFC 7323 2.2).
        sendWindow = Int(syn.window)
        maxSendWindow = sendWindow
        advertisedRightEdge = receiveNext + min(advertisableSpace, 65535)
        promisedRightEdge = advertisedRightEdge
        // A retransmitted SYN means a lossy path: start with one segment (RFC 6298 5.7).
        let segments = retransmitCount > 0 ? 1 : configuration.initialWindowSegments
        congestion = CongestionController(
            algorithm: configuration.congestionAlgorithm, mss: sendMSS,
            initialWindow: Self.initialWindow(mss: sendMSS, segments: segments))
    }

    mutating func establish(now: Instant) {
        state = finRequested ? .finWait1 : .established
        events.insert([.connected, .writable])
        retransmitCount = 0
        if sendUnacknowledged == sendMax { retransmitDeadline = .never }
        armKeepAlive(now: now)
    }

    mutating func handleReset() {
        switch state {
        case .synReceived:
            enterClosed(error: isPassive ? nil : .connectionRefused)
        case .established, .finWait1, .finWait2, .closeWait:
            enterClosed(error: .connectionReset)
        default:
            enterClosed(error: nil)
        }
    }

    mutating func requestImmediateAck() {
        ackPending = true
        ackNow = true
    }

    /// RFC 5961 challenge ACK, rate-limited per connection.
    mutating func sendChallengeAck(now: Instant) {
        if now - challengeAckWindowStart >= .seconds(1) {
            challengeAckWindowStart = now
            challengeAcksInWindow = 0
        }
        guard challengeAcksInWindow < configuration.challengeAckLimit else { return }
        challengeAcksInWindow += 1
        statistics.challengeAcks += 1
        requestImmediateAck()
    }

    mutating func sampleRTT(ack: SequenceNumber, now: Instant) {
        guard let timed = timedSequence, !(ack < timed) else { return }
        rttEstimator.addSample(now - timedAt)
        statistics.rttSamples += 1
        timedSequence = nil
    }

    /// RFC 9293 3.10.7.4 fifth step. Returns false when the segment must be dropped.
    mutating func processAcknowledgment(_ segment: TCPSegment, now: Instant) -> Bool {
        let ack = segment.acknowledgmentNumber
        let seq = segment.sequenceNumber
        // SYN-RECEIVED (RFC 9293 3.10.7.4): an ACK outside (SND.UNA, SND.NXT] gets <SEQ=SEG.ACK><CTL=RST>.
        if state == .synReceived && (!(sendUnacknowledged < ack) || sendMax < ack) {
            resetReplySequence = ack
            return false
        }
        // An ACK for data never sent, or far older than any window (RFC 5961 5.2). A zero-window
        // probe's byte counts as sent once the peer acknowledges it.
        if sendMax < ack && !(windowProbeEnd < ack) && sendMax < windowProbeEnd {
            sendMax = ack
        }
        if sendMax < ack || ack < sendUnacknowledged - max(maxSendWindow, 1) {
            sendChallengeAck(now: now)
            return false
        }
        unansweredProbes = 0
        if state == .synReceived {
            windowUpdateSequence = seq
            windowUpdateAck = ack
            sendWindow = Int(segment.window) << Int(sendWindowShift)
            maxSendWindow = max(maxSendWindow, sendWindow)
            establish(now: now)
        }

        let flightBefore = sendMax - sendUnacknowledged
        var sackAdvanced = false
        if sackEnabled {
            sackAdvanced = scoreboard.update(
                cumulativeAck: ack, blocks: segment.options.sackBlocks, sendNext: sendMax)
        }
        let scaledWindow = Int(segment.window) << Int(sendWindowShift)
        if sendUnacknowledged < ack {
            processNewAck(ack, flightBefore: flightBefore, now: now)
        } else if ack == sendUnacknowledged && segment.payloadLength == 0
            // A zero-window probe's byte is not in flight (sendNext stays behind it), so the
            // peer's answers to probes are not duplicate ACKs.
            && !segment.flags.contains(.fin) && scaledWindow == sendWindow
            && sendUnacknowledged < sendNext
        {
            processDuplicateAck(now: now, sackAdvanced: sackAdvanced)
        }

        // Window update (RFC 9293 3.10.7.4): only from segments newer than the last update.
        if windowUpdateSequence < seq || (windowUpdateSequence == seq && !(ack < windowUpdateAck)) {
            sendWindow = scaledWindow
            maxSendWindow = max(maxSendWindow, sendWindow)
            windowUpdateSequence = seq
            windowUpdateAck = ack
            if sendWindow > 0 {
                persistDeadline = .never
                persistBackoff = 0
            }
        }

        if sackEnabled && !inRecovery { enterRecoveryIfLost(now: now) }

        if finRequested && !(sendUnacknowledged < finSequence + 1) {
            switch state {
            case .finWait1:
                state = .finWait2
                if closedByApplication { finWait2Deadline = now + configuration.finWait2Timeout }
            case .closing:
                enterTimeWait(now: now)
            case .lastAck:
                enterClosed(error: nil)
                return false
            default:
                break
            }
        }
        return true
    }

    mutating func processNewAck(_ ack: SequenceNumber, flightBefore: Int, now: Instant) {
        let acked = ack - sendUnacknowledged
        var dataAcked = acked
        if sendUnacknowledged == initialSendSequence { dataAcked -= 1 }
        if finRequested && !(ack < finSequence + 1) && sendUnacknowledged < finSequence + 1 { dataAcked -= 1 }
        if dataAcked > 0 { sendBuffer.removeFirst(min(dataAcked, sendBuffer.count)) }
        sendUnacknowledged = ack
        if sendNext < ack { sendNext = ack }
        if highRetransmitted < ack { highRetransmitted = ack }
        sampleRTT(ack: ack, now: now)
        retransmitCount = 0
        persistBackoff = 0

        if inRecovery {
            if !(ack < recoveryPoint) {
                inRecovery = false
                duplicateAcks = 0
                congestion.onRecoveryExit(now: now)
            } else if !sackEnabled {
                // RFC 6582 partial ACK: retransmit the next hole and deflate the window.
                fastRetransmitPending = true
                var window = congestion.congestionWindow - acked
                if acked >= sendMSS { window += sendMSS }
                congestion.congestionWindow = max(window, sendMSS)
            }
        } else {
            duplicateAcks = 0
            congestion.onAcknowledged(
                bytes: acked, flightSize: flightBefore, now: now, smoothedRTT: rttEstimator.smoothedRTT,
                minimumRTT: rttEstimator.minimumObservedRTT)
        }
        // RFC 6298 5.2 and 5.3.
        retransmitDeadline = sendUnacknowledged == sendMax ? .never : now + rttEstimator.rto
        if dataAcked > 0 && sendBuffer.freeSpace > 0 { events.insert(.writable) }
    }

    mutating func processDuplicateAck(now: Instant, sackAdvanced: Bool) {
        statistics.duplicateAcks += 1
        duplicateAcks += 1
        if inRecovery {
            // RFC 6582 step 4: each further duplicate means a segment left the network.
            if !sackEnabled { congestion.congestionWindow += sendMSS }
            return
        }
        if duplicateAcks >= 3 && !(sendUnacknowledged < recoveryPoint) {
            enterRecovery(now: now)
        }
    }

    /// RFC 6675 5: with SACK, loss is declared as soon as IsLost(SND.UNA) holds.
    mutating func enterRecoveryIfLost(now: Instant) {
        guard sendUnacknowledged < sendMax, !(sendUnacknowledged < recoveryPoint) else { return }
        if duplicateAcks >= 3 || scoreboard.isLost(sendUnacknowledged, mss: sendMSS) {
            enterRecovery(now: now)
        }
    }

    mutating func enterRecovery(now: Instant) {
        let flight = sendMax - sendUnacknowledged
        congestion.onCongestionEvent(flightSize: flight, now: now)
        inRecovery = true
        recoveryPoint = sendMax
        highRetransmitted = sendUnacknowledged
        fastRetransmitPending = true
        timedSequence = nil
        statistics.fastRetransmits += 1
        if !sackEnabled {
            congestion.congestionWindow = congestion.slowStartThreshold + 3 * sendMSS
        }
    }

    /// RFC 9293 3.10.7.4 seventh and eighth steps: segment text and FIN.
    mutating func processPayloadAndFIN(_ segment: TCPSegment, now: Instant) {
        let seq = segment.sequenceNumber
        let length = segment.payloadLength
        if length > 0 && state.acceptsData {
            if closedByApplication && receiveNext < seq + length {
                // Nobody will read this: reset, as Linux does for data on a closed socket.
                resetPending = true
                return
            }
            storePayload(segment, now: now)
        }
        if segment.flags.contains(.fin) {
            if peerFinReceived {
                requestImmediateAck()
                if state == .timeWait { timeWaitDeadline = now + configuration.timeWaitDuration }
            } else if state.acceptsData || state == .synReceived {
                let finAt = seq + length
                if !(finAt < receiveNext) && finAt - receiveNext <= max(promisedRightEdge - receiveNext, 0) {
                    peerFinSequence = finAt
                }
            }
        }
        if !peerFinReceived, let finAt = peerFinSequence, finAt == receiveNext {
            processFIN(now: now)
        }
    }

    mutating func processFIN(now: Instant) {
        peerFinReceived = true
        peerFinSequence = nil
        receiveNext = receiveNext + 1
        requestImmediateAck()
        events.insert([.peerClosed, .readable])
        switch state {
        case .synReceived, .established:
            state = .closeWait
        case .finWait1:
            state = .closing
        case .finWait2:
            enterTimeWait(now: now)
        default:
            break
        }
    }

    mutating func storePayload(_ segment: TCPSegment, now: Instant) {
        var offset = segment.sequenceNumber - receiveNext
        var head = segment.payload
        var tail = segment.payloadTail
        if offset < 0 {
            // Drop the part we already have (RFC 9293: trim to the window).
            var skip = -offset
            let fromHead = min(skip, head.count)
            head = UnsafeRawBufferPointer(rebasing: head[fromHead...])
            skip -= fromHead
            let fromTail = min(skip, tail.count)
            tail = UnsafeRawBufferPointer(rebasing: tail[fromTail...])
            offset = 0
        }
        // Keep only what falls inside the window we offered (RFC 9293 3.10.7.4 trimming); the
        // buffer's slack beyond it exists only for the rounding of that window.
        let room = max(promisedRightEdge - receiveNext, 0) - offset
        if room < head.count + tail.count {
            let keep = max(room, 0)
            if keep <= head.count {
                head = UnsafeRawBufferPointer(rebasing: head[..<keep])
                tail = UnsafeRawBufferPointer(start: nil, count: 0)
            } else {
                tail = UnsafeRawBufferPointer(rebasing: tail[..<(keep - head.count)])
            }
            statistics.outOfWindowBytes += segment.payloadLength - keep
        }
        if head.count + tail.count == 0 {
            requestImmediateAck()
            return
        }
        let hadHoles = receiveBuffer.hasOutOfOrderData
        var advanced = receiveBuffer.write(offset: offset, bytes: head)
        if tail.count > 0 {
            advanced += receiveBuffer.write(offset: max(offset + head.count - advanced, 0), bytes: tail)
        }
        if advanced > 0 {
            receiveNext = receiveNext + advanced
            statistics.bytesReceived += advanced
            events.insert(.readable)
        }
        if offset > 0 {
            statistics.outOfOrderSegments += 1
            noteOutOfOrder(offset: offset)
            requestImmediateAck()
        } else if hadHoles || advanced < head.count + tail.count || room < segment.payloadLength {
            // Filled (part of) a gap, or ran out of buffer: tell the sender at once (RFC 5681 4.2).
            requestImmediateAck()
        } else {
            ackPending = true
            segmentsSinceAck += 1
            if !configuration.delayedAcknowledgments || segmentsSinceAck >= 2 {
                ackNow = true
            } else if delayedAckDeadline == .never {
                delayedAckDeadline = now + configuration.delayedAckTimeout
            }
        }
        pruneReportedSACK()
    }

    /// RFC 2018 4: the first SACK block reports the block holding the newest segment,
    /// then the blocks reported most recently.
    mutating func noteOutOfOrder(offset: Int) {
        guard sackEnabled, let range = receiveBuffer.outOfOrderRange(containing: offset) else { return }
        let newest = sackBlock(for: range)
        var list = SACKBlockList()
        list.append(newest)
        for old in reportedSACK where list.count < SACKBlockList.capacity {
            let overlaps =
                !(SequenceNumber(old.right) < SequenceNumber(newest.left))
                && !(SequenceNumber(newest.right) < SequenceNumber(old.left))
            if !overlaps { list.append(old) }
        }
        reportedSACK = list
    }

    mutating func pruneReportedSACK() {
        guard !reportedSACK.isEmpty else { return }
        var kept = SACKBlockList()
        for block in reportedSACK where receiveNext < SequenceNumber(block.left) {
            kept.append(block)
        }
        reportedSACK = kept
    }
}
