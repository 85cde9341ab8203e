/// An ARP packet for IPv4 over Ethernet (RFC 826): 28 bytes.
public struct ARPPacket: Hashable, Sendable {
    /// Bytes in an Ethernet/IPv4 ARP packet.
    public static let length = 28
    /// The `operation` of a request.
    public static let request: UInt16 = 1
    /// The `operation` of a reply.
    public static let reply: UInt16 = 2

    /// 1 request, 2 reply.
    public var operation: UInt16
    public var senderMAC: MACAddress
    public var senderIP: IPv4Address
    public var targetMAC: MACAddress
    public var targetIP: IPv4Address

    /// A packet from its fields.
    public init(
        operation: UInt16, senderMAC: MACAddress, senderIP: IPv4Address, targetMAC: MACAddress,
        targetIP: IPv4Address
    ) {
        self.operation = operation
        self.senderMAC = senderMAC
        self.senderIP = senderIP
        self.targetMAC = targetMAC
        self.targetIP = targetIP
    }

    /// Parses an ARP packet (the Ethernet payload; trailing padding is ignored).
    ///
    /// Throws `.truncated` below 28 bytes, `.unsupported` for a hardware type other than
    /// Ethernet (1), a protocol type other than IPv4, or an operation other than 1 or 2,
    /// and `.badLength` when the address lengths are not 6 and 4.
    public static func parse(_ packet: UnsafeRawBufferPointer) throws(WireError) -> ARPPacket {
        guard packet.count >= length else { throw .truncated }
        guard packet.load16(at: 0) == 1, packet.load16(at: 2) == EtherType.ipv4 else { throw .unsupported }
        guard packet.load8(at: 4) == 6, packet.load8(at: 5) == 4 else { throw .badLength }
        let operation = packet.load16(at: 6)
        guard operation == request || operation == reply else { throw .unsupported }
        return ARPPacket(
            operation: operation,
            senderMAC: MACAddress(loadingFrom: packet, at: 8),
            senderIP: IPv4Address(rawValue: packet.load32(at: 14)),
            targetMAC: MACAddress(loadingFrom: packet, at: 18),
            targetIP: IPv4Address(rawValue: packet.load32(at: 24)))
    }

    /// Writes the 28-byte packet; returns 28, or 0 if `buffer` is too small.
    @discardableResult
    public func write(to buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard buffer.count >= Self.length else { return 0 }
        buffer.store16(1, at: 0)
        buffer.store16(EtherType.ipv4, at: 2)
        buffer.store8(6, at: 4)
        buffer.store8(4, at: 5)
        buffer.store16(operation, at: 6)
        senderMAC.store(to: buffer, at: 8)
        buffer.store32(senderIP.rawValue, at: 14)
        targetMAC.store(to: buffer, at: 18)
        buffer.store32(targetIP.rawValue, at: 24)
        return Self.length
    }
}
