import CDPDK
import PacketIO
import Wire

/// One RX/TX queue pair of a `DPDKPort`, driven by one stack instance (no locks).
///
/// Receive: bursts of up to 32 mbufs; each frame is handed over in place and the burst's mbufs
/// go back to the pool together. Transmit: mbufs are taken from the queue's pool 32 at a time
/// and kept as spares; `nextTransmitBuffer` offers the next spare's data room, `commitTransmit`
/// queues it, and `flush` hands the queued burst to the port (what it refuses stays queued for
/// the next flush). The arrays are allocated once; nothing allocates per frame.
///
/// DPDK polls. A net_af_packet queue is a kernel packet socket, and poll(2) on it wakes when its
/// ring has frames: that socket is `waitDescriptor` (see `PacketSocketCensus`). Other drivers
/// have nothing to sleep on (-1), so an idle stack naps a millisecond between polls.
public final class DPDKQueue: PacketIO {
    public let macAddress: MACAddress
    public let mtu: Int
    public let waitDescriptor: Int32
    /// The queue's counters; queue 0 also carries the port's own drop counters.
    public var statistics: PacketIOStatistics {
        var result = counters
        if queue == 0 {
            let drops = handle.drops()
            result.receiveDrops += Int(truncatingIfNeeded: drops.receive)
            result.transmitErrors += Int(truncatingIfNeeded: drops.transmit)
        }
        return result
    }
    /// The queue's index on its port.
    public let queue: UInt16
    /// True when frames are marked for the port to fill in their IPv4 and TCP checksums.
    public let transmitChecksumOffload: Bool
    /// Frames marked for checksum offload.
    public private(set) var checksumsOffloaded = 0

    static let burst = 32

    let handle: DPDKPortHandle
    let port: UInt16
    let pool: UnsafeMutableRawPointer
    let maxFrame: Int
    let received: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let receivedData: UnsafeMutablePointer<UnsafeRawPointer?>
    let receivedLengths: UnsafeMutablePointer<UInt16>
    /// Fresh mbufs for transmit; the last one is what `nextTransmitBuffer` offers.
    let spare: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    var spareCount = 0
    /// Committed frames not yet taken by the port.
    let pending: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    var pendingCount = 0
    var counters = PacketIOStatistics()

    init(
        handle: DPDKPortHandle, queue: UInt16, pool: UnsafeMutableRawPointer, macAddress: MACAddress, mtu: Int,
        maxFrame: Int, checksumOffload: Bool, waitDescriptor: Int32
    ) {
        self.waitDescriptor = waitDescriptor
        self.handle = handle
        self.port = handle.port
        self.queue = queue
        self.pool = pool
        self.macAddress = macAddress
        self.mtu = mtu
        self.maxFrame = maxFrame
        self.transmitChecksumOffload = checksumOffload
        let burst = Self.burst
        received = .allocate(capacity: burst)
        receivedData = .allocate(capacity: burst)
        receivedLengths = .allocate(capacity: burst)
        spare = .allocate(capacity: burst)
        pending = .allocate(capacity: burst)
    }

    deinit {
        if spareCount > 0 { mtcp_dpdk_free_bulk(spare, UInt32(spareCount)) }
        if pendingCount > 0 { mtcp_dpdk_free_bulk(pending, UInt32(pendingCount)) }
        received.deallocate()
        receivedData.deallocate()
        receivedLengths.deallocate()
        spare.deallocate()
        pending.deallocate()
    }

    public func receive(limit: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> Int {
        var delivered = 0
        while delivered < limit {
            let wanted = min(Self.burst, limit - delivered)
            var dropped: UInt64 = 0
            let count = Int(
                mtcp_dpdk_rx_burst(
                    port, queue, received, receivedData, receivedLengths, UInt16(wanted), &dropped))
            counters.receiveDrops += Int(truncatingIfNeeded: dropped)
            for index in 0..<count {
                let length = Int(receivedLengths[index])
                counters.framesReceived += 1
                counters.bytesReceived += length
                body(UnsafeRawBufferPointer(start: receivedData[index], count: length))
            }
            if count > 0 { mtcp_dpdk_free_bulk(received, UInt32(count)) }
            delivered += count
            // A short burst: the ring is empty for now.
            if count + Int(truncatingIfNeeded: dropped) < wanted { break }
        }
        return delivered
    }

    public func nextTransmitBuffer() -> UnsafeMutableRawBufferPointer? {
        if pendingCount == Self.burst {
            flush()
            guard pendingCount < Self.burst else {
                counters.transmitRingFull += 1
                return nil
            }
        }
        if spareCount == 0 { refill() }
        guard spareCount > 0, let mbuf = spare[spareCount - 1] else {
            counters.transmitRingFull += 1
            return nil
        }
        var room: UInt32 = 0
        guard let data = mtcp_dpdk_mbuf_data(mbuf, &room) else { return nil }
        return UnsafeMutableRawBufferPointer(start: data, count: min(Int(room), maxFrame))
    }

    public func commitTransmit(length: Int) {
        guard length > 0, length <= maxFrame, spareCount > 0, pendingCount < Self.burst,
            let mbuf = spare[spareCount - 1]
        else {
            counters.transmitErrors += 1
            return
        }
        spareCount -= 1
        if mtcp_dpdk_tx_prepare(mbuf, UInt16(length), transmitChecksumOffload ? 1 : 0) != 0 {
            checksumsOffloaded += 1
        }
        pending[pendingCount] = mbuf
        pendingCount += 1
        counters.framesSent += 1
        counters.bytesSent += length
    }

    public func flush() {
        guard pendingCount > 0 else { return }
        let sent = Int(mtcp_dpdk_tx_burst(port, queue, pending, UInt16(pendingCount)))
        if sent < pendingCount {
            // The port's ring is full: the rest go first at the next flush.
            for index in sent..<pendingCount { pending[index - sent] = pending[index] }
        }
        pendingCount -= sent
    }

    /// A burst of fresh mbufs, or as many single ones as the pool still has.
    func refill() {
        if mtcp_dpdk_alloc_bulk(pool, spare, UInt32(Self.burst)) == 0 {
            spareCount = Self.burst
            return
        }
        while spareCount < Self.burst, mtcp_dpdk_alloc_bulk(pool, spare + spareCount, 1) == 0 {
            spareCount += 1
        }
    }
}
