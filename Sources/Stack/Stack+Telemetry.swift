import PacketIO
import TCP
import Telemetry
import Wire

/// What the stack shows outside its process: every frame into a capture ring, and its
/// counters and socket table into its block of the statistics region. Both are plain memory
/// writes on the owner's thread; files and readers are other threads' and processes' work.
extension NetworkStack {
    /// Copies every frame received and sent from now on into `ring`.
    public func startCapture(_ ring: CaptureRing) {
        adoptWallClock()
        capture = ring
    }

    /// Publishes this instance's counters and sockets into `slot` from the next round on.
    public func publishStatistics(into slot: StatsInstanceSlot) {
        adoptWallClock()
        statisticsSlot = slot
        publishedActivity = -1
        nextCountersPublication = .zero
        nextSocketsPublication = .zero
    }

    /// Reads CLOCK_REALTIME once against the injected clock: from then on a round's wall-clock
    /// time (`captureTime`) costs an addition.
    func adoptWallClock() {
        realtimeOffset = StatsRegion.realtimeNanoseconds() &- clock().nanoseconds
    }

    /// The current round's time on CLOCK_REALTIME.
    @inline(__always)
    var captureTime: UInt64 { now.nanoseconds &+ realtimeOffset }

    /// Queues a frame written into `buffer` (copying it to the capture ring first).
    @inline(__always)
    func commitFrame(_ buffer: UnsafeMutableRawBufferPointer, length: Int) {
        if let capture {
            capture.record(
                UnsafeRawBufferPointer(rebasing: buffer[..<length]), direction: .outbound, timestamp: captureTime,
                checksumPending: transmitChecksumOffload)
        }
        io.commitTransmit(length: length)
    }

    /// A number that changes whenever something the region shows may have changed.
    var activity: Int { statistics.framesReceived &+ statistics.framesSent &+ sockets.count &* 7919 }

    /// How often counters and the socket table are written while the stack is busy. When it
    /// goes quiet, `nextDeadline` brings one more round so the last state is written too.
    static var countersInterval: Interval { .milliseconds(20) }
    static var socketsInterval: Interval { .milliseconds(200) }

    /// Writes the counters (and with `sockets` the socket table) into the region at once,
    /// whatever changed: for a final state before an exit, and for measuring the cost.
    public func publishStatisticsNow(sockets: Bool) {
        guard let slot = statisticsSlot else { return }
        nextCountersPublication = .zero
        if sockets { nextSocketsPublication = .zero }
        publishedActivity = -1
        publishStatistics(slot)
    }

    func publishStatistics(_ slot: StatsInstanceSlot) {
        let current = activity
        guard current != publishedActivity else { return }
        let published = captureTime
        let socketsDue = now >= nextSocketsPublication
        if socketsDue {
            var totals = endpoint.releasedConnectionTotals
            endpoint.forEachConnectionStatistics { totals.add($0) }
            connectionTotals = totals
        }
        if socketsDue || now >= nextCountersPublication {
            nextCountersPublication = now + Self.countersInterval
            slot.publishCounters(published: published) { values in
                var i = 0
                forEachCounter { _, value in
                    if i < slot.counterCount { values[i] = UInt64(truncatingIfNeeded: value) }
                    i += 1
                }
            }
        }
        guard socketsDue else { return }
        nextSocketsPublication = now + Self.socketsInterval
        publishedActivity = current
        slot.publishSockets(published: published) { rows in writeSocketRows(into: &rows, instance: slot.index) }
    }

    /// The counter names in region order (what `forEachCounter` reports).
    public var counterNames: [String] {
        var names: [String] = []
        forEachCounter { name, _ in names.append("\(name)") }
        return names
    }

    /// Every counter as `name=value` words (what a process writes at exit: MTCP_STATS), with
    /// the statistics region's names.
    public var counterLine: String {
        var line = ""
        forEachCounter { name, value in
            if !line.isEmpty { line += " " }
            line += "\(name)=\(value)"
        }
        return line
    }

    /// Every counter of this instance with its name, always in the same order: the stack's
    /// frame path, TCP, the link, the connection pool, flow steering and capture.
    public func forEachCounter(_ body: (StaticString, Int) -> Void) {
        let s = statistics
        body("sockets", sockets.count)
        body("connections", endpoint.connectionCount)
        body("frames_in", s.framesReceived)
        body("frames_out", s.framesSent)
        body("tcp_in", s.tcpSegmentsReceived)
        body("tcp_checksums_trusted", s.tcpChecksumsTrusted)
        body("tcp_out", s.tcpSegmentsSent)
        body("dropped", s.dropped)
        body("malformed", s.malformed)
        body("ethernet_errors", s.ethernetErrors.total)
        body("arp_errors", s.arpErrors.total)
        body("ipv4_errors", s.ipv4Errors.total)
        body("ipv4_bad_checksum", s.ipv4Errors.badChecksum)
        body("ipv4_fragments", s.ipv4Errors.fragmented)
        body("tcp_errors", s.tcpErrors.total)
        body("tcp_bad_checksum", s.tcpErrors.badChecksum)
        body("tcp_bad_option", s.tcpErrors.badOption)
        body("tcp_truncated", s.tcpErrors.truncated)
        body("icmp_errors", s.icmpErrors.total)
        body("unknown_ethertype", s.unknownEtherType)
        body("unknown_protocol", s.unknownIPProtocol)
        body("not_our_mac", s.notOurMAC)
        body("not_our_address", s.notOurAddress)
        body("icmp_echo_requests", s.icmpEchoRequests)
        body("icmp_echo_replies", s.icmpEchoRepliesSent)
        body("icmp_other", s.icmpOther)
        body("arp_requests_in", s.arpRequestsReceived)
        body("arp_replies_in", s.arpRepliesReceived)
        body("arp_requests_sent", s.arpRequestsSent)
        body("arp_replies_sent", s.arpRepliesSent)
        body("arp_ignored", s.arpIgnored)
        body("arp_conflicts", s.arpConflicts)
        body("arp_pending_flushed", s.pendingFlushed)
        body("arp_failures", s.arpResolutionFailures)
        body("arp_pending_overflow", s.pendingQueueOverflow)
        body("arp_cache_full", s.arpCacheFull)
        body("no_route", s.noRoute)
        body("tx_ring_full", s.transmitRingFull)
        body("other_process_segments", s.segmentsForOtherProcesses)
        body("left_to_primary", s.leftToPrimary)
        body("left_to_kernel", s.leftToKernel)
        body("syns_parked", s.synsParked)
        body("syns_parking_full", s.synsParkingFull)
        body("port_takeovers", s.portTakeovers)
        body("ipv6_errors", s.ipv6Errors.total)
        body("ipv6_fragments", s.ipv6Errors.fragmented)
        body("ipv6_disabled", s.ipv6Disabled)
        body("ipv6_extension_headers", s.ipv6ExtensionHeaders)
        body("icmpv6_errors", s.icmpv6Errors.total)
        body("icmpv6_echo_requests", s.icmpv6EchoRequests)
        body("icmpv6_echo_replies", s.icmpv6EchoRepliesSent)
        body("icmpv6_other", s.icmpv6Other)
        body("nd_solicitations_in", s.neighborSolicitationsReceived)
        body("nd_solicitations_sent", s.neighborSolicitationsSent)
        body("nd_advertisements_in", s.neighborAdvertisementsReceived)
        body("nd_advertisements_sent", s.neighborAdvertisementsSent)
        body("nd_router_advertisements", s.routerAdvertisementsReceived)
        body("duplicate_addresses", s.duplicateAddresses)
        let t = endpoint.statistics
        body("passive_opens", t.passiveOpens)
        body("active_opens", t.activeOpens)
        body("connections_released", t.connectionsReleased)
        body("resets_for_unknown_flows", t.resetsSentForUnknownFlows)
        body("segments_to_closed_ports", t.segmentsToClosedPorts)
        body("syn_cookies_sent", t.synCookiesSent)
        body("syn_cookies_accepted", t.synCookiesAccepted)
        body("syn_cookies_rejected", t.synCookiesRejected)
        body("listen_queue_overflows", t.listenQueueOverflows)
        body("connection_table_full", t.connectionTableFull)
        body("time_wait_reused", t.timeWaitReused)
        body("flows_owned_elsewhere", t.flowsOwnedElsewhere)
        body("resets_left_to_primary", t.unknownSegmentsLeftToOthers)
        body("handovers_given", t.handoversGiven)
        body("handovers_taken", t.handoversTaken)
        // Per-connection counters of released and live connections (as of the last socket
        // table publication).
        let c = connectionTotals
        body("bytes_in", c.bytesReceived)
        body("bytes_out", c.bytesSent)
        body("retransmits", c.retransmittedSegments)
        body("fast_retransmits", c.fastRetransmits)
        body("rto_expirations", c.retransmissionTimeouts)
        body("duplicate_acks", c.duplicateAcks)
        body("out_of_order", c.outOfOrderSegments)
        body("unacceptable_segments", c.unacceptableSegments)
        body("paws_rejected", c.pawsRejected)
        body("challenge_acks", c.challengeAcks)
        body("window_probes", c.windowProbes)
        body("keepalive_probes", c.keepAliveProbes)
        let io = self.io.statistics
        body("link_frames_in", io.framesReceived)
        body("link_bytes_in", io.bytesReceived)
        body("link_frames_out", io.framesSent)
        body("link_bytes_out", io.bytesSent)
        body("rx_drops", io.receiveDrops)
        body("link_large_frames_in", io.largeFramesReceived)
        body("link_tx_ring_full", io.transmitRingFull)
        body("link_tx_errors", io.transmitErrors)
        let pool = endpoint.memoryPoolStatistics
        body("pool_chunks_in_use", pool.inUse)
        body("pool_chunks_free", pool.available)
        body("pool_bytes", pool.slabs * pool.chunksPerSlab * pool.chunkBytes)
        let steering = flowSteering?.statistics ?? FlowSteeringStatistics()
        body("steering_claims", steering.flowsClaimed)
        body("steering_conflicts", steering.claimConflicts)
        body("steering_claim_failures", steering.claimFailures)
        body("steering_releases", steering.flowsReleased)
        body("capture_frames", capture?.framesCaptured ?? 0)
        body("capture_dropped", capture?.framesDropped ?? 0)
    }

    /// The socket table: each connection (any state) and each listener.
    func writeSocketRows(into rows: inout SocketRowWriter, instance: Int) {
        endpoint.forEachConnection { flow, d, held in
            var row = SocketRow()
            row.state = TCPInfo.linuxState(d.state)
            row.instance = UInt8(truncatingIfNeeded: instance)
            row.flags = held ? SocketRow.heldByApplication : 0
            row.setAddresses(local: flow.localAddress, remote: flow.remoteAddress)
            row.localPort = flow.localPort
            row.remotePort = flow.remotePort
            row.sendQueue = UInt32(clamping: d.unacknowledgedBytes)
            row.receiveQueue = UInt32(clamping: d.readableBytes)
            row.congestionWindow = UInt32(clamping: d.congestionWindow)
            row.slowStartThreshold = UInt32(clamping: d.slowStartThreshold)
            row.smoothedRTT = UInt32(clamping: (d.smoothedRTT?.nanoseconds ?? 0) / 1000)
            row.rttVariance = UInt32(clamping: d.rttVariance.nanoseconds / 1000)
            row.retransmissionTimeout = UInt32(clamping: d.retransmissionTimeout.nanoseconds / 1000)
            row.mss = UInt32(clamping: d.sendMSS)
            row.sendWindow = UInt32(clamping: d.sendWindow)
            row.retransmissions = UInt32(clamping: d.retransmittedSegments)
            row.bytesSent = UInt64(clamping: d.bytesSent)
            row.bytesReceived = UInt64(clamping: d.bytesReceived)
            rows.append(row)
        }
        endpoint.forEachListener { port, address, queued, backlog in
            var row = SocketRow()
            row.state = TCPInfo.linuxState(.listen)
            row.kind = .listener
            row.instance = UInt8(truncatingIfNeeded: instance)
            row.flags = SocketRow.heldByApplication
            row.setAddresses(local: address, remote: nil)
            row.localPort = port
            row.receiveQueue = UInt32(clamping: queued)
            row.sendQueue = UInt32(clamping: backlog)
            rows.append(row)
        }
    }
}

extension SocketRow {
    /// IPv4 addresses in the row's IPv4 fields, IPv6 ones in its IPv6 fields with the flag.
    mutating func setAddresses(local: IPAddress, remote: IPAddress?) {
        if let v4 = local.ipv4 {
            localAddress = v4.rawValue.bigEndian
            remoteAddress = remote?.ipv4?.rawValue.bigEndian ?? 0
            return
        }
        flags |= SocketRow.ipv6
        localAddress6 = (local.high, local.low)
        if let remote { remoteAddress6 = (remote.high, remote.low) }
    }
}
