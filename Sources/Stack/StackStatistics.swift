import Wire

/// How many packets one layer refused, by `WireError`.
public struct WireErrorCounts: Hashable, Sendable {
    public var truncated = 0
    public var badLength = 0
    public var badVersion = 0
    public var badChecksum = 0
    public var fragmented = 0
    public var badOption = 0
    public var unsupported = 0
    public init() {}

    /// Counts one refusal.
    public mutating func count(_ error: WireError) {
        switch error {
        case .truncated: truncated += 1
        case .badLength: badLength += 1
        case .badVersion: badVersion += 1
        case .badChecksum: badChecksum += 1
        case .fragmented: fragmented += 1
        case .badOption: badOption += 1
        case .unsupported: unsupported += 1
        }
    }

    /// All refusals together.
    public var total: Int { truncated + badLength + badVersion + badChecksum + fragmented + badOption + unsupported }
}

/// Counters of one stack instance: what it received, sent, answered and every reason it dropped.
public struct StackStatistics: Hashable, Sendable {
    public var framesReceived = 0
    public var framesSent = 0
    /// Ethernet frames refused by the parser (short, VLAN-tagged, 802.3 length field).
    public var ethernetErrors = WireErrorCounts()
    /// Frames addressed to another unicast MAC.
    public var notOurMAC = 0
    /// EtherTypes other than IPv4 and ARP.
    public var unknownEtherType = 0
    public var arpErrors = WireErrorCounts()
    public var ipv4Errors = WireErrorCounts()
    public var tcpErrors = WireErrorCounts()
    public var icmpErrors = WireErrorCounts()
    /// IPv4 packets for an address other than ours (broadcast included).
    public var notOurAddress = 0
    /// IP protocols other than TCP and ICMP.
    public var unknownIPProtocol = 0
    public var tcpSegmentsReceived = 0
    /// Segments whose checksum the link had verified (or a local kernel peer left partial).
    public var tcpChecksumsTrusted = 0
    public var tcpSegmentsSent = 0
    public var icmpEchoRequests = 0
    public var icmpEchoRepliesSent = 0
    /// ICMP messages other than echo requests (counted, not acted on).
    public var icmpOther = 0
    public var arpRequestsReceived = 0
    public var arpRepliesReceived = 0
    public var arpRepliesSent = 0
    public var arpRequestsSent = 0
    /// ARP packets neither for us nor about a neighbour we know.
    public var arpIgnored = 0
    /// Gratuitous ARP packets seen (sender address == target address).
    public var arpGratuitous = 0
    /// ARP packets from another host claiming our address.
    public var arpConflicts = 0
    /// Packets that waited for ARP and went out once the address resolved.
    public var pendingFlushed = 0
    /// Packets dropped because their next hop never answered ARP.
    public var arpResolutionFailures = 0
    /// Packets dropped because the pending queue (per address or pool) was full.
    public var pendingQueueOverflow = 0
    /// Packets dropped because the ARP cache had no room for another neighbour.
    public var arpCacheFull = 0
    /// Packets with no route to their destination.
    public var noRoute = 0
    /// Frames dropped because the transmit ring was full.
    public var transmitRingFull = 0
    /// TCP segments left to the process that owns their port (`PortClaims`, after fork).
    public var segmentsForOtherProcesses = 0
    /// ARP requests and ICMP echo requests left to the primary process to answer.
    public var leftToPrimary = 0
    /// ARP requests, ICMP echo requests and neighbour solicitations for an address the kernel
    /// has too (shared mode): the kernel answers them.
    public var leftToKernel = 0
    /// SYNs for ports whose listeners did not accept yet, parked for the first that does (and
    /// those dropped because every parking slot was taken).
    public var synsParked = 0
    public var synsParkingFull = 0
    /// Listening ports taken over from a process that no longer runs.
    public var portTakeovers = 0
    /// IPv6 packets refused by the parser (fragments and routing headers included), and
    /// ICMPv6 and neighbour discovery messages that failed their checks.
    public var ipv6Errors = WireErrorCounts()
    public var icmpv6Errors = WireErrorCounts()
    /// IPv6 frames while no IPv6 address is configured.
    public var ipv6Disabled = 0
    /// Extension headers skipped on the way to an upper-layer header.
    public var ipv6ExtensionHeaders = 0
    public var icmpv6EchoRequests = 0
    public var icmpv6EchoRepliesSent = 0
    /// ICMPv6 messages other than echo and neighbour discovery (counted, not acted on).
    public var icmpv6Other = 0
    public var neighborSolicitationsReceived = 0
    public var neighborSolicitationsSent = 0
    public var neighborAdvertisementsReceived = 0
    public var neighborAdvertisementsSent = 0
    public var routerAdvertisementsReceived = 0
    /// Our IPv6 addresses that duplicate address detection found in use by another host.
    public var duplicateAddresses = 0
    public init() {}
}

extension StackStatistics {
    /// Frames refused as malformed at any layer.
    public var malformed: Int {
        ethernetErrors.total + arpErrors.total + ipv4Errors.total + tcpErrors.total + icmpErrors.total
            + ipv6Errors.total + icmpv6Errors.total
    }

    /// Everything received and not used, for whatever reason.
    public var dropped: Int {
        malformed + notOurMAC + unknownEtherType + notOurAddress + unknownIPProtocol + arpIgnored
            + segmentsForOtherProcesses + ipv6Disabled
    }

    /// One line of `key=value` pairs for logs and test scripts.
    public var summary: String {
        "frames_in=\(framesReceived) frames_out=\(framesSent) tcp_in=\(tcpSegmentsReceived) tcp_out=\(tcpSegmentsSent)"
            + " tcp_checksums_trusted=\(tcpChecksumsTrusted)"
            + " dropped=\(dropped) malformed=\(malformed) ethernet_errors=\(ethernetErrors.total)"
            + " ipv4_errors=\(ipv4Errors.total) ipv4_bad_checksum=\(ipv4Errors.badChecksum)"
            + " ipv4_fragments=\(ipv4Errors.fragmented) tcp_errors=\(tcpErrors.total)"
            + " tcp_bad_checksum=\(tcpErrors.badChecksum) tcp_bad_option=\(tcpErrors.badOption)"
            + " unknown_protocol=\(unknownIPProtocol) not_our_mac=\(notOurMAC) not_our_address=\(notOurAddress)"
            + " icmp_echo_replies=\(icmpEchoRepliesSent) arp_requests_in=\(arpRequestsReceived)"
            + " arp_replies_sent=\(arpRepliesSent) arp_pending_flushed=\(pendingFlushed)"
            + " arp_failures=\(arpResolutionFailures) no_route=\(noRoute) tx_ring_full=\(transmitRingFull)"
            + " other_process_segments=\(segmentsForOtherProcesses) left_to_primary=\(leftToPrimary)"
            + " left_to_kernel=\(leftToKernel)"
            + " syns_parked=\(synsParked) syns_parking_full=\(synsParkingFull)"
            + " port_takeovers=\(portTakeovers) ipv6_errors=\(ipv6Errors.total) icmpv6_errors=\(icmpv6Errors.total)"
            + " icmpv6_echo_replies=\(icmpv6EchoRepliesSent) ns_in=\(neighborSolicitationsReceived)"
            + " na_sent=\(neighborAdvertisementsSent) duplicate_addresses=\(duplicateAddresses)"
    }
}
