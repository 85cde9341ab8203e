import Wire

// libFuzzer target: every Wire parser on hostile bytes. The first byte picks the parser (or
// the whole frame path), the rest is the input. A parser may refuse anything, but it must
// never trap, read outside the buffer (address sanitizer), or accept something that breaks
// what it promises: a payload inside the packet, lengths that add up, a header that writes
// back to the bytes it came from.


/// `inner` lies within `outer`.
func within(_ inner: UnsafeRawBufferPointer, _ outer: UnsafeRawBufferPointer) -> Bool {
    guard inner.count > 0 else { return true }
    guard let i = inner.baseAddress, let o = outer.baseAddress else { return false }
    return i >= o && i + inner.count <= o + outer.count
}

func fuzzIPv4(_ bytes: UnsafeRawBufferPointer) {
    guard let (ip, payload) = try? IPv4Header.parse(bytes) else { return }
    require(within(payload, bytes), "IPv4 payload inside the packet")
    require(ip.headerLength + payload.count == Int(ip.totalLength), "IPv4 lengths add up")
    fuzzUpper(ip.protocol, payload, source: IPAddress(ip.source), destination: IPAddress(ip.destination))
}

func fuzzIPv6(_ bytes: UnsafeRawBufferPointer) {
    guard let (ip, payload) = try? IPv6Header.parse(bytes) else { return }
    require(within(payload, bytes), "IPv6 payload inside the packet")
    if ip.upperProtocol == IPProtocol.noNextHeader {
        // Whatever follows No Next Header is ignored (RFC 8200 4.7).
        require(payload.isEmpty, "nothing after No Next Header")
    } else {
        require(ip.extensionHeaderLength + payload.count == Int(ip.payloadLength), "IPv6 lengths add up")
    }
    require(!ip.source.isIPv4 && !ip.destination.isIPv4, "no v4-mapped address on the wire")
    fuzzUpper(ip.upperProtocol, payload, source: ip.source, destination: ip.destination)
}

func fuzzUpper(_ proto: UInt8, _ payload: UnsafeRawBufferPointer, source: IPAddress, destination: IPAddress) {
    switch proto {
    case IPProtocol.tcp:
        // Checked and unchecked: the second reaches the option parser with any bytes.
        for verify in [true, false] {
            guard
                let (tcp, data) = try? TCPHeader.parse(
                    payload, source: source, destination: destination, verifyChecksum: verify)
            else { continue }
            require(within(data, payload), "TCP payload inside the segment")
            require(tcp.headerLength >= 20 && tcp.headerLength + data.count == payload.count, "TCP lengths add up")
        }
    case IPProtocol.icmp:
        _ = try? ICMPHeader.parse(payload, verifyChecksum: false)
        if let (_, data) = try? ICMPEcho.parse(payload, verifyChecksum: false) {
            require(within(data, payload), "echo data inside the message")
        }
    case IPProtocol.icmpv6:
        _ = try? ICMPv6Header.parse(payload, source: source, destination: destination, verifyChecksum: false)
        if let (_, data) = try? ICMPv6Echo.parse(
            payload, source: source, destination: destination, verifyChecksum: false)
        {
            require(within(data, payload), "echo data inside the message")
        }
        for hopLimit: UInt8 in [255, 64] {
            _ = try? NeighborSolicitation.parse(payload, hopLimit: hopLimit, source: source, destination: destination)
            _ = try? NeighborAdvertisement.parse(payload, hopLimit: hopLimit, source: source, destination: destination)
            _ = try? RouterAdvertisement.parse(payload, hopLimit: hopLimit, source: source, destination: destination)
        }
    default:
        break
    }
}

func fuzzFrame(_ bytes: UnsafeRawBufferPointer) {
    guard let (ethernet, payload) = try? EthernetHeader.parse(bytes) else { return }
    require(within(payload, bytes), "Ethernet payload inside the frame")
    switch ethernet.etherType {
    case EtherType.ipv4: fuzzIPv4(payload)
    case EtherType.ipv6: fuzzIPv6(payload)
    case EtherType.arp: _ = try? ARPPacket.parse(payload)
    default: break
    }
}

/// Text parsing: an address that parses prints as text that parses back to it.
func fuzzText(_ bytes: UnsafeRawBufferPointer) {
    let text = String(decoding: bytes.prefix(64), as: UTF8.self)
    if let address = IPAddress(text) {
        require(IPAddress(address.description) == address, "printed address parses back")
    }
    if let address = IPv4Address(text) {
        require(IPv4Address(address.description) == address, "printed IPv4 address parses back")
    }
}

/// Round trips: what the writers produce, the parsers accept and read back.
func fuzzRoundTrip(_ bytes: UnsafeRawBufferPointer) {
    guard bytes.count >= 36 else { return }
    let source = IPAddress.load(from: bytes, at: 0)
    let destination = IPAddress.load(from: bytes, at: 16)
    guard !source.isIPv4, !destination.isIPv4 else { return }
    let payloadLength = Int(bytes[32]) << 8 | Int(bytes[33])
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 40 + 65536, alignment: 8)
    defer { buffer.deallocate() }
    buffer.initializeMemory(as: UInt8.self, repeating: 0)
    let written = IPv6Header.write(
        to: buffer, source: source, destination: destination, nextHeader: IPProtocol.noNextHeader,
        payloadLength: payloadLength, hopLimit: bytes[34], trafficClass: bytes[35])
    require(written == 40, "IPv6 header written")
    let packet = UnsafeRawBufferPointer(rebasing: buffer[0..<(40 + payloadLength)])
    if payloadLength == 0 { return }
    guard let (ip, _) = try? IPv6Header.parse(packet) else {
        require(false, "a written IPv6 header parses")
        return
    }
    require(ip.source == source && ip.destination == destination, "IPv6 addresses read back")
    require(ip.hopLimit == bytes[34] && ip.trafficClass == bytes[35], "IPv6 fields read back")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWire(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let all = UnsafeRawBufferPointer(start: data, count: size)
    let rest = UnsafeRawBufferPointer(rebasing: all[1...])
    switch all[0] % 8 {
    case 0, 1: fuzzFrame(rest)
    case 2: fuzzIPv4(rest)
    case 3: fuzzIPv6(rest)
    case 4: _ = try? TCPOptions.parse(rest)
    case 5: fuzzText(rest)
    case 6: fuzzRoundTrip(rest)
    default: _ = try? ARPPacket.parse(rest)
    }
    return 0
}
