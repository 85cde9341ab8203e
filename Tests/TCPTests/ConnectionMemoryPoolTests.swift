import Simulation
import TCP
import Testing
import Wire

/// The per-endpoint pool that lends connections their buffer memory.
@Suite struct ConnectionMemoryPoolTests {
    static func smallConfiguration() -> TCPConfiguration {
        var configuration = TCPConfiguration()
        configuration.sendBufferSize = 4096
        configuration.receiveBufferSize = 100_000
        return configuration
    }

    @Test func layoutAddsTheWindowScaleSlackToTheReceiveBuffer() {
        let layout = ConnectionMemoryLayout(configuration: Self.smallConfiguration())
        #expect(layout.sendCapacity == 4096)
        // 100,000 bytes need a window shift of 1, so one unit of slack is 2 bytes.
        #expect(layout.receiveSlack == 2)
        #expect(layout.receiveCapacity == 100_002)
        #expect(layout.reassemblyRanges == 32)
    }

    @Test func takeAndGiveBackKeepTheCounters() {
        let pool = ConnectionMemoryPool(configuration: Self.smallConfiguration(), initialConnections: 4)
        #expect(pool.statistics.slabs == 1)
        #expect(pool.statistics.available == 4)
        #expect(pool.statistics.inUse == 0)
        var taken = (0..<4).map { _ in pool.take() }
        #expect(pool.statistics.slabs == 1)
        #expect(pool.statistics.available == 0)
        #expect(pool.statistics.inUse == 4)
        #expect(Set(taken.map(\.chunk)).count == 4)

        // An empty pool grows by one whole slab.
        taken.append(pool.take())
        #expect(pool.statistics.slabs == 2)
        #expect(pool.statistics.available == 3)
        #expect(pool.statistics.inUse == 5)

        for memory in taken { pool.give(back: memory) }
        #expect(pool.statistics.inUse == 0)
        #expect(pool.statistics.available == 8)
        #expect(pool.statistics.slabs == 2)

        // A chunk given back twice is not counted twice.
        pool.give(back: taken[0])
        #expect(pool.statistics.available == 8)

        // The most recently returned chunk is lent again first (warm in cache).
        let again = pool.take()
        #expect(again.chunk == taken[4].chunk)
        #expect(pool.statistics.slabs == 2)
    }

    @Test func chunksDoNotOverlap() {
        let pool = ConnectionMemoryPool(configuration: Self.smallConfiguration(), initialConnections: 3)
        let chunks = (0..<5).map { _ in pool.take() }
        let layout = pool.layout
        for (i, memory) in chunks.enumerated() {
            let tag = UInt8(i + 1)
            memory.sendStorage.initializeMemory(as: UInt8.self, repeating: tag, count: layout.sendCapacity)
            memory.receiveStorage.initializeMemory(as: UInt8.self, repeating: tag &+ 100, count: layout.receiveCapacity)
            memory.rangeStorage.initialize(repeating: UInt64(tag), count: 2 * layout.reassemblyRanges)
        }
        for (i, memory) in chunks.enumerated() {
            let tag = UInt8(i + 1)
            let send = UnsafeRawBufferPointer(start: memory.sendStorage, count: layout.sendCapacity)
            let receive = UnsafeRawBufferPointer(start: memory.receiveStorage, count: layout.receiveCapacity)
            let ranges = UnsafeBufferPointer(start: memory.rangeStorage, count: 2 * layout.reassemblyRanges)
            #expect(send.allSatisfy { $0 == tag })
            #expect(receive.allSatisfy { $0 == tag &+ 100 })
            #expect(ranges.allSatisfy { $0 == UInt64(tag) })
        }
        for memory in chunks { pool.give(back: memory) }
    }

    @Test func configurationsWithOtherSizesDoNotFit() {
        let pool = ConnectionMemoryPool(configuration: Self.smallConfiguration(), initialConnections: 1)
        #expect(pool.fits(Self.smallConfiguration()))
        var other = Self.smallConfiguration()
        other.sendBufferSize = 8192
        #expect(!pool.fits(other))
    }

    @Test func borrowedBuffersDoNotFreeTheirMemory() {
        let storage = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
        defer { storage.deallocate() }
        var send = SendBuffer(borrowing: storage, capacity: 64)
        #expect(!send.ownsStorage)
        let bytes: [UInt8] = [1, 2, 3, 4]
        _ = bytes.withUnsafeBytes { send.append($0) }
        #expect(storage.load(fromByteOffset: 2, as: UInt8.self) == 3)
        // Growing moves the content to memory the buffer owns; the lent bytes stay valid.
        let resized = send.resize(capacity: 128)
        #expect(resized)
        #expect(send.ownsStorage)
        let (first, _) = send.peek(offset: 0, length: 4)
        #expect(Array(first) == bytes)
        send.deallocate()

        let ranges = UnsafeMutablePointer<UInt64>.allocate(capacity: 8)
        defer { ranges.deallocate() }
        var receive = ReceiveBuffer(borrowing: storage, capacity: 64, rangeStorage: ranges, maximumOutOfOrderRanges: 4)
        #expect(!receive.ownsStorage)
        #expect(receive.freeWindow == 64)
        receive.deallocate()
        // Still ours to use and free.
        storage.storeBytes(of: 7, toByteOffset: 0, as: UInt8.self)
    }

    @Test func endpointConnectionsTakeAndReturnChunks() throws {
        let endpoint = TCPEndpoint(configuration: TCPConfiguration(), secret: (1, 2), pooledConnections: 2)
        #expect(endpoint.memoryPoolStatistics.slabs == 1)
        var ids: [ConnectionID] = []
        for port in UInt16(1000)..<1003 {
            ids.append(
                try endpoint.connect(
                    from: IPv4Address(10, 0, 0, 1), to: IPv4Address(10, 0, 0, 2), port: port, now: .zero))
        }
        #expect(endpoint.memoryPoolStatistics.inUse == 3)
        #expect(endpoint.memoryPoolStatistics.slabs == 2)
        // Aborting a connection that never got an answer releases it and its chunk.
        for id in ids { endpoint.abort(id, now: .zero) }
        var sink = DiscardingSink()
        endpoint.poll(now: .zero, into: &sink)
        #expect(endpoint.connectionCount == 0)
        #expect(endpoint.memoryPoolStatistics.inUse == 0)
        #expect(endpoint.memoryPoolStatistics.available == 4)
    }

    /// With the default 60 s TIME-WAIT the server (which closes first) keeps every connection
    /// for the whole run, but TIME-WAIT connections give their buffers back, so chunks are
    /// reused all the same; with a short TIME-WAIT the connections themselves go.
    @Test(arguments: [Interval.seconds(60), .milliseconds(2)])
    func tenThousandConnectionsInARowReuseChunks(timeWait: Interval) throws {
        var configuration = TCPConfiguration()
        configuration.timeWaitDuration = timeWait
        let network = SimulatedNetwork(seed: 5)
        let client = SimulatedTCPHost(address: IPv4Address(10, 0, 0, 1), configuration: configuration, secret: 5)
        let server = SimulatedTCPHost(address: IPv4Address(10, 0, 0, 2), configuration: configuration, secret: 6)
        network.connect(client, server, LinkProfile(delay: .microseconds(100)))
        let load = try RequestResponseLoad(
            client: client, server: server, connections: 10_000, concurrency: 20, backlog: 128, seed: 5)
        let finished = network.run(until: .zero + .seconds(600)) { load.isFinished }
        network.run(until: network.now + .seconds(5))
        #expect(finished)
        if timeWait == .seconds(60) { #expect(server.endpoint.countConnections(in: .timeWait) > 9_000) }
        #expect(load.counters.completed == 10_000, "\(load.counters)")
        #expect(load.counters.failed == 0 && load.counters.corrupted == 0)
        #expect(server.endpoint.statistics.passiveOpens == 10_000)
        // 10,000 connections passed through each side, 20 open at a time plus those in
        // TIME-WAIT: chunks were reused and the pools stayed at a few slabs of 64 (without
        // reuse the server would need 157).
        for endpoint in [client.endpoint, server.endpoint] {
            let stats = endpoint.memoryPoolStatistics
            #expect(stats.slabs <= 4, "\(stats)")
            let holding = endpoint.connectionCount - endpoint.countConnections(in: .timeWait)
            #expect(stats.inUse == holding, "\(stats)")
            #expect(stats.inUse + stats.available == stats.slabs * stats.chunksPerSlab, "\(stats)")
        }
    }
}

/// Drops every segment the endpoint sends.
private struct DiscardingSink: TCPEndpointSink {
    mutating func send(_ segment: TCPSegment, flow: TCPFlow) {}
}
