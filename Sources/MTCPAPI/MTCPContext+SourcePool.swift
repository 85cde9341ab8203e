import Stack
import TCP
import Wire

/// What mtcp_init_rss prepared for a context: the destination of its active opens and how
/// many ephemeral ports are this context's for it.
struct SourcePool {
    var destination: IPv4Address
    var port: UInt16
    /// Ephemeral ports whose replies from the destination come back to this context (all of
    /// them when the context does not share its link).
    var ports: Int
    /// False when the context shares a link whose spread cannot be predicted (the kernel's flow
    /// hash behind a TAP queue or a DPDK device without RSS): replies may reach a sibling.
    var steered: Bool
}

extension MTCPContext {
    /// Checks the source range and sizes this context's port pool towards `destination`:`port`.
    func prepareSourcePool(base: IPv4Address, count: Int, destination: IPv4Address, port: UInt16)
        -> Result<SourcePool, Errno>
    {
        let address = stack.configuration.address
        if base != .any {
            let first = UInt64(base.rawValue)
            let mine = UInt64(address.rawValue)
            guard mine >= first, mine < first + UInt64(count) else { return .failure(.EADDRNOTAVAIL) }
        }
        guard let steering = stack.activeOpenSteering, steering.constrains else {
            let total = Int(TCPEndpoint.ephemeralPorts.count)
            return .success(SourcePool(destination: destination, port: port, ports: total, steered: !sharesLink))
        }
        var ports = 0
        for candidate in TCPEndpoint.ephemeralPorts
        where steering.returns(local: address, localPort: candidate, remote: destination, remotePort: port) {
            ports += 1
        }
        guard ports > 0 else { return .failure(.EADDRNOTAVAIL) }
        return .success(SourcePool(destination: destination, port: port, ports: ports, steered: true))
    }
}
