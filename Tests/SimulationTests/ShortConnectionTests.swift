import Simulation
import TCP
import Testing
import Wire

/// Many short request/response connections between two simulated hosts.
@Suite struct ShortConnectionTests {
    static func run(
        connections: Int, concurrency: Int, profile: LinkProfile, backlog: Int = 128, seed: UInt64 = 3,
        configuration: TCPConfiguration = TCPConfiguration()
    ) throws -> (RequestResponseLoad, SimulatedTCPHost, SimulatedTCPHost, Bool) {
        let network = SimulatedNetwork(seed: seed)
        let client = SimulatedTCPHost(address: IPv4Address(10, 0, 0, 1), configuration: configuration, secret: seed)
        let server = SimulatedTCPHost(address: IPv4Address(10, 0, 0, 2), configuration: configuration, secret: ~seed)
        network.connect(client, server, profile)
        let load = try RequestResponseLoad(
            client: client, server: server, connections: connections, concurrency: concurrency, backlog: backlog,
            seed: seed)
        let finished = network.run(until: .zero + .seconds(600)) { load.isFinished }
        // Let the last FIN/ACK exchanges land.
        network.run(until: network.now + .seconds(5))
        return (load, client, server, finished)
    }

    @Test func thousandConcurrentShortConnectionsComplete() throws {
        let (load, client, server, finished) = try Self.run(
            connections: 1000, concurrency: 1000, profile: LinkProfile(delay: .milliseconds(2)))
        #expect(finished)
        #expect(load.counters.completed == 1000, "\(load.counters)")
        #expect(load.counters.failed == 0 && load.counters.corrupted == 0)
        // All 1000 SYNs arrive at once against a backlog of 128: SYN cookies answer the rest.
        #expect(server.endpoint.statistics.synCookiesSent > 0)
        #expect(server.endpoint.statistics.synCookiesAccepted == server.endpoint.statistics.synCookiesSent)
        #expect(client.endpoint.connectionCount == 0, "client connections linger")
    }

    @Test func thousandConcurrentShortConnectionsOverALossyLink() throws {
        let profile = LinkProfile(
            delay: .milliseconds(2), jitter: .microseconds(100), lossRate: 0.02, duplicateRate: 0.01,
            reorderRate: 0.05, corruptRate: 0.005, reorderDelay: .milliseconds(1))
        let (load, _, _, finished) = try Self.run(connections: 1000, concurrency: 1000, profile: profile, seed: 11)
        #expect(finished)
        #expect(load.counters.completed == 1000, "\(load.counters)")
        #expect(load.counters.failed == 0 && load.counters.corrupted == 0)
    }

    @Test func tenThousandConnectionsInARowReuseNothingStale() throws {
        let (load, _, server, finished) = try Self.run(
            connections: 10000, concurrency: 50, profile: LinkProfile(delay: .microseconds(100)))
        #expect(finished)
        #expect(load.counters.completed == 10000, "\(load.counters)")
        #expect(load.counters.failed == 0 && load.counters.corrupted == 0)
        #expect(server.endpoint.statistics.resetsSentForUnknownFlows == 0)
    }
}
