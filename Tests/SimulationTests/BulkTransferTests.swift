import Simulation
import TCP
import Testing
import Wire

/// End-to-end transfers between two simulated hosts running the real TCP on both sides.
@Suite struct BulkTransferTests {
    static let clientAddress = IPv4Address(10, 0, 0, 1)
    static let serverAddress = IPv4Address(10, 0, 0, 2)

    struct Outcome {
        var transfer: BulkTransfer
        var network: SimulatedNetwork
        var finished: Bool
    }

    static func run(
        bytes: Int, seed: UInt64, profile: LinkProfile, configuration: TCPConfiguration = TCPConfiguration(),
        serverConfiguration: TCPConfiguration? = nil, deadline: Instant = Instant.zero + .seconds(3600)
    ) throws -> Outcome {
        let network = SimulatedNetwork(seed: seed)
        let client = SimulatedTCPHost(address: clientAddress, configuration: configuration, secret: seed)
        let server = SimulatedTCPHost(
            address: serverAddress, configuration: serverConfiguration ?? configuration, secret: seed &+ 1)
        network.connect(client, server, profile)
        let transfer = try BulkTransfer(client: client, server: server, bytesEachWay: bytes, seed: seed)
        let finished = network.run(until: deadline) { transfer.isComplete || transfer.failed }
        return Outcome(transfer: transfer, network: network, finished: finished)
    }

    @Test func perfectLinkMovesOneMebibyteEachWay() throws {
        let outcome = try Self.run(bytes: 1 << 20, seed: 1, profile: LinkProfile(delay: .milliseconds(5)))
        let t = outcome.transfer
        #expect(outcome.finished)
        #expect(t.isComplete, "client \(t.client.received) server \(t.server.received)")
        #expect(t.client.firstMismatch == nil && t.server.firstMismatch == nil)
        #expect(t.client.sentDigest == t.server.receivedDigest)
        #expect(t.server.sentDigest == t.client.receivedDigest)
        #expect(t.client.statistics.retransmittedSegments == 0)
    }
}

extension BulkTransferTests {
    static let hostile = LinkProfile(
        delay: .milliseconds(5), jitter: .microseconds(200), bitsPerSecond: 100_000_000, queueLimit: 1000,
        lossRate: 0.05, duplicateRate: 0.01, reorderRate: 0.10, corruptRate: 0.005, reorderDelay: .milliseconds(3))

    @Test(arguments: [UInt64(7)])
    func hostileLinkSmall(seed: UInt64) throws {
        let outcome = try Self.run(bytes: 1 << 20, seed: seed, profile: Self.hostile)
        let t = outcome.transfer
        #expect(
            t.isComplete,
            "client \(t.client.received) server \(t.server.received) err \(String(describing: t.client.error)) \(String(describing: t.server.error)) now \(outcome.network.now)"
        )
        #expect(t.client.firstMismatch == nil && t.server.firstMismatch == nil)
        print("seed \(seed) now \(outcome.network.now) client \(t.client.statistics) server \(t.server.statistics)")
    }
}
