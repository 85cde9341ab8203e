import Wire

/// All TCP connections and listeners of one host (one per core in the stack): demultiplexes
/// arriving segments by 4-tuple, runs listeners with a backlog and SYN cookies, answers
/// segments for unknown flows with RST, and polls connections whose timers are due.
///
/// Not thread-safe: one owner drives it, as mTCP's per-core design does.
public final class TCPEndpoint {
    public var configuration: TCPConfiguration
    public private(set) var statistics = TCPEndpointStatistics()
    /// Counters of every connection released so far, added up.
    public private(set) var releasedConnectionTotals = TCPConnectionStatistics()
    public let maximumConnections: Int
    let isnGenerator: ISNGenerator
    let cookies: SYNCookieCodec
    /// The last flows handed over (a ring): their segments still arriving here are dropped.
    var handedOver = [TCPFlow](repeating: .none, count: 64)
    var handedOverCursor = 0
    /// Connections a closed listener could not hand over yet (no other endpoint accepted on
    /// the port then: on a reload the new workers may not have joined): offered again each
    /// round until the deadline, then reset.
    var orphans: [(slot: Int32, generation: UInt32, deadline: Instant)] = []
    /// How long an orphan waits for an endpoint to take it.
    public static let orphanLifetime = Interval.seconds(1)
    /// Buffer memory for connections made with the configuration given at `init`.
    let memoryPool: ConnectionMemoryPool

    struct Slot {
        var connection: TCPConnection?
        var flow: TCPFlow
        var generation: UInt32 = 0
        var dirty = false
        /// Passive connections not yet accepted belong to their listener.
        var listenerKey: ListenerKey?
        var inAcceptQueue = false
        /// The application holds a handle (accepted or actively opened).
        var ownedByApplication = false
        /// Pool chunk lent to this slot's connection, returned on release.
        var memory: ConnectionMemory?
    }

    struct Listener {
        var address: IPAddress
        var backlog: Int
        /// What connections accepted here start with (the listening socket's options); nil:
        /// the endpoint's configuration.
        var configuration: TCPConfiguration?
        var acceptQueue: [Int32] = []
        var acceptHead = 0
        var embryonic = 0
        var queued: Int { acceptQueue.count - acceptHead }
    }

    /// In place: reading a field must not copy the connection (see `InPlaceArray`).
    let slots = InPlaceArray<Slot>(capacity: 64)
    var freeSlots: [Int32] = []
    var flows: FlowTable
    var listeners: [ListenerKey: Listener] = [:]
    var dirtyList: [Int32] = []
    /// Connection timers, by slot: only connections whose deadline passed are polled.
    var timers = TimerWheel()
    var pendingControl: [(flow: TCPFlow, segment: TCPSegment)] = []
    var readyEvents: [TCPEndpointEvent] = []
    var drainingEvents: [TCPEndpointEvent] = []
    var nextEphemeralPort: UInt16 = 32768
    /// When this endpoint last answered a SYN with a cookie (`.zero`: never).
    var lastCookieSent = Instant.zero
    public static let ephemeralPorts: ClosedRange<UInt16> = 32768...60999
    /// Records the flows this endpoint owns (nil: it is alone on its link).
    public var flowRegistry: TCPFlowRegistry?
    /// Whether segments for unknown flows to ports this endpoint does not listen on are
    /// answered with RST. Among endpoints that share a link only one does (the primary): a
    /// frame of another's flow that reaches this one anyway (a receive socket's first moments,
    /// before its steering filter is on) must not reset that flow. Unknown segments to a port
    /// it listens on are always answered: the kernel steers them here by the port's hash.
    public var resetsUnknownSegments = true
    /// Ephemeral ports tried for an active open whose 4-tuples other owners hold.
    static let claimAttempts = 64

    /// - Parameter secret: 128 bits for ISNs and SYN cookies; pick it at random once per boot
    ///   (tests pass a fixed value to stay deterministic).
    /// - Parameter pooledConnections: connections whose buffers are preallocated in one slab;
    ///   the pool grows by slabs of this size.
    public init(
        configuration: TCPConfiguration, secret: (UInt64, UInt64), maximumConnections: Int = 1 << 20,
        pooledConnections: Int = 64
    ) {
        self.configuration = configuration
        self.maximumConnections = maximumConnections
        memoryPool = ConnectionMemoryPool(configuration: configuration, initialConnections: pooledConnections)
        isnGenerator = ISNGenerator(secret: secret)
        flows = FlowTable(secret: (secret.0 ^ 0x243f_6a88_85a3_08d3, secret.1 &+ 0x1319_8a2e_0370_7344))
        cookies = SYNCookieCodec(secret: (secret.1 ^ 0x5bd1_e995_5bd1_e995, secret.0 &+ 0x9e37_79b9_7f4a_7c15))
        startEphemeralSearch(at: UInt16(truncatingIfNeeded: secret.0 ^ (secret.1 >> 17)))
    }

    /// Where the ephemeral port search starts (reduced into the range). Processes sharing a
    /// host secret start at different places (RFC 6056): a restarted client must not walk
    /// into 4-tuples its predecessor left open or in TIME-WAIT at the server.
    public func startEphemeralSearch(at value: UInt16) {
        let span = UInt32(Self.ephemeralPorts.upperBound - Self.ephemeralPorts.lowerBound) + 1
        nextEphemeralPort = Self.ephemeralPorts.lowerBound + UInt16(UInt32(value) % span)
    }

    deinit {
        for index in slots.indices where slots[index].connection != nil {
            slots[index].connection!.deallocate()
        }
    }

    // MARK: Application interface

    /// Starts accepting connections on `port`. `backlog` bounds both half-open connections
    /// (beyond it SYN cookies answer) and established connections waiting for `accept`.
    /// Connections made here start with `configuration` (the endpoint's when nil), as accepted
    /// sockets inherit the listening socket's options.
    /// An IPv4 address (v4-mapped) serves IPv4 peers; an IPv6 one IPv6 peers; `::` with
    /// `v6Only` false both, as a dual-stack socket does. A port holds an IPv4 and an IPv6
    /// listener side by side, as Linux allows with IPV6_V6ONLY.
    @discardableResult
    public func listen(
        address: IPAddress = IPAddress(IPv4Address.any), v6Only: Bool = false, port: UInt16, backlog: Int,
        configuration: TCPConfiguration? = nil
    ) throws(TCPEndpointError) -> ListenerKey {
        let family = ListenerFamily(address: address, v6Only: v6Only)
        for existing in [ListenerFamily.ipv4, .ipv6, .dual] where existing.overlaps(family) {
            guard listeners[ListenerKey(port: port, family: existing)] == nil else { throw .addressInUse }
        }
        let key = ListenerKey(port: port, family: family)
        listeners[key] = Listener(address: address, backlog: max(backlog, 1), configuration: configuration)
        return key
    }

    /// The listener that takes new connections of `flow`: its own family's on the port (when
    /// bound to a wildcard or to the flow's address), else the port's dual-stack one.
    public func listenerKey(for flow: TCPFlow) -> ListenerKey? {
        let own = ListenerKey(port: flow.localPort, family: flow.isIPv4 ? .ipv4 : .ipv6)
        if let listener = listeners[own], listener.address.isUnspecified || listener.address == flow.localAddress {
            return own
        }
        let dual = ListenerKey(port: flow.localPort, family: .dual)
        return listeners[dual] != nil ? dual : nil
    }

    /// Changes what later connections of a listener start with (options set on a listening socket).
    public func setListenerConfiguration(_ key: ListenerKey, _ configuration: TCPConfiguration?) {
        listeners[key]?.configuration = configuration
    }

    /// Stops listening; connections not yet accepted are reset.
    /// With a registry that hands over, connections another endpoint on the port takes are
    /// theirs instead: the peer gets a probe whose answer reaches the new owner.
    public func stopListening(_ key: ListenerKey, now: Instant) {
        let port = key.port
        // Handovers made to this endpoint and not yet taken go on with the rest.
        if listeners[key] != nil { adoptHandovers(now: now) }
        guard listeners.removeValue(forKey: key) != nil else { return }
        for index in slots.indices where slots[index].listenerKey == key && slots[index].connection != nil {
            let slot = Int32(index)
            if handOver(slot) { continue }
            if flowRegistry?.othersListen?(port) == true && slots[index].connection!.handover != nil {
                orphans.append((slot, slots[index].generation, now + Self.orphanLifetime))
                continue
            }
            slots[index].connection!.abort(now: now)
            markDirty(slot)
        }
    }

    /// Gives connection `slot` (never accepted) to another endpoint on its port, with the
    /// probe that brings the peer's answer there; false when it cannot be handed over now.
    func handOver(_ slot: Int32) -> Bool {
        let index = Int(slot)
        let flow = slots[index].flow
        guard let give = flowRegistry?.handOver, let handover = slots[index].connection!.handover, give(flow, handover)
        else { return false }
        pendingControl.append((flow, handover.probe(window: slots[index].connection!.advertisedWindowField)))
        statistics.handoversGiven += 1
        handedOver[handedOverCursor % handedOver.count] = flow
        handedOverCursor &+= 1
        release(slot, releasingFlow: false)
        return true
    }

    /// Connections waiting for an endpoint to take them (see `orphans`).
    public var hasOrphans: Bool { !orphans.isEmpty }

    /// Offers the orphans again; those whose time is up (or that can no longer be handed
    /// over) are reset.
    public func retryOrphans(now: Instant) {
        guard !orphans.isEmpty else { return }
        var kept: [(slot: Int32, generation: UInt32, deadline: Instant)] = []
        for orphan in orphans {
            let index = Int(orphan.slot)
            guard slots[index].connection != nil, slots[index].generation == orphan.generation,
                slots[index].listenerKey != nil
            else { continue }
            if let key = slots[index].listenerKey, listeners[key] != nil { continue }  // listened again here
            if handOver(orphan.slot) { continue }
            if now >= orphan.deadline || slots[index].connection!.handover == nil {
                slots[index].connection!.abort(now: now)
                markDirty(orphan.slot)
                continue
            }
            kept.append(orphan)
        }
        orphans = kept
    }

    /// Takes every connection other endpoints handed to this one (see `TCPHandover`) whose
    /// listener is here; run every few tens of milliseconds, as a peer that waits for its
    /// answer sends nothing that would bring them.
    /// Handovers for a port this endpoint no longer listens on (the two crossed, or it is
    /// exiting) are given on.
    public func adoptHandovers(now: Instant) {
        guard let pending = flowRegistry?.pendingHandovers?(), !pending.isEmpty else { return }
        for (flow, handover) in pending where flows[flow] == nil {
            if let key = listenerKey(for: flow) {
                adopt(handover, flow: flow, listener: key, now: now)
            } else {
                _ = passOn(handover, flow: flow)
            }
        }
    }

    /// Makes the connection `handover` describes, in its listener's accept queue once
    /// established, with the data it carried.
    @discardableResult
    func adopt(_ handover: TCPHandover, flow: TCPFlow, listener key: ListenerKey, now: Instant) -> Bool {
        let listener = listeners[key]!
        guard listener.queued < listener.backlog else {
            statistics.listenQueueOverflows += 1
            return false
        }
        let configuration = Self.fitted(listener.configuration ?? configuration, to: flow)
        let memory = takeMemory(for: configuration)
        let connection = TCPConnection(handover: handover, configuration: configuration, now: now, memory: memory)
        guard let slot = insert(connection, flow: flow, memory: memory) else {
            discard(connection, memory: memory)
            return false
        }
        statistics.handoversTaken += 1
        statistics.passiveOpens += 1
        slots[Int(slot)].listenerKey = key
        listeners[key]!.embryonic += 1
        if !handover.data.isEmpty || handover.peerFinished {
            handover.data.withUnsafeBytes { bytes in
                var segment = handover.peerSegment
                segment.payload = bytes
                slots[Int(slot)].connection!.handle(segment, now: now)
            }
        }
        markDirty(slot)
        afterActivity(slot)
        return true
    }

    /// A handover made to this endpoint after it stopped listening on the flow's port (the
    /// two crossed): given on to an endpoint that listens, with the probe that brings the
    /// peer's answer there. False when there is none, or nobody to give it to.
    func passOn(_ flow: TCPFlow) -> Bool {
        guard let handover = flowRegistry?.takeHandover?(flow) else { return false }
        return passOn(handover, flow: flow)
    }

    func passOn(_ handover: TCPHandover, flow: TCPFlow) -> Bool {
        guard flowRegistry?.handOver?(flow, handover) == true else { return false }
        // No connection here to advertise a window for: the peer discards the probe anyway
        // (it is below its window) and answers with an ACK.
        pendingControl.append((flow, handover.probe(window: 0)))
        statistics.handoversGiven += 1
        return true
    }

    /// Whether `flow` was handed over lately (its segments still in flight here are dropped).
    func wasHandedOver(_ flow: TCPFlow) -> Bool {
        handedOverCursor > 0 && handedOver.contains(flow)
    }

    /// Whether any listener (of either family) is on `port`.
    public func isListening(port: UInt16) -> Bool {
        listeners[ListenerKey(port: port, family: .ipv4)] != nil
            || listeners[ListenerKey(port: port, family: .ipv6)] != nil
            || listeners[ListenerKey(port: port, family: .dual)] != nil
    }

    /// True when `flow` has a connection in the table (in any state).
    public func hasFlow(_ flow: TCPFlow) -> Bool { flows[flow] != nil }

    /// A free ephemeral port for a connection to `remote`:`remotePort` that `acceptable` agrees
    /// to (asked last, so it may reserve the port); nil when none is left.
    public func pickEphemeralPort(
        local: IPAddress, remote: IPAddress, remotePort: UInt16, where acceptable: (UInt16) -> Bool
    ) -> UInt16? {
        pickEphemeralFlow(local: local, remote: remote, remotePort: remotePort, acceptable: acceptable)?.localPort
    }

    /// Opens a connection; the SYN goes out at the next `poll`.
    public func connect(
        from localAddress: IPAddress, localPort: UInt16? = nil, to remoteAddress: IPAddress,
        port remotePort: UInt16,
        now: Instant
    ) throws(TCPEndpointError) -> ConnectionID {
        var chosen: TCPFlow?
        if let localPort {
            let flow = TCPFlow(
                localAddress: localAddress, localPort: localPort, remoteAddress: remoteAddress, remotePort: remotePort)
            guard flows[flow] == nil, claim(flow) else { throw .addressInUse }
            chosen = flow
        } else {
            for _ in 0..<Self.claimAttempts {
                guard let flow = pickEphemeralFlow(local: localAddress, remote: remoteAddress, remotePort: remotePort)
                else { throw .addressNotAvailable }
                if claim(flow) {
                    chosen = flow
                    break
                }
            }
        }
        guard let flow = chosen else { throw .addressNotAvailable }
        let configuration = Self.fitted(configuration, to: flow)
        let iss = isnGenerator.isn(
            localAddress: flow.localAddress, localPort: flow.localPort,
            remoteAddress: flow.remoteAddress, remotePort: flow.remotePort, now: now)
        let memory = takeMemory(for: configuration)
        var connection = TCPConnection(connectingWith: configuration, initialSequence: iss, now: now, memory: memory)
        connection.timestampOffset = isnGenerator.timestampOffset(
            localAddress: flow.localAddress, remoteAddress: flow.remoteAddress)
        guard let slot = insert(connection, flow: flow, memory: memory) else {
            discard(connection, memory: memory)
            flowRegistry?.release(flow)
            throw .noBuffers
        }
        slots[Int(slot)].ownedByApplication = true
        statistics.activeOpens += 1
        markDirty(slot)
        return id(slot)
    }

    /// `configuration` for a connection of `flow`: an IPv6 header is 20 bytes longer than an
    /// IPv4 one, so the segment size (set for IPv4 from the MTU) shrinks by as much.
    @inline(__always)
    static func fitted(_ configuration: TCPConfiguration, to flow: TCPFlow) -> TCPConfiguration {
        guard !flow.isIPv4 else { return configuration }
        var fitted = configuration
        fitted.maximumSegmentSize = max(configuration.maximumSegmentSize - 20, 536)
        return fitted
    }

    /// `connect` between IPv4 addresses.
    public func connect(
        from localAddress: IPv4Address, localPort: UInt16? = nil, to remoteAddress: IPv4Address,
        port remotePort: UInt16, now: Instant
    ) throws(TCPEndpointError) -> ConnectionID {
        try connect(
            from: IPAddress(localAddress), localPort: localPort, to: IPAddress(remoteAddress), port: remotePort,
            now: now)
    }

    /// The next established connection of listener `key`, or nil.
    public func accept(_ key: ListenerKey) -> ConnectionID? {
        guard var listener = listeners[key] else { return nil }
        defer { listeners[key] = listener }
        while listener.acceptHead < listener.acceptQueue.count {
            let slot = listener.acceptQueue[listener.acceptHead]
            listener.acceptHead += 1
            if listener.acceptHead == listener.acceptQueue.count {
                listener.acceptQueue.removeAll(keepingCapacity: true)
                listener.acceptHead = 0
            }
            let index = Int(slot)
            guard slots[index].inAcceptQueue, slots[index].connection != nil else { continue }
            slots[index].inAcceptQueue = false
            slots[index].listenerKey = nil
            slots[index].ownedByApplication = true
            return id(slot)
        }
        return nil
    }

    /// Established connections waiting in a listener's accept queue.
    public func pendingAccepts(_ key: ListenerKey) -> Int { listeners[key]?.queued ?? 0 }

    public func read(_ id: ConnectionID, into buffer: UnsafeMutableRawBufferPointer, now: Instant) -> TCPReadResult {
        withConnection(id) { $0.read(into: buffer, now: now) } ?? .failed(.notConnected)
    }

    /// Copies readable bytes without consuming them (MSG_PEEK).
    public func peek(_ id: ConnectionID, into buffer: UnsafeMutableRawBufferPointer) -> TCPReadResult {
        guard let slot = validSlot(id) else { return .failed(.notConnected) }
        return slots[Int(slot)].connection!.peek(into: buffer)
    }

    public func write(_ id: ConnectionID, _ bytes: UnsafeRawBufferPointer, now: Instant) -> TCPWriteResult {
        withConnection(id) { $0.write(bytes, now: now) } ?? .failed(.notConnected)
    }

    public func shutdownWrite(_ id: ConnectionID, now: Instant) {
        withConnection(id) { $0.shutdownWrite(now: now) }
    }

    /// Releases the handle; the connection finishes closing (or resets) on its own.
    public func close(_ id: ConnectionID, now: Instant) {
        guard let slot = validSlot(id) else { return }
        slots[Int(slot)].ownedByApplication = false
        slots[Int(slot)].connection!.close(now: now)
        markDirty(slot)
        afterActivity(slot)
    }

    public func abort(_ id: ConnectionID, now: Instant) {
        guard let slot = validSlot(id) else { return }
        slots[Int(slot)].ownedByApplication = false
        slots[Int(slot)].connection!.abort(now: now)
        markDirty(slot)
        afterActivity(slot)
    }

    /// A copy of the connection's state for inspection (state, error, statistics…).
    public func connection(_ id: ConnectionID) -> TCPConnection? {
        guard let slot = validSlot(id) else { return nil }
        return slots[Int(slot)].connection
    }

    /// What readiness needs about a connection, read in place (`connection(_:)` copies all
    /// of its state).
    public func status(_ id: ConnectionID) -> TCPConnection.Status? {
        guard let slot = validSlot(id) else { return nil }
        return slots[Int(slot)].connection?.status
    }

    public func flow(_ id: ConnectionID) -> TCPFlow? {
        guard let slot = validSlot(id) else { return nil }
        return slots[Int(slot)].flow
    }

    /// Runs `body` on the live connection and schedules it for output.
    @discardableResult
    public func withConnection<R>(_ id: ConnectionID, _ body: (inout TCPConnection) -> R) -> R? {
        guard let slot = validSlot(id) else { return nil }
        let result = body(&slots[Int(slot)].connection!)
        markDirty(slot)
        afterActivity(slot)
        return result
    }

    /// Hands over the events gathered since the last call, in the order they happened.
    /// Events that `body` causes (it may call back into the endpoint) wait for the next call.
    public func drainEvents(_ body: (TCPEndpointEvent) -> Void) {
        guard !readyEvents.isEmpty else { return }
        // Swap in the spare array instead of copying, so a round allocates nothing once both
        // arrays have grown to the burst size.
        swap(&readyEvents, &drainingEvents)
        for event in drainingEvents { body(event) }
        drainingEvents.removeAll(keepingCapacity: true)
    }

    /// Connections in the table, in any state.
    public var connectionCount: Int { flows.count }

    /// Sum of the per-connection counters of live connections.
    public func countConnections(in state: TCPState) -> Int {
        var n = 0
        for index in slots.indices where slots[index].connection?.state == state { n += 1 }
        return n
    }

    // MARK: Segment input

    /// Processes one TCP segment that arrived for `destination` from `source` (already
    /// checksum-verified by the caller).
    public func handle(
        header: TCPHeader, payload: UnsafeRawBufferPointer, source: IPAddress, destination: IPAddress,
        now: Instant
    ) {
        statistics.segmentsReceived += 1
        let segment = TCPSegment(
            sequenceNumber: SequenceNumber(header.sequenceNumber),
            acknowledgmentNumber: SequenceNumber(header.acknowledgmentNumber), flags: header.flags,
            window: header.window, options: header.options, payload: payload)
        let flow = TCPFlow(
            localAddress: destination, localPort: header.destinationPort, remoteAddress: source,
            remotePort: header.sourcePort)
        handle(segment, flow: flow, now: now)
    }

    /// Processes one segment for `flow`.
    public func handle(_ segment: TCPSegment, flow: TCPFlow, now: Instant) {
        let flags = segment.flags
        if let slot = flows[flow] {
            let index = Int(slot)
            // RFC 9293 3.6.1 / RFC 6191: a new SYN may end TIME-WAIT early when its sequence
            // number (or timestamp) shows it is not an old duplicate. (The state is read in
            // place: a copy of the connection per segment shows in profiles.)
            if slots[index].connection!.state == .timeWait, flags.contains(.syn), !flags.contains(.ack),
                isListening(port: flow.localPort) || flowRegistry != nil,
                isNewIncarnation(segment, of: slots[index].connection!)
            {
                statistics.timeWaitReused += 1
                release(slot)
                if !isListening(port: flow.localPort) {
                    // The port's listeners are in other processes now (this one stopped
                    // listening, as an nginx worker does on reload): the flow is free again,
                    // and the client's next SYN reaches one of them.
                    return
                }
            } else {
                slots[index].connection!.handle(segment, now: now)
                markDirty(slot)
                afterActivity(slot)
                return
            }
        }
        if wasHandedOver(flow) {
            // Queued here before the flow's frames turned to its new owner.
            statistics.handedOverSegmentsDropped += 1
            return
        }
        guard let key = listenerKey(for: flow), let listener = listeners[key] else {
            if passOn(flow) { return }
            statistics.segmentsToClosedPorts += 1
            replyReset(to: segment, flow: flow)
            return
        }
        if flags.contains(.rst) { return }
        if flags.contains(.ack) {
            if flags.contains(.syn) {
                replyReset(to: segment, flow: flow)
            } else if let handover = flowRegistry?.takeHandover?(flow) {
                // Handed over by an endpoint that stopped listening: this segment answers its probe.
                if adopt(handover, flow: flow, listener: key, now: now) { handle(segment, flow: flow, now: now) }
            } else {
                acceptCookie(segment, flow: flow, listener: key, now: now)
            }
            return
        }
        guard flags.contains(.syn) else { return }
        if listener.queued >= listener.backlog {
            // Linux drops the SYN when the accept queue is full; the client retries.
            statistics.listenQueueOverflows += 1
            return
        }
        let configuration = Self.fitted(listener.configuration ?? configuration, to: flow)
        if listener.embryonic >= listener.backlog {
            sendCookie(for: segment, flow: flow, configuration: configuration, now: now)
            return
        }
        // Another owner answers this SYN (a retransmission that reached us after the
        // listeners changed): stay silent.
        guard claim(flow) else { return }
        let iss = isnGenerator.isn(
            localAddress: flow.localAddress, localPort: flow.localPort,
            remoteAddress: flow.remoteAddress, remotePort: flow.remotePort, now: now)
        let memory = takeMemory(for: configuration)
        guard
            var connection = TCPConnection(
                acceptingSYN: segment, configuration: configuration, initialSequence: iss, now: now, memory: memory)
        else {
            if let memory { memoryPool.give(back: memory) }
            flowRegistry?.release(flow)
            return
        }
        connection.timestampOffset = isnGenerator.timestampOffset(
            localAddress: flow.localAddress, remoteAddress: flow.remoteAddress)
        guard let slot = insert(connection, flow: flow, memory: memory) else {
            discard(connection, memory: memory)
            flowRegistry?.release(flow)
            return
        }
        slots[Int(slot)].listenerKey = key
        listeners[key]!.embryonic += 1
        statistics.passiveOpens += 1
        markDirty(slot)
    }

    func isNewIncarnation(_ syn: TCPSegment, of old: TCPConnection) -> Bool {
        if old.timestampsEnabled, let ts = syn.options.timestamp {
            return Int32(bitPattern: ts.value &- old.recentTimestamp) > 0
        }
        return old.receiveNext < syn.sequenceNumber
    }

    func replyReset(to segment: TCPSegment, flow: TCPFlow) {
        guard resetsUnknownSegments || isListening(port: flow.localPort) else {
            statistics.unknownSegmentsLeftToOthers += 1
            return
        }
        guard let reply = TCPReset.reply(to: segment) else { return }
        statistics.resetsSentForUnknownFlows += 1
        pendingControl.append((flow, reply))
    }

    /// Answers a SYN statelessly: the ISN is a cookie, and the options we must remember
    /// ride in the timestamp (as Linux does); without timestamps only the MSS survives.
    func sendCookie(for syn: TCPSegment, flow: TCPFlow, configuration: TCPConfiguration, now: Instant) {
        let peerMSS = syn.options.maximumSegmentSize ?? 536
        let (isn, _) = cookies.encode(
            localAddress: flow.localAddress, localPort: flow.localPort,
            remoteAddress: flow.remoteAddress, remotePort: flow.remotePort,
            clientISN: syn.sequenceNumber, mss: peerMSS, now: now)
        var options = TCPOptions()
        options.maximumSegmentSize = UInt16(clamping: configuration.maximumSegmentSize)
        if configuration.timestamps, let ts = syn.options.timestamp {
            let scale = configuration.windowScaling ? syn.options.windowScale : nil
            let sack = configuration.selectiveAcknowledgments && syn.options.sackPermitted
            options.timestamp = TCPTimestampOption(
                value: cookies.encodeTimestamp(wscale: scale, sackPermitted: sack, now: now), echoReply: ts.value)
            if scale != nil {
                options.windowScale = TCPConnection.windowShift(forBufferSize: configuration.receiveBufferSize)
            }
            options.sackPermitted = sack
        }
        let reply = TCPSegment(
            sequenceNumber: isn, acknowledgmentNumber: syn.sequenceNumber + 1, flags: [.syn, .ack],
            window: UInt16(min(configuration.receiveBufferSize, 65535)), options: options)
        statistics.synCookiesSent += 1
        lastCookieSent = max(now, Instant(nanoseconds: 1))
        pendingControl.append((flow, reply))
    }

    func acceptCookie(_ ack: TCPSegment, flow: TCPFlow, listener key: ListenerKey, now: Instant) {
        let listener = listeners[key]!
        guard
            let mss = cookies.decode(
                cookie: ack.acknowledgmentNumber - 1, localAddress: flow.localAddress,
                localPort: flow.localPort, remoteAddress: flow.remoteAddress, remotePort: flow.remotePort,
                clientISN: ack.sequenceNumber - 1, now: now)
        else {
            statistics.synCookiesRejected += 1
            // While cookies are in use, an ACK that fails the check is most often a later
            // segment of a cookie connection whose first ACK was lost or reordered (its
            // sequence number no longer reveals the client's ISN): drop it, as the data
            // segment that follows still validates. Otherwise answer with RST.
            if now - lastCookieSent > SYNCookieCodec.period * UInt64(SYNCookieCodec.maximumAge)
                || lastCookieSent == .zero
            {
                replyReset(to: ack, flow: flow)
            }
            return
        }
        guard listener.queued < listener.backlog else {
            statistics.listenQueueOverflows += 1
            return
        }
        let configuration = Self.fitted(listener.configuration ?? configuration, to: flow)
        var scale: UInt8?
        var sack = false
        if let ts = ack.options.timestamp, configuration.timestamps {
            (scale, sack) = cookies.decodeTimestamp(ts.echoReply)
        }
        guard claim(flow) else { return }
        let memory = takeMemory(for: configuration)
        let connection = TCPConnection(
            cookieAck: ack, peerMSS: Int(mss), peerWindowShift: scale, sackPermitted: sack,
            configuration: configuration, now: now, memory: memory)
        guard let slot = insert(connection, flow: flow, memory: memory) else {
            discard(connection, memory: memory)
            flowRegistry?.release(flow)
            return
        }
        statistics.synCookiesAccepted += 1
        statistics.passiveOpens += 1
        slots[Int(slot)].listenerKey = key
        listeners[key]!.embryonic += 1
        if ack.payloadLength > 0 || ack.flags.contains(.fin) {
            slots[Int(slot)].connection!.handle(ack, now: now)
        }
        markDirty(slot)
        afterActivity(slot)
    }

    // MARK: Output and timers

    /// Sends everything due: control replies, then output of connections that changed or
    /// whose timers expired.
    public func poll<Sink: TCPEndpointSink>(now: Instant, into sink: inout Sink) {
        for control in pendingControl {
            sink.send(control.segment, flow: control.flow)
            statistics.segmentsSent += 1
        }
        pendingControl.removeAll(keepingCapacity: true)
        withUnsafeMutablePointer(to: &sink) { base in
            timers.expire(now: now) { slot in markDirty(slot) }
            var cursor = 0
            while cursor < dirtyList.count {
                let slot = dirtyList[cursor]
                cursor += 1
                if slots[Int(slot)].dirty && slots[Int(slot)].connection != nil {
                    pollSlot(slot, now: now, sink: base)
                }
            }
            dirtyList.removeAll(keepingCapacity: true)
        }
    }

    /// Connections changed by the application (or control replies) wait to be sent.
    public var hasQueuedOutput: Bool { !dirtyList.isEmpty || !pendingControl.isEmpty }

    /// The next instant `poll` has work, `.zero` when it has work now.
    public var nextDeadline: Instant {
        if !pendingControl.isEmpty || !dirtyList.isEmpty { return .zero }
        return timers.nextDeadline()
    }

    struct FlowSink<Base: TCPEndpointSink>: TCPSegmentSink {
        let base: UnsafeMutablePointer<Base>
        let flow: TCPFlow
        var sent = 0
        mutating func send(_ segment: TCPSegment) {
            base.pointee.send(segment, flow: flow)
            sent += 1
        }
    }

    /// Whether closing the connection now resets it (`TCPConnection.closeResets`).
    public func closeResets(_ id: ConnectionID) -> Bool {
        guard let slot = validSlot(id) else { return false }
        return slots[Int(slot)].connection?.closeResets ?? false
    }

    /// Sends what the connection has ready now, ahead of the next `poll`: before an abort,
    /// data the application wrote must leave first, as the kernel (which sends at write time)
    /// would have sent it.
    public func transmitNow<Sink: TCPEndpointSink>(_ id: ConnectionID, now: Instant, into sink: inout Sink) {
        guard let slot = validSlot(id), slots[Int(slot)].dirty else { return }
        withUnsafeMutablePointer(to: &sink) { pollSlot(slot, now: now, sink: $0) }
    }

    func pollSlot<Sink: TCPEndpointSink>(_ slot: Int32, now: Instant, sink: UnsafeMutablePointer<Sink>) {
        let index = Int(slot)
        var adapter = FlowSink(base: sink, flow: slots[index].flow)
        slots[index].connection!.poll(now: now, into: &adapter)
        statistics.segmentsSent += adapter.sent
        slots[index].dirty = false
        afterActivity(slot)
        guard slots[index].connection != nil else { return }
        timers.schedule(slot, at: slots[index].connection!.nextDeadline)
    }

    // MARK: Table management

    func id(_ slot: Int32) -> ConnectionID {
        ConnectionID(slot: slot, generation: slots[Int(slot)].generation)
    }

    func validSlot(_ id: ConnectionID) -> Int32? {
        let index = Int(id.slot)
        guard index >= 0, index < slots.count, slots[index].generation == id.generation,
            slots[index].connection != nil
        else { return nil }
        return id.slot
    }

    func markDirty(_ slot: Int32) {
        let index = Int(slot)
        if !slots[index].dirty {
            slots[index].dirty = true
            dirtyList.append(slot)
        }
    }

    /// Counters of the pool that lends connections their buffer memory.
    public var memoryPoolStatistics: ConnectionMemoryPoolStatistics { memoryPool.statistics }

    /// A pool chunk for a new connection, or nil when `configuration`'s buffer sizes differ
    /// from the pool's so the connection must allocate buffers of its own sizes.
    func takeMemory(for configuration: TCPConfiguration) -> ConnectionMemory? {
        memoryPool.fits(configuration) ? memoryPool.take() : nil
    }

    /// Frees a connection that never made it into the table, and its pool chunk.
    func discard(_ connection: TCPConnection, memory: ConnectionMemory?) {
        var copy = connection
        copy.deallocate()
        if let memory { memoryPool.give(back: memory) }
    }

    /// Takes `flow` in the registry, if there is one; false (counted) when another owner has it.
    func claim(_ flow: TCPFlow) -> Bool {
        guard let flowRegistry, !flowRegistry.claim(flow) else { return true }
        statistics.flowsOwnedElsewhere += 1
        return false
    }

    func insert(_ connection: TCPConnection, flow: TCPFlow, memory: ConnectionMemory?) -> Int32? {
        guard flows.count < maximumConnections else {
            statistics.connectionTableFull += 1
            return nil
        }
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
            slots[Int(slot)].connection = connection
            slots[Int(slot)].flow = flow
        } else {
            slot = Int32(slots.count)
            slots.append(Slot(connection: connection, flow: flow))
        }
        let index = Int(slot)
        slots[index].dirty = false
        slots[index].listenerKey = nil
        slots[index].inAcceptQueue = false
        slots[index].ownedByApplication = false
        slots[index].memory = memory
        flows.insert(flow, slot: slot)
        return slot
    }

    func release(_ slot: Int32, releasingFlow: Bool = true) {
        let index = Int(slot)
        guard slots[index].connection != nil else { return }
        if let key = slots[index].listenerKey, !slots[index].inAcceptQueue {
            listeners[key]?.embryonic -= 1
        }
        releasedConnectionTotals.add(slots[index].connection!.statistics)
        slots[index].connection!.deallocate()
        slots[index].connection = nil
        if let memory = slots[index].memory {
            memoryPool.give(back: memory)
            slots[index].memory = nil
        }
        flows.remove(slots[index].flow)
        if releasingFlow { flowRegistry?.release(slots[index].flow) }
        slots[index].generation &+= 1
        timers.cancel(slot)
        slots[index].listenerKey = nil
        slots[index].inAcceptQueue = false
        slots[index].ownedByApplication = false
        freeSlots.append(slot)
        statistics.connectionsReleased += 1
    }

    /// Moves a newly established passive connection to its listener's accept queue, reports
    /// events, and releases connections that are closed and no longer held by anyone.
    func afterActivity(_ slot: Int32) {
        let index = Int(slot)
        guard slots[index].connection != nil else { return }
        let events = slots[index].connection!.takeEvents()
        if events.contains(.connected), let key = slots[index].listenerKey, !slots[index].inAcceptQueue {
            if listeners[key] != nil {
                listeners[key]!.embryonic -= 1
                listeners[key]!.acceptQueue.append(slot)
                slots[index].inAcceptQueue = true
                readyEvents.append(.acceptable(key))
            } else if !orphans.contains(where: { $0.slot == slot }) {
                slots[index].connection!.abort(now: .zero)
                markDirty(slot)
            }
        }
        if slots[index].connection!.state == .timeWait && !slots[index].connection!.buffersReleased
            && (!slots[index].ownedByApplication || slots[index].connection!.isReleasedByApplication)
        {
            // Nobody will read or write any more: give the buffers back for the 2*MSL wait.
            slots[index].connection!.releaseBuffers()
            if slots[index].connection!.buffersReleased, let memory = slots[index].memory {
                memoryPool.give(back: memory)
                slots[index].memory = nil
            }
        }
        if slots[index].connection!.state == .closed {
            if !slots[index].ownedByApplication || slots[index].connection!.isReleasedByApplication {
                // Nobody holds a handle: an embryo that failed, an accepted-queue entry that
                // was reset, or a connection the application closed.
                if slots[index].connection!.resetPendingForOutput { return }
                release(slot)
                return
            }
        }
        if !events.isEmpty && slots[index].ownedByApplication {
            readyEvents.append(.connection(id(slot), events))
        }
    }

    func pickEphemeralFlow(
        local: IPAddress, remote: IPAddress, remotePort: UInt16, acceptable: (UInt16) -> Bool = { _ in true }
    ) -> TCPFlow? {
        let span = Int(Self.ephemeralPorts.upperBound - Self.ephemeralPorts.lowerBound) + 1
        for _ in 0..<span {
            let port = nextEphemeralPort
            nextEphemeralPort = port >= Self.ephemeralPorts.upperBound ? Self.ephemeralPorts.lowerBound : port + 1
            if isListening(port: port) { continue }
            let flow = TCPFlow(localAddress: local, localPort: port, remoteAddress: remote, remotePort: remotePort)
            if flows[flow] == nil && acceptable(port) { return flow }
        }
        return nil
    }
}
