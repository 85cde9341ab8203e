import Simulation
import TCP
import Testing
import Wire

/// A peer that disappears mid-transfer: the sender gives up with ETIMEDOUT after the
/// configured number of retransmissions, and the time it takes follows the backoff.
@Suite struct VanishingPeerTests {
    @Test(arguments: [3, 6])
    func senderTimesOutWithinConfiguredRetries(retries: Int) throws {
        var configuration = TCPConfiguration()
        configuration.maximumRetransmissions = retries
        let network = SimulatedNetwork(seed: 5)
        let client = SimulatedTCPHost(address: IPv4Address(10, 0, 0, 1), configuration: configuration)
        let server = SimulatedTCPHost(address: IPv4Address(10, 0, 0, 2), configuration: configuration)
        network.connect(client, server, LinkProfile(delay: .milliseconds(5)))
        let transfer = try BulkTransfer(client: client, server: server, bytesEachWay: 64 << 20, seed: 5)
        // Let data flow, then cut the wire in both directions.
        network.run(until: .zero + .seconds(2))
        #expect(transfer.client.received > 0 && transfer.server.received > 0)
        let cut = LinkProfile(delay: .milliseconds(5), lossRate: 1.0)
        network.setProfile(from: client, to: server, cut)
        network.setProfile(from: server, to: client, cut)
        let cutAt = network.now
        let done = network.run(until: cutAt + .seconds(3600)) {
            transfer.client.error != nil && transfer.server.error != nil
        }
        #expect(done)
        #expect(transfer.client.error == .timedOut)
        #expect(transfer.server.error == .timedOut)
        let elapsed = network.now - cutAt
        // Backoff doubles from about the RTO (>= 200 ms) each time: the sum over `retries`
        // timeouts lies between 0.2 * (2^(retries+1) - 1) s and 120 s per step.
        let lower = Interval.milliseconds(200 * ((1 << (retries + 1)) - 1))
        #expect(elapsed >= lower, "gave up after \(elapsed)")
        #expect(elapsed <= .seconds(120 * UInt64(retries + 1)), "gave up after \(elapsed)")
        if let id = transfer.client.connection, let c = client.endpoint.connection(id) {
            #expect(c.statistics.retransmissionTimeouts == retries + 1)
        }
    }
}
