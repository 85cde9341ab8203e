import PacketIO
import TCP
import Wire

/// Builds a TCP segment's Ethernet, IP and TCP headers straight into the transmit ring.
struct FrameSink<IO: PacketIO>: TCPEndpointSink {
    unowned(unsafe) let stack: NetworkStack<IO>

    @inline(__always)
    mutating func send(_ segment: TCPSegment, flow: TCPFlow) {
        stack.transmit(segment, flow: flow)
    }
}

/// The send path: route, resolve, and write frames in place.
extension NetworkStack {
    static var ipOffset: Int { EthernetHeader.length }
    static var tcpOffset: Int { EthernetHeader.length + IPv4Header.minimumLength }
    static var tcp6Offset: Int { EthernetHeader.length + IPv6Header.length }

    func transmit(_ segment: TCPSegment, flow: TCPFlow) {
        let hop: IPAddress
        do {
            hop = try route(to: flow.remoteAddress)
        } catch {
            statistics.noRoute += 1
            return
        }
        if let mac = arp.lookup(hop) {
            guard let buffer = io.nextTransmitBuffer() else {
                statistics.transmitRingFull += 1
                return
            }
            let length = writeFrame(segment, flow: flow, destinationMAC: mac, into: buffer)
            guard length > 0 else { return }
            commitFrame(buffer, length: length)
            statistics.framesSent += 1
            statistics.tcpSegmentsSent += 1
            return
        }
        if let shared = sharedNeighbours, let mac = shared.lookup(hop) {
            // A sibling instance knows it: adopt the entry and send at once.
            arp.learn(hop, mac: mac, now: now, create: true) { frame in flushPending(frame, to: mac) }
            transmit(segment, flow: flow)
            return
        }
        // The MAC is unknown: the frame waits in the ARP pool, its destination patched later.
        let result = arp.enqueue(for: hop, now: now) { buffer in
            writeFrame(segment, flow: flow, destinationMAC: .zero, into: buffer)
        }
        switch result {
        case .queued(let start):
            statistics.tcpSegmentsSent += 1
            if start { requestResolution(of: hop) }
        case .overflow:
            statistics.pendingQueueOverflow += 1
        case .cacheFull:
            statistics.arpCacheFull += 1
        }
    }

    /// Writes one whole frame; returns its length, 0 if it does not fit. An IPv6 segment's
    /// checksum is always ours: the ports' offloads (DPDK's flags) are set up for IPv4 only.
    func writeFrame(
        _ segment: TCPSegment, flow: TCPFlow, destinationMAC: MACAddress, into buffer: UnsafeMutableRawBufferPointer
    ) -> Int {
        let ipv4 = flow.isIPv4
        let tcpOffset = ipv4 ? Self.tcpOffset : Self.tcp6Offset
        guard buffer.count > tcpOffset else { return 0 }
        let tcpLength = TCPHeader.write(
            to: UnsafeMutableRawBufferPointer(rebasing: buffer[tcpOffset...]), sourcePort: flow.localPort,
            destinationPort: flow.remotePort, sequenceNumber: segment.sequenceNumber.rawValue,
            acknowledgmentNumber: segment.acknowledgmentNumber.rawValue, flags: segment.flags,
            window: segment.window, options: segment.options, payload: segment.payload, segment.payloadTail,
            source: flow.localAddress, destination: flow.remoteAddress, checksum: !(ipv4 && transmitChecksumOffload))
        guard tcpLength > 0 else { return 0 }
        let ipArea = UnsafeMutableRawBufferPointer(rebasing: buffer[Self.ipOffset...])
        if let source = flow.localAddress.ipv4, let destination = flow.remoteAddress.ipv4 {
            identification &+= 1
            IPv4Header.write(
                to: ipArea, source: source, destination: destination, protocol: IPProtocol.tcp,
                payloadLength: tcpLength, identification: identification)
        } else {
            IPv6Header.write(
                to: ipArea, source: flow.localAddress, destination: flow.remoteAddress, nextHeader: IPProtocol.tcp,
                payloadLength: tcpLength)
        }
        EthernetHeader(
            destination: destinationMAC, source: macAddress, etherType: ipv4 ? EtherType.ipv4 : EtherType.ipv6
        )
        .write(to: buffer)
        return tcpOffset + tcpLength
    }

    /// Asks for the MAC of a next hop: ARP for IPv4, a neighbour solicitation for IPv6.
    func requestResolution(of address: IPAddress) {
        if let v4 = address.ipv4 {
            sendARPRequest(for: v4)
        } else {
            sendNeighborSolicitation(for: address)
        }
    }

    /// Sends a frame that waited for resolution, now that its next hop answered at `mac`.
    func flushPending(_ frame: UnsafeMutableRawBufferPointer, to mac: MACAddress) {
        // Only the destination changes; the frame keeps its EtherType (IPv4 or IPv6).
        let etherType = UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
        EthernetHeader(destination: mac, source: macAddress, etherType: etherType).write(to: frame)
        guard let buffer = io.nextTransmitBuffer() else {
            statistics.transmitRingFull += 1
            return
        }
        guard buffer.count >= frame.count else { return }
        buffer.copyMemory(from: UnsafeRawBufferPointer(frame))
        commitFrame(buffer, length: frame.count)
        statistics.framesSent += 1
        statistics.pendingFlushed += 1
    }

    func sendARPRequest(for address: IPv4Address) {
        statistics.arpRequestsSent += 1
        sendARP(
            ARPPacket(
                operation: ARPPacket.request, senderMAC: macAddress, senderIP: configuration.address,
                targetMAC: .zero, targetIP: address), to: .broadcast)
    }

    func replyARP(to request: ARPPacket) {
        statistics.arpRepliesSent += 1
        sendARP(
            ARPPacket(
                operation: ARPPacket.reply, senderMAC: macAddress, senderIP: configuration.address,
                targetMAC: request.senderMAC, targetIP: request.senderIP), to: request.senderMAC)
    }

    func sendARP(_ packet: ARPPacket, to destination: MACAddress) {
        guard let buffer = io.nextTransmitBuffer() else {
            statistics.transmitRingFull += 1
            return
        }
        EthernetHeader(destination: destination, source: macAddress, etherType: EtherType.arp).write(to: buffer)
        packet.write(to: UnsafeMutableRawBufferPointer(rebasing: buffer[EthernetHeader.length...]))
        // Pad to Ethernet's 60-byte minimum.
        let length = EthernetHeader.length + ARPPacket.length
        let padded = max(length, 60)
        if padded > length {
            UnsafeMutableRawBufferPointer(rebasing: buffer[length..<padded]).initializeMemory(
                as: UInt8.self, repeating: 0)
        }
        commitFrame(buffer, length: padded)
        statistics.framesSent += 1
    }

    func sendEchoReply(to address: IPv4Address, mac: MACAddress, request: ICMPEcho, data: UnsafeRawBufferPointer) {
        guard let buffer = io.nextTransmitBuffer() else {
            statistics.transmitRingFull += 1
            return
        }
        let icmpOffset = Self.tcpOffset
        let icmpLength = ICMPEcho.writeReply(
            to: UnsafeMutableRawBufferPointer(rebasing: buffer[icmpOffset...]), for: request, payload: data)
        guard icmpLength > 0 else { return }
        identification &+= 1
        IPv4Header.write(
            to: UnsafeMutableRawBufferPointer(rebasing: buffer[Self.ipOffset...]), source: configuration.address,
            destination: address, protocol: IPProtocol.icmp, payloadLength: icmpLength, identification: identification)
        EthernetHeader(destination: mac, source: macAddress, etherType: EtherType.ipv4).write(to: buffer)
        commitFrame(buffer, length: icmpOffset + icmpLength)
        statistics.framesSent += 1
        statistics.icmpEchoRepliesSent += 1
    }
}
