import PacketIO
import TCP
import Wire

/// The receive path: every frame is parsed layer by layer, and every refusal is counted.
extension NetworkStack {
    func receiveFrame(_ frame: UnsafeRawBufferPointer) {
        statistics.framesReceived += 1
        if let capture { capture.record(frame, direction: .inbound, timestamp: captureTime) }
        let ethernet: EthernetHeader
        let payload: UnsafeRawBufferPointer
        do {
            (ethernet, payload) = try EthernetHeader.parse(frame)
        } catch {
            statistics.ethernetErrors.count(error)
            return
        }
        guard ethernet.destination == macAddress || ethernet.destination.isMulticast else {
            statistics.notOurMAC += 1
            return
        }
        switch ethernet.etherType {
        case EtherType.ipv4: receiveIPv4(payload, from: ethernet.source, frame: frame)
        case EtherType.arp: receiveARP(payload)
        case EtherType.ipv6: receiveIPv6(payload, from: ethernet.source, frame: frame)
        default: statistics.unknownEtherType += 1
        }
    }

    func receiveIPv4(_ packet: UnsafeRawBufferPointer, from sourceMAC: MACAddress, frame: UnsafeRawBufferPointer) {
        let ip: IPv4Header
        let payload: UnsafeRawBufferPointer
        do {
            (ip, payload) = try IPv4Header.parse(packet)
        } catch {
            statistics.ipv4Errors.count(error)
            return
        }
        guard configuration.hasIPv4, ip.destination == configuration.address else {
            statistics.notOurAddress += 1
            return
        }
        switch ip.protocol {
        case IPProtocol.tcp:
            receiveTCP(payload, source: IPAddress(ip.source), destination: IPAddress(ip.destination), frame: frame)
        case IPProtocol.icmp:
            receiveICMP(payload, ip: ip, from: sourceMAC)
        default:
            statistics.unknownIPProtocol += 1
        }
    }

    /// A TCP segment of either family: parked for an accepting process, left to the process
    /// that owns its port, or handled here.
    func receiveTCP(
        _ segment: UnsafeRawBufferPointer, source: IPAddress, destination: IPAddress, frame: UnsafeRawBufferPointer
    ) {
        do {
            let (tcp, data) = try TCPHeader.parse(
                segment, source: source, destination: destination, verifyChecksum: !checksumVerified)
            if checksumVerified { statistics.tcpChecksumsTrusted += 1 }
            statistics.tcpSegmentsReceived += 1
            if let steering = flowSteering, tcp.flags.contains(.syn),
                !tcp.flags.contains(.ack) && !tcp.flags.contains(.rst),
                parksSYN(tcp, from: source, to: destination, frame: frame, steering: steering)
            {
                return
            }
            if let claims = portClaims, claims.isShared, !admits(tcp, from: source, to: destination, claims: claims) {
                statistics.segmentsForOtherProcesses += 1
                return
            }
            endpoint.handle(header: tcp, payload: data, source: source, destination: destination, now: now)
        } catch {
            statistics.tcpErrors.count(error)
        }
    }

    func receiveICMP(_ message: UnsafeRawBufferPointer, ip: IPv4Header, from sourceMAC: MACAddress) {
        let header: ICMPHeader
        do {
            header = try ICMPHeader.parse(message)
        } catch {
            statistics.icmpErrors.count(error)
            return
        }
        guard header.type == ICMPType.echoRequest else {
            statistics.icmpOther += 1
            return
        }
        let echo: ICMPEcho
        let data: UnsafeRawBufferPointer
        do {
            (echo, data) = try ICMPEcho.parse(message, verifyChecksum: false)
        } catch {
            statistics.icmpErrors.count(error)
            return
        }
        statistics.icmpEchoRequests += 1
        guard answersForAddress() else { return }
        sendEchoReply(to: ip.source, mac: sourceMAC, request: echo, data: data)
    }

    func receiveARP(_ payload: UnsafeRawBufferPointer) {
        guard configuration.hasIPv4 else {
            statistics.arpIgnored += 1
            return
        }
        let packet: ARPPacket
        do {
            packet = try ARPPacket.parse(payload)
        } catch {
            statistics.arpErrors.count(error)
            return
        }
        let ours = configuration.address
        if packet.operation == ARPPacket.request {
            statistics.arpRequestsReceived += 1
        } else {
            statistics.arpRepliesReceived += 1
        }
        if packet.senderIP == ours {
            // Someone else claims our address (or our own announcement looped back).
            if packet.senderMAC != macAddress { statistics.arpConflicts += 1 }
            return
        }
        if packet.senderIP == packet.targetIP { statistics.arpGratuitous += 1 }
        guard packet.senderIP != .any else {
            // An address probe (RFC 5227) teaches nothing; answer it below if it is for us.
            if packet.operation == ARPPacket.request && packet.targetIP == ours && answersForAddress() {
                replyARP(to: packet)
            }
            return
        }
        let forUs = packet.targetIP == ours
        // RFC 826: update a known sender always; add it only when the packet is aimed at us.
        let known = learnNeighbour(IPAddress(packet.senderIP), mac: packet.senderMAC, create: forUs)
        if packet.operation == ARPPacket.request && forUs {
            if answersForAddress() { replyARP(to: packet) }
        } else if !known {
            statistics.arpIgnored += 1
        }
    }
}
