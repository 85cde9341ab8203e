/// Buffer sizes one connection needs for a configuration: what `TCPConnection` allocates and
/// what a pool chunk must hold.
public struct ConnectionMemoryLayout: Equatable, Sendable {
    /// Send ring bytes.
    public let sendCapacity: Int
    /// Receive ring bytes: the configured buffer plus one window-scale unit of slack.
    public let receiveCapacity: Int
    /// The slack part of `receiveCapacity` (never advertised).
    public let receiveSlack: Int
    /// Out-of-order ranges the reassembly table tracks.
    public let reassemblyRanges: Int

    /// The layout a connection with `configuration` uses.
    public init(configuration: TCPConfiguration) {
        sendCapacity = max(configuration.sendBufferSize, 1)
        // The window field counts in units of 2^shift, and a window that must not shrink is
        // rounded up: one unit of slack beyond what we advertise keeps every byte we promise
        // storable (a promised byte dropped for lack of room can deadlock both ends).
        receiveSlack = 1 << Int(TCPConnection.windowShift(forBufferSize: configuration.receiveBufferSize))
        receiveCapacity = max(configuration.receiveBufferSize, 1) + receiveSlack
        reassemblyRanges = 32
    }
}

/// Memory for one connection's buffers, lent by a `ConnectionMemoryPool`.
public struct ConnectionMemory {
    /// Sizes the regions below were cut for.
    public let layout: ConnectionMemoryLayout
    /// `layout.sendCapacity` bytes for the send ring.
    public let sendStorage: UnsafeMutableRawPointer
    /// `layout.receiveCapacity` bytes for the receive ring.
    public let receiveStorage: UnsafeMutableRawPointer
    /// `2 * layout.reassemblyRanges` values for the reassembly table.
    public let rangeStorage: UnsafeMutablePointer<UInt64>
    /// Chunk number inside the pool that lent it.
    public let chunk: Int32
}

/// Counters of a `ConnectionMemoryPool`.
public struct ConnectionMemoryPoolStatistics: Equatable, Sendable {
    /// Slabs allocated so far (each holds `chunksPerSlab` chunks).
    public var slabs = 0
    /// Chunks per slab.
    public var chunksPerSlab = 0
    /// Chunks lent out.
    public var inUse = 0
    /// Chunks ready to lend.
    public var available = 0
    /// Bytes one chunk takes.
    public var chunkBytes = 0
}

/// Per-endpoint store of connection buffer memory: fixed-size chunks cut from large slabs,
/// so opening and closing connections recycles memory instead of calling malloc.
///
/// One endpoint (one core) owns it; it is not thread-safe. `take` and `give(back:)` are O(1)
/// through a stack of free chunk numbers; an empty pool grows by a whole slab.
public final class ConnectionMemoryPool {
    /// Sizes every chunk is cut for.
    public let layout: ConnectionMemoryLayout
    private let chunksPerSlab: Int
    /// Offsets inside a chunk; each region starts on a cache line.
    private let receiveOffset: Int
    private let rangeOffset: Int
    private let chunkBytes: Int
    private var slabs: [UnsafeMutableRawPointer] = []
    /// Free chunk numbers; its capacity is reserved per slab so pushes never allocate.
    private var freeChunks: [Int32] = []
    /// Marks chunks lent out, so a chunk given back twice or never taken is ignored.
    private var lent: [Bool] = []
    private var inUse = 0

    private static let alignment = 64

    /// Creates a pool for `configuration`'s buffer sizes holding `initialConnections` chunks
    /// up front; later growth adds slabs of the same number of chunks.
    public init(configuration: TCPConfiguration, initialConnections: Int = 64) {
        layout = ConnectionMemoryLayout(configuration: configuration)
        chunksPerSlab = max(initialConnections, 1)
        receiveOffset = Self.roundUp(layout.sendCapacity)
        rangeOffset = receiveOffset + Self.roundUp(layout.receiveCapacity)
        chunkBytes = rangeOffset + Self.roundUp(2 * layout.reassemblyRanges * MemoryLayout<UInt64>.stride)
        addSlab()
    }

    deinit {
        for slab in slabs { slab.deallocate() }
    }

    /// Counters: slabs, chunks in use and available.
    public var statistics: ConnectionMemoryPoolStatistics {
        ConnectionMemoryPoolStatistics(
            slabs: slabs.count, chunksPerSlab: chunksPerSlab, inUse: inUse, available: freeChunks.count,
            chunkBytes: chunkBytes)
    }

    /// True when connections made with `configuration` fit this pool's chunks exactly.
    public func fits(_ configuration: TCPConfiguration) -> Bool {
        ConnectionMemoryLayout(configuration: configuration) == layout
    }

    /// Lends one chunk, growing the pool by a slab when none is free.
    public func take() -> ConnectionMemory {
        if freeChunks.isEmpty { addSlab() }
        let chunk = freeChunks.removeLast()
        lent[Int(chunk)] = true
        inUse += 1
        let base = slabs[Int(chunk) / chunksPerSlab] + (Int(chunk) % chunksPerSlab) * chunkBytes
        return ConnectionMemory(
            layout: layout, sendStorage: base, receiveStorage: base + receiveOffset,
            rangeStorage: (base + rangeOffset).bindMemory(to: UInt64.self, capacity: 2 * layout.reassemblyRanges),
            chunk: chunk)
    }

    /// Takes a chunk back; chunks this pool did not lend (or already got back) are ignored.
    public func give(back memory: ConnectionMemory) {
        let chunk = Int(memory.chunk)
        guard chunk >= 0, chunk < lent.count, lent[chunk], memory.layout == layout else { return }
        lent[chunk] = false
        inUse -= 1
        freeChunks.append(memory.chunk)
    }

    private func addSlab() {
        let first = slabs.count * chunksPerSlab
        slabs.append(.allocate(byteCount: chunksPerSlab * chunkBytes, alignment: Self.alignment))
        let total = first + chunksPerSlab
        freeChunks.reserveCapacity(total)
        lent.reserveCapacity(total)
        lent.append(contentsOf: repeatElement(false, count: chunksPerSlab))
        // Pushed in reverse so the lowest-numbered chunk is lent first.
        for chunk in (first..<total).reversed() { freeChunks.append(Int32(chunk)) }
    }

    private static func roundUp(_ bytes: Int) -> Int {
        (max(bytes, 1) + alignment - 1) / alignment * alignment
    }
}
