import PacketIO
import TCP
import Wire

/// Where duplicate address detection (RFC 4862 5.4) stands for one of our IPv6 addresses.
/// Addresses are used while tentative (optimistically, as RFC 4429 allows), so a stack that
/// starts answers at once; a duplicate found stops the address being ours.
enum AddressState: Equatable {
    case tentative
    case preferred
    case duplicate
}

/// The IPv6 receive path and neighbour discovery (RFC 4861): echo, solicitations answered,
/// advertisements learned into the neighbour table that ARP uses, router advertisements for
/// the default router when none is configured, and duplicate address detection.
extension NetworkStack {
    /// How long duplicate address detection waits for an answer (RFC 4861's RetransTimer).
    static var addressDetectionWait: Interval { .seconds(1) }

    /// One of the IPv6 addresses we are configured with (usable or not).
    func isConfiguredIPv6(_ address: IPAddress) -> Bool {
        ipv6Enabled && (address == linkLocalAddress || address == configuration.ipv6?.address)
    }

    /// Our IPv6 addresses that are usable (not found duplicate).
    func ownsIPv6(_ address: IPAddress) -> Bool {
        isConfiguredIPv6(address) && addressStates[address] != .duplicate
    }

    /// Whether a packet sent to `destination` is for us: one of our addresses, all-nodes, or
    /// the solicited-node group of one of them.
    func acceptsIPv6(_ destination: IPAddress) -> Bool {
        if ownsIPv6(destination) { return true }
        if destination == .allNodes { return true }
        guard destination.isMulticast else { return false }
        return destination == linkLocalAddress.solicitedNode
            || (configuration.ipv6.map { destination == $0.address.solicitedNode } ?? false)
    }

    func receiveIPv6(_ packet: UnsafeRawBufferPointer, from sourceMAC: MACAddress, frame: UnsafeRawBufferPointer) {
        guard ipv6Enabled else {
            statistics.ipv6Disabled += 1
            return
        }
        let ip: IPv6Header
        let payload: UnsafeRawBufferPointer
        do {
            (ip, payload) = try IPv6Header.parse(packet)
        } catch {
            statistics.ipv6Errors.count(error)
            return
        }
        // A multicast address is never a source (RFC 4291 2.7; Linux's ipv6_rcv drops these): a
        // solicitation from one was answered, solicited, to the group.
        guard !ip.source.isMulticast else {
            statistics.ipv6Errors.count(.unsupported)
            return
        }
        if ip.extensionHeaderLength > 0 { statistics.ipv6ExtensionHeaders += 1 }
        guard acceptsIPv6(ip.destination) else {
            statistics.notOurAddress += 1
            return
        }
        switch ip.upperProtocol {
        case IPProtocol.tcp:
            guard !ip.destination.isMulticast else {
                statistics.notOurAddress += 1
                return
            }
            receiveTCP(payload, source: ip.source, destination: ip.destination, frame: frame)
        case IPProtocol.icmpv6:
            receiveICMPv6(payload, ip: ip, from: sourceMAC)
        default:
            statistics.unknownIPProtocol += 1
        }
    }

    func receiveICMPv6(_ message: UnsafeRawBufferPointer, ip: IPv6Header, from sourceMAC: MACAddress) {
        let header: ICMPv6Header
        do {
            header = try ICMPv6Header.parse(message, source: ip.source, destination: ip.destination)
        } catch {
            statistics.icmpv6Errors.count(error)
            return
        }
        do throws(WireError) {
            switch header.type {
            case ICMPv6Type.echoRequest:
                let (echo, data) = try ICMPv6Echo.parse(
                    message, source: ip.source, destination: ip.destination, verifyChecksum: false)
                statistics.icmpv6EchoRequests += 1
                // A request to a group is answered from our own address, as Linux does.
                guard answersForAddress(), !ip.source.isUnspecified else { return }
                let source = ip.destination.isMulticast ? (try? sourceAddress(for: ip.source)) : ip.destination
                guard let source else { return }
                sendEchoReply6(to: ip.source, from: source, mac: sourceMAC, request: echo, data: data)
            case ICMPv6Type.neighborSolicitation:
                let solicitation = try NeighborSolicitation.parse(
                    message, hopLimit: ip.hopLimit, source: ip.source, destination: ip.destination)
                statistics.neighborSolicitationsReceived += 1
                receiveSolicitation(solicitation, ip: ip, from: sourceMAC)
            case ICMPv6Type.neighborAdvertisement:
                let advertisement = try NeighborAdvertisement.parse(
                    message, hopLimit: ip.hopLimit, source: ip.source, destination: ip.destination)
                statistics.neighborAdvertisementsReceived += 1
                receiveAdvertisement(advertisement, from: sourceMAC)
            case ICMPv6Type.routerAdvertisement:
                let advertisement = try RouterAdvertisement.parse(
                    message, hopLimit: ip.hopLimit, source: ip.source, destination: ip.destination)
                statistics.routerAdvertisementsReceived += 1
                receiveRouterAdvertisement(advertisement, from: ip.source)
            default:
                statistics.icmpv6Other += 1
            }
        } catch {
            statistics.icmpv6Errors.count(error)
        }
    }

    func receiveSolicitation(_ solicitation: NeighborSolicitation, ip: IPv6Header, from sourceMAC: MACAddress) {
        let target = solicitation.target
        let ours = isConfiguredIPv6(target)
        if ip.source.isUnspecified {
            // Another host's duplicate address detection for an address we use or try.
            if ours, addressStates[target] == .tentative { markDuplicate(target, how: "a probe for it") }
            if ours, addressStates[target] == .preferred, answersForAddress() {
                // RFC 4862 5.4.3: a defender answers to all-nodes.
                sendNeighborAdvertisement(
                    target: target, to: .allNodes, mac: IPAddress.allNodes.multicastMAC, solicited: false)
            }
            return
        }
        // RFC 4861 7.2.3: the solicitation teaches us its sender's MAC, so that our answer
        // (and the connection that follows) need not ask in return.
        if let mac = solicitation.sourceLinkLayer, ours {
            learnNeighbour(ip.source, mac: mac, create: true)
        }
        guard ours, addressStates[target] != .duplicate, answersForAddress() else { return }
        sendNeighborAdvertisement(
            target: target, to: ip.source, mac: solicitation.sourceLinkLayer ?? sourceMAC, solicited: true)
    }

    func receiveAdvertisement(_ advertisement: NeighborAdvertisement, from sourceMAC: MACAddress) {
        let target = advertisement.target
        if isConfiguredIPv6(target) {
            if advertisement.targetLinkLayer != macAddress {
                markDuplicate(target, how: "an advertisement from \(advertisement.targetLinkLayer ?? sourceMAC)")
            }
            return
        }
        // RFC 4861 7.2.5: an advertisement updates a neighbour we asked for; it creates none.
        let mac = advertisement.targetLinkLayer ?? sourceMAC
        learnNeighbour(target, mac: mac, create: false)
    }

    func receiveRouterAdvertisement(_ advertisement: RouterAdvertisement, from router: IPAddress) {
        if let mac = advertisement.sourceLinkLayer { learnNeighbour(router, mac: mac, create: true) }
        guard configuration.ipv6?.gateway == nil else { return }
        if advertisement.routerLifetime == 0 {
            if advertisedRouter?.address == router { advertisedRouter = nil }
            return
        }
        advertisedRouter = (router, now + .seconds(UInt64(advertisement.routerLifetime)))
    }

    /// Learns (or, with `create` false, only updates) a neighbour of either family, sends
    /// what waited for it, and tells the process's other instances; true when it is known.
    @discardableResult
    func learnNeighbour(_ address: IPAddress, mac: MACAddress, create: Bool) -> Bool {
        let known = arp.learn(address, mac: mac, now: now, create: create) { frame in
            flushPending(frame, to: mac)
        }
        if known { sharedNeighbours?.publish(address, mac) }
        return known
    }

    func markDuplicate(_ address: IPAddress, how: String) {
        guard addressStates[address] != .duplicate else { return }
        addressStates[address] = .duplicate
        statistics.duplicateAddresses += 1
        log("IPv6 address \(address) is in use by another host (\(how)): no longer used")
    }

    // MARK: Duplicate address detection

    /// Probes each of our addresses once (RFC 4862 5.4.2: a solicitation from `::` to the
    /// address's solicited-node group, no link-layer option) and waits `addressDetectionWait`.
    func startAddressDetection() {
        var addresses = [linkLocalAddress]
        if let global = configuration.ipv6?.address { addresses.append(global) }
        if configuration.kernelSharesAddress {
            // The kernel's addresses: it detected duplicates before it took them.
            for address in addresses { addressStates[address] = .preferred }
            return
        }
        guard answersForAddress() else { return }
        for address in addresses where addressStates[address] == nil {
            addressStates[address] = .tentative
            sendSolicitation(
                target: address, from: .unspecified, to: address.solicitedNode, sourceLinkLayer: nil)
        }
        addressDetectionDeadline = now + Self.addressDetectionWait
    }

    /// Nobody answered the probes: the tentative addresses are ours.
    func finishAddressDetection() {
        addressDetectionDeadline = .never
        for (address, state) in addressStates where state == .tentative { addressStates[address] = .preferred }
    }

    // MARK: Output

    /// Asks who has `address`: to its solicited-node group, from our address on the link.
    func sendNeighborSolicitation(for address: IPAddress) {
        // From the address our packets to it carry (or link-local, which every neighbour reaches).
        let source = (try? sourceAddress(for: address)) ?? linkLocalAddress
        sendSolicitation(target: address, from: source, to: address.solicitedNode, sourceLinkLayer: macAddress)
    }

    func sendSolicitation(
        target: IPAddress, from source: IPAddress, to destination: IPAddress, sourceLinkLayer: MACAddress?
    ) {
        sendICMPv6(to: destination, from: source, mac: destination.multicastMAC, hopLimit: 255) { buffer in
            NeighborSolicitation.write(
                to: buffer, target: target, sourceLinkLayer: sourceLinkLayer, source: source, destination: destination)
        }
        statistics.neighborSolicitationsSent += 1
    }

    func sendNeighborAdvertisement(target: IPAddress, to destination: IPAddress, mac: MACAddress, solicited: Bool) {
        sendICMPv6(to: destination, from: target, mac: mac, hopLimit: 255) { buffer in
            NeighborAdvertisement.write(
                to: buffer, router: false, solicited: solicited, override: true, target: target,
                targetLinkLayer: macAddress, source: target, destination: destination)
        }
        statistics.neighborAdvertisementsSent += 1
    }

    func sendEchoReply6(
        to destination: IPAddress, from source: IPAddress, mac: MACAddress, request: ICMPv6Echo,
        data: UnsafeRawBufferPointer
    ) {
        sendICMPv6(to: destination, from: source, mac: mac, hopLimit: 64) { buffer in
            ICMPv6Echo.writeReply(to: buffer, for: request, payload: data, source: source, destination: destination)
        }
        statistics.icmpv6EchoRepliesSent += 1
    }

    /// One ICMPv6 message in one frame; `write` fills the message and returns its length.
    func sendICMPv6(
        to destination: IPAddress, from source: IPAddress, mac: MACAddress, hopLimit: UInt8,
        write: (UnsafeMutableRawBufferPointer) -> Int
    ) {
        guard let buffer = io.nextTransmitBuffer() else {
            statistics.transmitRingFull += 1
            return
        }
        let length = write(UnsafeMutableRawBufferPointer(rebasing: buffer[Self.tcp6Offset...]))
        guard length > 0 else { return }
        IPv6Header.write(
            to: UnsafeMutableRawBufferPointer(rebasing: buffer[Self.ipOffset...]), source: source,
            destination: destination, nextHeader: IPProtocol.icmpv6, payloadLength: length, hopLimit: hopLimit)
        EthernetHeader(destination: mac, source: macAddress, etherType: EtherType.ipv6).write(to: buffer)
        commitFrame(buffer, length: Self.tcp6Offset + length)
        statistics.framesSent += 1
    }
}
