import Wire

/// An in-memory Ethernet segment joining two `MemoryPort`s, for tests and simulation: what
/// one port sends the other receives, in order, after `flush`.
public final class MemoryLink {
    public let a: MemoryPort
    public let b: MemoryPort

    public init(
        macA: MACAddress = MACAddress(0x02, 0, 0, 0, 0, 0x0A), macB: MACAddress = MACAddress(0x02, 0, 0, 0, 0, 0x0B),
        mtu: Int = 1500, capacity: Int = 4096
    ) {
        a = MemoryPort(macAddress: macA, mtu: mtu, capacity: capacity)
        b = MemoryPort(macAddress: macB, mtu: mtu, capacity: capacity)
        a.peer = b
        b.peer = a
    }
}

/// One end of a `MemoryLink`. Frames live in a preallocated ring of fixed-size slots.
public final class MemoryPort: PacketIO {
    public let macAddress: MACAddress
    public let mtu: Int
    public var waitDescriptor: Int32 { -1 }
    public private(set) var statistics = PacketIOStatistics()
    weak var peer: MemoryPort?

    let slotSize: Int
    let capacity: Int
    let storage: UnsafeMutableRawPointer
    var lengths: [Int]
    /// Receive ring: frames [head, head + count) are waiting.
    var head = 0
    var count = 0
    /// Frames written by the owner but not yet flushed to the peer.
    var outgoing: UnsafeMutableRawPointer
    var outgoingLengths: [Int]
    var outgoingCount = 0
    /// Called with every frame as it is flushed toward the peer; for taps in tests.
    public var onSend: ((UnsafeRawBufferPointer) -> Void)?

    init(macAddress: MACAddress, mtu: Int, capacity: Int) {
        self.macAddress = macAddress
        self.mtu = mtu
        self.capacity = capacity
        slotSize = mtu + 14
        storage = UnsafeMutableRawPointer.allocate(byteCount: slotSize * capacity, alignment: 64)
        lengths = Array(repeating: 0, count: capacity)
        outgoing = UnsafeMutableRawPointer.allocate(byteCount: slotSize * capacity, alignment: 64)
        outgoingLengths = Array(repeating: 0, count: capacity)
    }

    deinit {
        storage.deallocate()
        outgoing.deallocate()
    }

    /// Frames waiting to be received.
    public var pending: Int { count }

    public func receive(limit: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> Int {
        var n = 0
        while n < limit && count > 0 {
            let frame = UnsafeRawBufferPointer(start: storage + head * slotSize, count: lengths[head])
            statistics.framesReceived += 1
            statistics.bytesReceived += frame.count
            body(frame)
            head = (head + 1) % capacity
            count -= 1
            n += 1
        }
        return n
    }

    public func nextTransmitBuffer() -> UnsafeMutableRawBufferPointer? {
        guard outgoingCount < capacity else {
            statistics.transmitRingFull += 1
            return nil
        }
        return UnsafeMutableRawBufferPointer(start: outgoing + outgoingCount * slotSize, count: slotSize)
    }

    public func commitTransmit(length: Int) {
        guard outgoingCount < capacity, length > 0, length <= slotSize else {
            statistics.transmitErrors += 1
            return
        }
        outgoingLengths[outgoingCount] = length
        outgoingCount += 1
    }

    public func flush() {
        for i in 0..<outgoingCount {
            let frame = UnsafeRawBufferPointer(start: outgoing + i * slotSize, count: outgoingLengths[i])
            statistics.framesSent += 1
            statistics.bytesSent += frame.count
            onSend?(frame)
            peer?.deliver(frame)
        }
        outgoingCount = 0
    }

    /// Puts a frame in this port's receive ring, as if it came off the wire (tests use it to
    /// inject garbage). Drops it and counts when the ring is full.
    public func deliver(_ frame: UnsafeRawBufferPointer) {
        guard count < capacity, frame.count <= slotSize else {
            statistics.receiveDrops += 1
            return
        }
        let slot = (head + count) % capacity
        (storage + slot * slotSize).copyMemory(from: frame.baseAddress!, byteCount: frame.count)
        lengths[slot] = frame.count
        count += 1
    }
}
