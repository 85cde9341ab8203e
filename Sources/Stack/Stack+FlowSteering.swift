import PacketIO
import TCP
import Wire

/// Sharing one link with other processes (and instances) through kernel flow steering: each
/// flow's frames reach only its owner, and a listening port's new flows reach only the
/// instances that accept there (`FlowSteering`, `SteeringProgram`).
extension NetworkStack {
    /// Steers this instance's flows through `steering` (its program on this instance's receive
    /// socket): every new connection is claimed before its first segment leaves and released
    /// when freed; listeners already open are registered.
    public func useFlowSteering(_ steering: FlowSteering) {
        precondition(TCPHandover.encodedBytes <= FlowSteering.handoverBytes, "a handover must fit the map's value")
        flowSteering = steering
        endpoint.flowRegistry = TCPFlowRegistry(
            claim: { flow in
                let key = Self.steeringKey(flow)
                return steering.claim(
                    localAddress: key.local, localPort: flow.localPort, remoteAddress: key.remote,
                    remotePort: flow.remotePort, family: key.family)
            },
            release: { flow in
                let key = Self.steeringKey(flow)
                steering.release(
                    localAddress: key.local, localPort: flow.localPort, remoteAddress: key.remote,
                    remotePort: flow.remotePort, family: key.family)
            },
            // IPv6 flows are not handed over: their keys hold folded addresses (a never-accepted
            // IPv6 connection of a listener that closes waits as an orphan, then is reset).
            handOver: { flow, handover in
                guard let local = flow.localAddress.ipv4, let remote = flow.remoteAddress.ipv4 else { return false }
                return handover.encoded().withUnsafeBytes { state in
                    steering.handOver(
                        localAddress: local.rawValue, localPort: flow.localPort, remoteAddress: remote.rawValue,
                        remotePort: flow.remotePort, state: state)
                }
            },
            takeHandover: { flow in
                guard let local = flow.localAddress.ipv4, let remote = flow.remoteAddress.ipv4 else { return nil }
                return steering.takeHandover(
                    localAddress: local.rawValue, localPort: flow.localPort, remoteAddress: remote.rawValue,
                    remotePort: flow.remotePort
                ).flatMap { state in state.withUnsafeBytes { TCPHandover(encoded: $0) } }
            },
            othersListen: { port in steering.othersListen(port: port) },
            pendingHandovers: {
                steering.pendingHandovers().compactMap { local, localPort, remote, remotePort, state in
                    guard let handover = state.withUnsafeBytes({ TCPHandover(encoded: $0) }) else { return nil }
                    let flow = TCPFlow(
                        localAddress: IPv4Address(rawValue: local), localPort: localPort,
                        remoteAddress: IPv4Address(rawValue: remote), remotePort: remotePort)
                    return (flow, handover)
                }
            })
        for (key, id) in listenerByKey {
            let port = key.port
            let accepting = sockets.slots[Int(id)]?.interested == true
            takeParked(steering.listen(port: port, accepting: accepting, now: now.nanoseconds))
        }
        steering.maintain()
        steering.waitForPrimaryRole()
        steering.markReady()
    }

    /// The addresses and family of `flow`'s key in the steering maps: IPv4 addresses as they
    /// are, IPv6 ones folded (`SteeringProgram.fold`).
    static func steeringKey(_ flow: TCPFlow) -> (local: UInt32, remote: UInt32, family: UInt32) {
        if let local = flow.localAddress.ipv4, let remote = flow.remoteAddress.ipv4 {
            return (local.rawValue, remote.rawValue, 0)
        }
        return (
            SteeringProgram.fold(high: flow.localAddress.high, low: flow.localAddress.low),
            SteeringProgram.fold(high: flow.remoteAddress.high, low: flow.remoteAddress.low),
            SteeringProgram.ipv6KeyFamily
        )
    }

    /// SYNs other instances parked for a port this instance now accepts on: processed at the
    /// start of the next loop round, as if they had just arrived.
    func takeParked(_ frames: [[UInt8]]) {
        parkedArrivals.append(contentsOf: frames)
    }

    /// The round's first work: parked SYNs handed over, and every 50 ms the primary's duties
    /// (taking the role when it is vacant, sweeping what dead instances left): a primary that
    /// exits leaves ARP, ICMP and parked SYNs unanswered until another instance takes over.
    func runSteeringDuties(_ steering: FlowSteering) {
        if !parkedArrivals.isEmpty {
            let frames = parkedArrivals
            parkedArrivals.removeAll()
            for frame in frames {
                frame.withUnsafeBytes { receiveFrame($0) }
            }
        }
        // Connections a closed listener could not hand over yet: offered each round.
        if endpoint.hasOrphans { endpoint.retryOrphans(now: now) }
        if now >= nextSteeringDuty {
            nextSteeringDuty = now + .milliseconds(50)
            steering.maintain()
            // Connections other instances handed here when their listeners closed.
            endpoint.adoptHandovers(now: now)
        }
        endpoint.resetsUnknownSegments = steering.isPrimary
    }

    /// A pure SYN for a port whose listeners do not accept yet: kept for the first instance
    /// that does (an nginx master listens, its workers accept), instead of being answered by
    /// an instance that never will. False for SYNs this instance handles itself.
    func parksSYN(
        _ tcp: TCPHeader, from source: IPAddress, to destination: IPAddress, frame: UnsafeRawBufferPointer,
        steering: FlowSteering
    ) -> Bool {
        let port = tcp.destinationPort
        let flow = TCPFlow(
            localAddress: destination, localPort: port, remoteAddress: source, remotePort: tcp.sourcePort)
        // The listener of the SYN's family (an IPv4 and a v6-only one may share the port).
        if let id = listener(for: flow) {
            if sockets.slots[Int(id)]?.interested == true { return false }
        } else if !steering.isPrimary || !steering.awaitsAcceptor(port: port) {
            return false
        }
        if endpoint.hasFlow(flow) { return false }
        if steering.park(frame: frame, port: port, now: now.nanoseconds) {
            statistics.synsParked += 1
        } else {
            statistics.synsParkingFull += 1
        }
        return true
    }
}
