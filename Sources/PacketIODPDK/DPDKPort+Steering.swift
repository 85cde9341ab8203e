import CDPDK
import Wire

extension DPDKPort {
    /// What instance i on queue i needs to pick source ports whose replies the port delivers
    /// to queue i (`ActiveOpenSteering.rss` in Stack): nil unless the port spreads flows by
    /// symmetric RSS. The key is the one `init` programmed; the redirection table is the
    /// round-robin one CDPDK writes (entry e holds queue e % queues), which is also what the
    /// drivers start with when they refuse the update (`redirectionTableResult` < 0).
    public var rssSteering: RSSSteering? {
        guard case .symmetricRSS = distribution else { return nil }
        var info = mtcp_dpdk_port_info()
        guard mtcp_dpdk_port_info(portID, &info) == 0 else { return nil }
        return Self.rssSteering(
            keyLength: Int(info.hash_key_size), redirectionEntries: Int(info.reta_size), queues: queues.count)
    }

    /// The steering of a port whose device reports `keyLength` key bytes (0: unknown, 40 used)
    /// and `redirectionEntries` table entries, spread over `queues`.
    public static func rssSteering(keyLength: Int, redirectionEntries: Int, queues: Int) -> RSSSteering? {
        RSSSteering(
            key: SymmetricRSSKey.bytes(length: keyLength > 0 ? keyLength : 40),
            redirection: RSSSteering.roundRobin(entries: redirectionEntries, queues: queues))
    }
}
