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
    /// 5% loss, 10% reordering, 1% duplication, 0.5% corruption, in both directions.
    static let hostile = LinkProfile(
        delay: .milliseconds(5), jitter: .microseconds(200), bitsPerSecond: 100_000_000, queueLimit: 1000,
        lossRate: 0.05, duplicateRate: 0.01, reorderRate: 0.10, corruptRate: 0.005, reorderDelay: .milliseconds(3))

    static func expectExact(_ outcome: Outcome, _ label: String) {
        let t = outcome.transfer
        #expect(
            t.isComplete,
            "\(label): client got \(t.client.received) server got \(t.server.received) errors \(String(describing: t.client.error)) \(String(describing: t.server.error)) at \(outcome.network.now)"
        )
        #expect(t.client.firstMismatch == nil, "\(label): client saw a wrong byte at \(t.client.firstMismatch ?? -1)")
        #expect(t.server.firstMismatch == nil, "\(label): server saw a wrong byte at \(t.server.firstMismatch ?? -1)")
        #expect(t.client.sentDigest == t.server.receivedDigest, "\(label): digests differ client->server")
        #expect(t.server.sentDigest == t.client.receivedDigest, "\(label): digests differ server->client")
    }

    /// The acceptance test: 16 MiB each way, byte-exact, for 20 seeds.
    @Test(arguments: 1...20)
    func sixteenMebibytesEachWayOverHostileLink(seed: Int) throws {
        let outcome = try Self.run(bytes: 16 << 20, seed: UInt64(seed), profile: Self.hostile)
        Self.expectExact(outcome, "seed \(seed)")
        let net = outcome.network
        // The impairments really happened.
        #expect(outcome.transfer.client.statistics.retransmittedSegments > 0)
        #expect(outcome.transfer.client.statistics.outOfOrderSegments > 0)
        _ = net
    }

    @Test(arguments: ["no-sack", "no-timestamps", "no-window-scaling", "nothing", "cubic", "no-delayed-ack"])
    func hostileLinkWithOptionsOff(variant: String) throws {
        var configuration = TCPConfiguration()
        switch variant {
        case "no-sack": configuration.selectiveAcknowledgments = false
        case "no-timestamps": configuration.timestamps = false
        case "no-window-scaling": configuration.windowScaling = false
        case "nothing":
            configuration.selectiveAcknowledgments = false
            configuration.timestamps = false
            configuration.windowScaling = false
        case "cubic": configuration.congestionAlgorithm = .cubic
        default: configuration.delayedAcknowledgments = false
        }
        // One side keeps everything on: negotiation must fall back to what both offer.
        let outcome = try Self.run(
            bytes: 4 << 20, seed: 99, profile: Self.hostile, configuration: configuration,
            serverConfiguration: TCPConfiguration())
        Self.expectExact(outcome, variant)
    }

    @Test func smallBuffersAndZeroWindowsStillDeliver() throws {
        var configuration = TCPConfiguration()
        configuration.receiveBufferSize = 8192
        configuration.sendBufferSize = 8192
        let outcome = try Self.run(bytes: 2 << 20, seed: 4, profile: Self.hostile, configuration: configuration)
        Self.expectExact(outcome, "8 KiB buffers")
    }
}
