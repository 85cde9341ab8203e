import Simulation
import TCP
import Testing
import Wire

/// The TCP core over IPv6 in simulated time: the same transfers as over IPv4, with the IPv6
/// header and pseudo-header on every segment, through loss, reordering, duplication and
/// corruption.
@Suite struct IPv6TransferTests {
    static let clientAddress = IPAddress("fd00:77::1")!
    static let serverAddress = IPAddress("fd00:77::2")!

    static func hosts(seed: UInt64, profile: LinkProfile) -> (SimulatedNetwork, SimulatedTCPHost, SimulatedTCPHost) {
        let network = SimulatedNetwork(seed: seed)
        let client = SimulatedTCPHost(address: clientAddress, secret: seed)
        let server = SimulatedTCPHost(address: serverAddress, secret: seed &+ 1)
        network.connect(client, server, profile)
        return (network, client, server)
    }

    @Test func perfectLinkMovesOneMebibyteEachWayWithTheSmallerSegment() throws {
        let (network, client, server) = Self.hosts(seed: 3, profile: LinkProfile(delay: .milliseconds(5)))
        let transfer = try BulkTransfer(client: client, server: server, bytesEachWay: 1 << 20, seed: 3)
        // Once established: 20 bytes of the IPv4-sized segment go to the longer IPv6 header.
        network.run(until: .zero + .milliseconds(40))
        var mss: [Int] = []
        client.endpoint.forEachConnection { _, d, _ in mss.append(d.sendMSS) }
        server.endpoint.forEachConnection { _, d, _ in mss.append(d.sendMSS) }
        #expect(mss.count == 2 && mss.allSatisfy { $0 <= TCPConfiguration().maximumSegmentSize - 20 }, "\(mss)")
        let finished = network.run(until: .zero + .seconds(3600)) { transfer.isComplete || transfer.failed }
        let outcome = BulkTransferTests.Outcome(transfer: transfer, network: network, finished: finished)
        BulkTransferTests.expectExact(outcome, "perfect")
        #expect(transfer.client.statistics.retransmittedSegments == 0)
    }

    @Test(arguments: [11, 12, 13, 14] as [UInt64])
    func hostileLinkDeliversEveryByte(seed: UInt64) throws {
        let (network, client, server) = Self.hosts(seed: seed, profile: BulkTransferTests.hostile)
        let transfer = try BulkTransfer(client: client, server: server, bytesEachWay: 512 << 10, seed: seed)
        let finished = network.run(until: .zero + .seconds(3600)) { transfer.isComplete || transfer.failed }
        BulkTransferTests.expectExact(
            BulkTransferTests.Outcome(transfer: transfer, network: network, finished: finished), "seed \(seed)")
        // Corrupted packets were caught by the IPv6 pseudo-header checksum, not delivered.
        #expect(client.refusedTotal + server.refusedTotal > 0)
    }

    @Test func shortConnectionsOverIPv6AllComplete() throws {
        let (network, client, server) = Self.hosts(seed: 5, profile: BulkTransferTests.hostile)
        let load = try RequestResponseLoad(client: client, server: server, connections: 200, concurrency: 20)
        _ = network.run(until: .zero + .seconds(600)) { load.isFinished }
        #expect(load.counters.completed == 200, "\(load.counters)")
        #expect(load.counters.failed == 0 && load.counters.corrupted == 0)
    }
}
