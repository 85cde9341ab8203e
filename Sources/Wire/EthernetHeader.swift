/// EtherType values this stack knows (IEEE 802.3 type field, host order).
public enum EtherType {
    /// Internet Protocol version 4.
    public static let ipv4: UInt16 = 0x0800
    /// Address Resolution Protocol.
    public static let arp: UInt16 = 0x0806
    /// IEEE 802.1Q VLAN tag; tagged frames are refused as `.unsupported`.
    public static let vlan: UInt16 = 0x8100
    /// IEEE 802.1ad service tag (QinQ); refused as `.unsupported`.
    public static let qinq: UInt16 = 0x88A8
    /// IPv6; parsed as a type but not handled by this stack.
    public static let ipv6: UInt16 = 0x86DD
}

/// An Ethernet II header: 14 bytes, no FCS (the NIC strips it).
public struct EthernetHeader: Hashable, Sendable {
    /// Bytes in the header.
    public static let length = 14

    public var destination: MACAddress
    public var source: MACAddress
    public var etherType: UInt16

    /// A header from its fields.
    public init(destination: MACAddress, source: MACAddress, etherType: UInt16) {
        self.destination = destination
        self.source = source
        self.etherType = etherType
    }

    /// Parses a frame into its header and payload (which may include trailing padding).
    ///
    /// Throws `.truncated` below 14 bytes and `.unsupported` for VLAN-tagged frames and
    /// 802.3 length-field frames (type < 0x0600); other types are returned for the caller
    /// to dispatch or count.
    public static func parse(
        _ frame: UnsafeRawBufferPointer
    ) throws(WireError) -> (header: EthernetHeader, payload: UnsafeRawBufferPointer) {
        guard frame.count >= length else { throw .truncated }
        let type = frame.load16(at: 12)
        guard type >= 0x0600, type != EtherType.vlan, type != EtherType.qinq else { throw .unsupported }
        let header = EthernetHeader(
            destination: MACAddress(loadingFrom: frame, at: 0),
            source: MACAddress(loadingFrom: frame, at: 6),
            etherType: type)
        return (header, frame.suffix(from: length))
    }

    /// Writes the 14-byte header at the start of `buffer`; returns 14, or 0 if it does not fit.
    @discardableResult
    public func write(to buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard buffer.count >= Self.length else { return 0 }
        destination.store(to: buffer, at: 0)
        source.store(to: buffer, at: 6)
        buffer.store16(etherType, at: 12)
        return Self.length
    }
}
