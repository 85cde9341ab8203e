import PacketIO
import TCP
import Wire

/// Sharing one link and address with forked processes: every process sees every frame, and
/// the shared `PortClaims` table decides which one answers. Until a second process activates
/// the table, none of these checks runs.
extension NetworkStack {
    /// The application accepts or polls on this listener: when the process owning its port is
    /// gone, this stack takes the port over at the next SYN.
    public func markInterested(_ id: Int32) {
        guard sockets.contains(id), !sockets.slots[Int(id)]!.interested else { return }
        sockets.slots[Int(id)]!.interested = true
        if let steering = flowSteering, sockets.slots[Int(id)]!.phase == .listening {
            takeParked(
                steering.listen(port: sockets.slots[Int(id)]!.localPort, accepting: true, now: clock().nanoseconds))
        }
    }

    /// A forked child takes over a listening port it inherited from `predecessor` (its
    /// parent); false when another live process owns the port. Always true without a table.
    public func claimListener(_ id: Int32, replacing predecessor: Int32) -> Bool {
        guard let claims = portClaims else { return true }
        guard sockets.contains(id), sockets.slots[Int(id)]!.phase == .listening else { return false }
        let port = sockets.slots[Int(id)]!.localPort
        guard claims.claim(port, replacing: predecessor) else { return false }
        noteClaim(Int(id), port: port)
        return true
    }

    /// Records that socket `i` holds the claim on `port`.
    func noteClaim(_ i: Int, port: UInt16) {
        guard !sockets.slots[i]!.claimsPort else { return }
        sockets.slots[i]!.claimsPort = true
        claimUsers[port, default: 0] += 1
    }

    /// Socket `i` lets go of its port; the claim goes back with the last socket holding it.
    func dropClaim(_ i: Int) {
        guard sockets.slots[i]!.claimsPort else { return }
        sockets.slots[i]!.claimsPort = false
        let port = sockets.slots[i]!.localPort
        let left = claimUsers[port, default: 1] - 1
        if left > 0 {
            claimUsers[port] = left
        } else {
            claimUsers.removeValue(forKey: port)
            portClaims?.release(port)
        }
    }

    /// Gives back a claim taken for a port that ended up unused.
    func releaseUnusedClaim(_ port: UInt16) {
        if claimUsers[port] == nil { portClaims?.release(port) }
    }

    /// A port from `pick` that no other live process owns, claimed: first among free ports,
    /// then among ports of processes that are gone.
    func pickClaimedPort(_ claims: PortClaims, _ pick: ((UInt16) -> Bool) -> UInt16?) -> UInt16? {
        if let port = pick({ claims.claimIfFree($0) }) { return port }
        return pick({ claims.claim($0) })
    }

    /// Whether this process handles a TCP segment while the table is shared: its own port,
    /// one of its flows, a SYN an interested listener takes over, or (primary only) a segment
    /// for a port nobody alive owns, which the endpoint then resets.
    func admits(_ tcp: TCPHeader, from source: IPAddress, to destination: IPAddress, claims: PortClaims) -> Bool {
        let port = tcp.destinationPort
        let owner = claims.owner(of: port)
        if owner == claims.pid { return true }
        let flow = TCPFlow(
            localAddress: destination, localPort: port, remoteAddress: source, remotePort: tcp.sourcePort)
        if endpoint.hasFlow(flow) { return true }
        if let listener = listener(for: flow) {
            let i = Int(listener)
            guard tcp.flags.contains(.syn), !tcp.flags.contains(.ack), !tcp.flags.contains(.rst),
                sockets.slots[i]?.interested == true, claims.claim(port)
            else { return false }
            noteClaim(i, port: port)
            statistics.portTakeovers += 1
            return true
        }
        return claims.isOrBecomesPrimary() && claims.isVacant(port)
    }

    /// Whether this process answers ARP and ICMP echo requests for the shared address.
    func answersForAddress() -> Bool {
        if configuration.kernelSharesAddress {
            statistics.leftToKernel += 1
            return false
        }
        if let steering = flowSteering { return steering.isPrimary }
        guard let claims = portClaims, claims.isShared else { return true }
        if claims.isOrBecomesPrimary() { return true }
        statistics.leftToPrimary += 1
        return false
    }
}
