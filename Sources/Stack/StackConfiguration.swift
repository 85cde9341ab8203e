import TCP
import Wire

/// Everything one stack instance needs to know about its interface and its limits.
public struct StackConfiguration: Sendable {
    /// Our IPv4 address on the link.
    public var address: IPv4Address
    /// Length of the on-link prefix (24 for a /24).
    public var prefixLength: Int
    /// Where packets for off-link destinations go; nil: only the link is reachable.
    public var gateway: IPv4Address?
    /// Our global IPv6 address on the link and its on-link prefix (nil: IPv4 only; the
    /// link-local address from the MAC is ours whenever IPv6 is on).
    public var ipv6: IPv6Interface?
    /// Defaults for every TCP connection (per-socket options override some of them).
    public var tcp: TCPConfiguration
    /// How long an ARP entry is trusted before it is re-resolved.
    public var arpEntryLifetime: Interval = .seconds(60)
    /// Time between ARP requests for an address that has not answered.
    public var arpRetryInterval: Interval = .seconds(1)
    /// ARP requests sent for one resolution before its waiting packets are dropped.
    public var arpRetries: Int = 3
    /// Packets that may wait for one unresolved address.
    public var pendingPacketsPerAddress: Int = 32
    /// Packets that may wait for all unresolved addresses together (preallocated).
    public var pendingPoolSize: Int = 256
    /// Neighbours the ARP cache holds at most.
    public var arpCacheCapacity: Int = 1024
    /// Frames taken from the link per loop round.
    public var receiveBurst: Int = 64
    /// The kernel has our addresses on this interface too (shared mode, `KernelExclusion`): it
    /// answers ARP, echo and neighbour solicitations and has done duplicate address detection;
    /// we only resolve neighbours and carry our own TCP.
    public var kernelSharesAddress = false

    /// A configuration for `address`/`prefixLength`, optionally with a default gateway.
    public init(
        address: IPv4Address, prefixLength: Int, gateway: IPv4Address? = nil, tcp: TCPConfiguration = TCPConfiguration()
    ) {
        self.address = address
        self.prefixLength = prefixLength
        self.gateway = gateway
        self.tcp = tcp
    }

    /// The prefix as a bit mask in host order.
    public var netmask: UInt32 {
        let bits = max(0, min(prefixLength, 32))
        return bits == 0 ? 0 : ~UInt32(0) << UInt32(32 - bits)
    }

    /// True when `destination` is on our link.
    public func isOnLink(_ destination: IPv4Address) -> Bool {
        destination.rawValue & netmask == address.rawValue & netmask
    }

    /// True when an IPv4 address is configured (a stack may run IPv6 only).
    public var hasIPv4: Bool { address != .any }
}

/// The IPv6 side of an interface: a global (or unique local) address with its prefix, and
/// the default router when one is configured (else the first router that advertises itself).
public struct IPv6Interface: Hashable, Sendable {
    public var address: IPAddress
    public var prefixLength: Int
    public var gateway: IPAddress?

    public init(address: IPAddress, prefixLength: Int = 64, gateway: IPAddress? = nil) {
        self.address = address
        self.prefixLength = prefixLength
        self.gateway = gateway
    }

    /// True when `destination` is on the link: in our prefix, or link-local.
    public func isOnLink(_ destination: IPAddress) -> Bool {
        destination.isLinkLocal || destination.isMulticast || destination.hasPrefix(address, length: prefixLength)
    }
}
