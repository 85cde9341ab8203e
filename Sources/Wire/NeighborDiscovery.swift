// Neighbor Discovery (RFC 4861): the IPv6 replacement for ARP, plus router discovery.
//
// Every parser here applies the RFC's receive-side validity checks except the checksum,
// which needs the whole message and its addresses and is verified by `ICMPv6Header.parse`;
// the caller does both. Errors: `.truncated` for a message shorter than its fixed part,
// `.badOption` for an option of length 0 or one running past the message, `.unsupported`
// for a message that is well formed but invalid (wrong type, code not 0, hop limit not
// 255 — proof it was not forwarded — or one of the semantic rules each parser lists).

/// Neighbor Discovery option types (RFC 4861 4.6).
public enum NDOptionType {
    public static let sourceLinkLayerAddress: UInt8 = 1
    public static let targetLinkLayerAddress: UInt8 = 2
    public static let prefixInformation: UInt8 = 3
    public static let redirectedHeader: UInt8 = 4
    public static let mtu: UInt8 = 5
}

/// Walks the options from `offset` to the end of `message`, handing each option's type and
/// bytes (its type and length bytes included) to `body`.
private func forEachNDOption(
    in message: UnsafeRawBufferPointer, from offset: Int,
    _ body: (UInt8, UnsafeRawBufferPointer) throws(WireError) -> Void
) throws(WireError) {
    var offset = offset
    while offset < message.count {
        guard message.count - offset >= 2 else { throw .badOption }
        let optionLength = Int(message.load8(at: offset + 1)) * 8
        guard optionLength > 0, optionLength <= message.count - offset else { throw .badOption }
        try body(message.load8(at: offset), message.slice(offset..<offset + optionLength))
        offset += optionLength
    }
}

/// The MAC in a link-layer address option, or nil when the option is not Ethernet-sized
/// (another link type's, to be ignored).
private func linkLayerAddress(_ option: UnsafeRawBufferPointer) -> MACAddress? {
    option.count == 8 ? MACAddress(loadingFrom: option, at: 2) : nil
}

/// Writes an 8-byte link-layer address option of `type` at `offset`.
private func storeLinkLayerOption(
    _ type: UInt8, _ mac: MACAddress, to buffer: UnsafeMutableRawBufferPointer, at offset: Int
) {
    buffer.store8(type, at: offset)
    buffer.store8(1, at: offset + 1)
    mac.store(to: buffer, at: offset + 2)
}

/// Checks what every ND message shares: hop limit 255, the type, code 0, the fixed length.
private func checkNDCommon(
    _ message: UnsafeRawBufferPointer, type: UInt8, minimumLength: Int, hopLimit: UInt8
) throws(WireError) {
    guard message.count >= minimumLength else { throw .truncated }
    guard hopLimit == 255, message.load8(at: 0) == type, message.load8(at: 1) == 0 else { throw .unsupported }
}

/// ff02::1:ff00:0/104, the solicited-node multicast prefix.
private let solicitedNodePrefix = IPAddress(high: 0xFF02 << 48, low: 0x0000_0001_FF00_0000)

/// A Neighbor Solicitation (RFC 4861 4.3): who has `target`?
public struct NeighborSolicitation: Hashable, Sendable {
    /// Bytes before the options.
    public static let fixedLength = 24

    public var target: IPAddress
    /// The sender's MAC, absent in duplicate address detection (source `::`).
    public var sourceLinkLayer: MACAddress?

    public init(target: IPAddress, sourceLinkLayer: MACAddress? = nil) {
        self.target = target
        self.sourceLinkLayer = sourceLinkLayer
    }

    /// Parses and validates a solicitation (RFC 4861 7.1.1); the checksum is not checked
    /// here (see `ICMPv6Header.parse`). Beyond the shared checks, `.unsupported` for a
    /// multicast target, and for a solicitation from `::` that is not to a solicited-node
    /// group or that carries a source link-layer address option.
    public static func parse(
        _ message: UnsafeRawBufferPointer, hopLimit: UInt8, source: IPAddress, destination: IPAddress
    ) throws(WireError) -> NeighborSolicitation {
        try checkNDCommon(
            message, type: ICMPv6Type.neighborSolicitation, minimumLength: fixedLength, hopLimit: hopLimit)
        let target = IPAddress.load(from: message, at: 8)
        guard !target.isMulticast else { throw .unsupported }
        var sourceLinkLayer: MACAddress? = nil
        var sawSourceOption = false
        try forEachNDOption(in: message, from: fixedLength) { type, option throws(WireError) in
            guard type == NDOptionType.sourceLinkLayerAddress else { return }
            sawSourceOption = true
            if sourceLinkLayer == nil { sourceLinkLayer = linkLayerAddress(option) }
        }
        if source == .unspecified {
            // Duplicate address detection: only to the target's group, and with no address
            // to learn, since the sender does not own one yet.
            guard destination.hasPrefix(solicitedNodePrefix, length: 104), !sawSourceOption else {
                throw .unsupported
            }
        }
        return NeighborSolicitation(target: target, sourceLinkLayer: sourceLinkLayer)
    }

    /// Writes a solicitation for `target` with its checksum; returns the ICMPv6 length
    /// (24, or 32 with the option), or 0 if `buffer` is too small. Pass a nil
    /// `sourceLinkLayer` (and source `::`) for duplicate address detection.
    @discardableResult
    public static func write(
        to buffer: UnsafeMutableRawBufferPointer, target: IPAddress, sourceLinkLayer: MACAddress?,
        source: IPAddress, destination: IPAddress
    ) -> Int {
        let total = fixedLength + (sourceLinkLayer == nil ? 0 : 8)
        guard buffer.count >= total else { return 0 }
        buffer.store32(UInt32(ICMPv6Type.neighborSolicitation) << 24, at: 0)
        buffer.store32(0, at: 4)
        target.store(to: buffer, at: 8)
        if let sourceLinkLayer {
            storeLinkLayerOption(NDOptionType.sourceLinkLayerAddress, sourceLinkLayer, to: buffer, at: fixedLength)
        }
        ICMPv6Header.fillChecksum(buffer, length: total, source: source, destination: destination)
        return total
    }
}

/// A Neighbor Advertisement (RFC 4861 4.4): `target` is at `targetLinkLayer`.
public struct NeighborAdvertisement: Hashable, Sendable {
    /// Bytes before the options.
    public static let fixedLength = 24

    /// R: the sender is a router.
    public var router: Bool
    /// S: an answer to a solicitation (confirms reachability).
    public var solicited: Bool
    /// O: replace a cached link-layer address.
    public var override: Bool
    public var target: IPAddress
    public var targetLinkLayer: MACAddress?

    public init(
        router: Bool = false, solicited: Bool, override: Bool, target: IPAddress, targetLinkLayer: MACAddress? = nil
    ) {
        self.router = router
        self.solicited = solicited
        self.override = override
        self.target = target
        self.targetLinkLayer = targetLinkLayer
    }

    /// Parses and validates an advertisement (RFC 4861 7.1.2); the checksum is not checked
    /// here (see `ICMPv6Header.parse`). Beyond the shared checks, `.unsupported` for a
    /// multicast target and for a solicited advertisement sent to a multicast address.
    public static func parse(
        _ message: UnsafeRawBufferPointer, hopLimit: UInt8, source: IPAddress, destination: IPAddress
    ) throws(WireError) -> NeighborAdvertisement {
        try checkNDCommon(
            message, type: ICMPv6Type.neighborAdvertisement, minimumLength: fixedLength, hopLimit: hopLimit)
        let flags = message.load8(at: 4)
        let target = IPAddress.load(from: message, at: 8)
        guard !target.isMulticast else { throw .unsupported }
        let solicited = flags & 0x40 != 0
        // An answer goes to the soliciting node alone.
        guard !(solicited && destination.isMulticast) else { throw .unsupported }
        var targetLinkLayer: MACAddress? = nil
        try forEachNDOption(in: message, from: fixedLength) { type, option throws(WireError) in
            if type == NDOptionType.targetLinkLayerAddress, targetLinkLayer == nil {
                targetLinkLayer = linkLayerAddress(option)
            }
        }
        return NeighborAdvertisement(
            router: flags & 0x80 != 0, solicited: solicited, override: flags & 0x20 != 0, target: target,
            targetLinkLayer: targetLinkLayer)
    }

    /// Writes an advertisement for `target` with its checksum; returns the ICMPv6 length
    /// (24, or 32 with the option), or 0 if `buffer` is too small.
    @discardableResult
    public static func write(
        to buffer: UnsafeMutableRawBufferPointer, router: Bool, solicited: Bool, override: Bool, target: IPAddress,
        targetLinkLayer: MACAddress?, source: IPAddress, destination: IPAddress
    ) -> Int {
        let total = fixedLength + (targetLinkLayer == nil ? 0 : 8)
        guard buffer.count >= total else { return 0 }
        buffer.store32(UInt32(ICMPv6Type.neighborAdvertisement) << 24, at: 0)
        let flags: UInt8 = (router ? 0x80 : 0) | (solicited ? 0x40 : 0) | (override ? 0x20 : 0)
        buffer.store32(UInt32(flags) << 24, at: 4)
        target.store(to: buffer, at: 8)
        if let targetLinkLayer {
            storeLinkLayerOption(NDOptionType.targetLinkLayerAddress, targetLinkLayer, to: buffer, at: fixedLength)
        }
        ICMPv6Header.fillChecksum(buffer, length: total, source: source, destination: destination)
        return total
    }
}

/// A Router Solicitation (RFC 4861 4.1): a host asking routers to advertise now. Only
/// written, since a host ignores other hosts' solicitations.
public enum RouterSolicitation {
    /// Bytes before the options.
    public static let fixedLength = 8

    /// Writes a solicitation with its checksum; returns the ICMPv6 length (8, or 16 with
    /// the option), or 0 if `buffer` is too small. `sourceLinkLayer` must be nil when
    /// `source` is `::` (RFC 4861 4.1).
    @discardableResult
    public static func write(
        to buffer: UnsafeMutableRawBufferPointer, sourceLinkLayer: MACAddress?, source: IPAddress,
        destination: IPAddress
    ) -> Int {
        let total = fixedLength + (sourceLinkLayer == nil ? 0 : 8)
        guard buffer.count >= total else { return 0 }
        buffer.store32(UInt32(ICMPv6Type.routerSolicitation) << 24, at: 0)
        buffer.store32(0, at: 4)
        if let sourceLinkLayer {
            storeLinkLayerOption(NDOptionType.sourceLinkLayerAddress, sourceLinkLayer, to: buffer, at: fixedLength)
        }
        ICMPv6Header.fillChecksum(buffer, length: total, source: source, destination: destination)
        return total
    }
}

/// A Router Advertisement (RFC 4861 4.2), with the options a host uses. Only the first
/// usable prefix is kept, so parsing needs no storage; `prefixCount` says if there were more.
public struct RouterAdvertisement: Hashable, Sendable {
    /// Bytes before the options.
    public static let fixedLength = 16

    /// Hop limit for outgoing packets; 0 means unspecified by this router.
    public var currentHopLimit: UInt8
    /// M: addresses come from DHCPv6.
    public var managed: Bool
    /// O: other configuration comes from DHCPv6.
    public var other: Bool
    /// Seconds this router is a default router for; 0 means it is not one.
    public var routerLifetime: UInt16
    /// Milliseconds; 0 means unspecified.
    public var reachableTime: UInt32
    /// Milliseconds between solicitations; 0 means unspecified.
    public var retransmitTimer: UInt32
    public var sourceLinkLayer: MACAddress?
    /// The link MTU, when advertised.
    public var mtu: UInt32?
    /// The first prefix information option with L or A set, a prefix length of at most
    /// 128 and a prefix that is not link-local (RFC 4861 6.3.4 and RFC 4862 5.5.3 ignore those).
    public var prefix: IPAddress?
    public var prefixLength: Int
    /// L: the prefix is on-link.
    public var prefixOnLink: Bool
    /// A: addresses may be formed from the prefix (SLAAC).
    public var prefixAutonomous: Bool
    /// Seconds; 0xffffffff is infinity.
    public var validLifetime: UInt32
    /// Seconds; 0xffffffff is infinity.
    public var preferredLifetime: UInt32
    /// Prefix information options in the message, kept or not.
    public var prefixCount: Int

    public init(
        currentHopLimit: UInt8 = 0, managed: Bool = false, other: Bool = false, routerLifetime: UInt16 = 0,
        reachableTime: UInt32 = 0, retransmitTimer: UInt32 = 0, sourceLinkLayer: MACAddress? = nil,
        mtu: UInt32? = nil, prefix: IPAddress? = nil, prefixLength: Int = 0, prefixOnLink: Bool = false,
        prefixAutonomous: Bool = false, validLifetime: UInt32 = 0, preferredLifetime: UInt32 = 0, prefixCount: Int = 0
    ) {
        self.currentHopLimit = currentHopLimit
        self.managed = managed
        self.other = other
        self.routerLifetime = routerLifetime
        self.reachableTime = reachableTime
        self.retransmitTimer = retransmitTimer
        self.sourceLinkLayer = sourceLinkLayer
        self.mtu = mtu
        self.prefix = prefix
        self.prefixLength = prefixLength
        self.prefixOnLink = prefixOnLink
        self.prefixAutonomous = prefixAutonomous
        self.validLifetime = validLifetime
        self.preferredLifetime = preferredLifetime
        self.prefixCount = prefixCount
    }

    /// Parses and validates an advertisement (RFC 4861 6.1.2); the checksum is not checked
    /// here (see `ICMPv6Header.parse`). Beyond the shared checks, `.unsupported` when the
    /// source is not link-local. Options of the wrong size for their type are ignored.
    public static func parse(
        _ message: UnsafeRawBufferPointer, hopLimit: UInt8, source: IPAddress, destination: IPAddress
    ) throws(WireError) -> RouterAdvertisement {
        try checkNDCommon(
            message, type: ICMPv6Type.routerAdvertisement, minimumLength: fixedLength, hopLimit: hopLimit)
        // Routers are identified by their link-local address, so nothing else may speak for one.
        guard source.isLinkLocal else { throw .unsupported }
        let flags = message.load8(at: 5)
        var advertisement = RouterAdvertisement(
            currentHopLimit: message.load8(at: 4), managed: flags & 0x80 != 0, other: flags & 0x40 != 0,
            routerLifetime: message.load16(at: 6), reachableTime: message.load32(at: 8),
            retransmitTimer: message.load32(at: 12))
        try forEachNDOption(in: message, from: fixedLength) { type, option throws(WireError) in
            switch type {
            case NDOptionType.sourceLinkLayerAddress:
                if advertisement.sourceLinkLayer == nil { advertisement.sourceLinkLayer = linkLayerAddress(option) }
            case NDOptionType.mtu:
                if option.count == 8, advertisement.mtu == nil { advertisement.mtu = option.load32(at: 4) }
            case NDOptionType.prefixInformation:
                advertisement.prefixCount += 1
                guard option.count == 32, advertisement.prefix == nil else { return }
                let length = Int(option.load8(at: 2))
                let prefixFlags = option.load8(at: 3)
                let prefix = IPAddress.load(from: option, at: 16)
                guard length <= 128, prefixFlags & 0xC0 != 0, !prefix.isLinkLocal else { return }
                advertisement.prefix = prefix
                advertisement.prefixLength = length
                advertisement.prefixOnLink = prefixFlags & 0x80 != 0
                advertisement.prefixAutonomous = prefixFlags & 0x40 != 0
                advertisement.validLifetime = option.load32(at: 4)
                advertisement.preferredLifetime = option.load32(at: 8)
            default:
                break  // unknown options are skipped (RFC 4861 4.6)
            }
        }
        return advertisement
    }
}
