import CShim
import Wire

/// A `PacketIO` wrapping another with seeded, reproducible faults in each direction: loss,
/// duplication, corruption, reordering and delay (the user-space stand-in for netem, which
/// this kernel lacks).
///
/// Held frames (delayed or reordered) live in a preallocated pool per direction; a full pool
/// drops and counts (`overflowed`). Held receive frames come out of later `receive` calls,
/// held transmit frames out of later `flush` calls, so a caller sleeping on
/// `waitDescriptor` should wake by `nextReleaseTime` at the latest.
public final class ImpairedPacketIO<Base: PacketIO>: PacketIO {
    /// The wrapped backend.
    public let base: Base
    let incoming: ImpairmentStage
    let outgoing: ImpairmentStage
    let clock: () -> UInt64
    let staging: UnsafeMutableRawPointer
    let stagingSize: Int

    /// Wraps `base`; `seed` fixes every random choice, `clock` gives nanoseconds.
    public init(
        base: Base, receive: Impairment = .none, transmit: Impairment = .none, seed: UInt64,
        poolCapacity: Int = 1024, slotSize: Int? = nil,
        clock: @escaping () -> UInt64 = { mtcp_shim_monotonic_ns() }
    ) {
        self.base = base
        let slot = slotSize ?? (base.mtu + 18)
        incoming = ImpairmentStage(impairment: receive, seed: seed, slotSize: slot, capacity: poolCapacity)
        outgoing = ImpairmentStage(
            impairment: transmit, seed: seed ^ 0x5DEE_CE66_D1CE_4E5B, slotSize: slot, capacity: poolCapacity)
        self.clock = clock
        stagingSize = base.mtu + 18
        staging = UnsafeMutableRawPointer.allocate(byteCount: stagingSize, alignment: 64)
    }

    deinit { staging.deallocate() }

    public var macAddress: MACAddress { base.macAddress }
    public var mtu: Int { base.mtu }
    public var waitDescriptor: Int32 { base.waitDescriptor }
    /// The base's counters, with frames lost to full hold pools added to receive drops.
    public var statistics: PacketIOStatistics {
        var s = base.statistics
        s.receiveDrops += incoming.counters.overflowed
        return s
    }
    /// Impairments applied to received frames.
    public var receiveCounters: ImpairmentCounters { incoming.counters }
    /// Impairments applied to sent frames.
    public var transmitCounters: ImpairmentCounters { outgoing.counters }
    /// Frames held back (receive, transmit).
    public var heldFrames: (receive: Int, transmit: Int) { (incoming.held.count, outgoing.held.count) }
    /// The earliest time a held frame falls due, if any is held.
    public var nextReleaseTime: UInt64? {
        switch (incoming.held.earliestDue, outgoing.held.earliestDue) {
        case (let a?, let b?): return min(a, b)
        case (let a?, nil): return a
        case (nil, let b?): return b
        case (nil, nil): return nil
        }
    }

    public func receive(limit: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> Int {
        var delivered = 0
        let now = incoming.needsClock ? clock() : 0
        func emit(_ frame: UnsafeRawBufferPointer) -> Bool {
            guard delivered < limit else { return false }
            body(frame)
            delivered += 1
            return true
        }
        incoming.releaseReady(now: now, emit)
        guard delivered < limit else { return delivered }
        _ = base.receive(limit: limit - delivered) { frame in
            self.incoming.process(frame, now: now, emit)
        }
        return delivered
    }

    /// A staging buffer; the frame reaches the base (or not) at `commitTransmit`.
    public func nextTransmitBuffer() -> UnsafeMutableRawBufferPointer? {
        UnsafeMutableRawBufferPointer(start: staging, count: stagingSize)
    }

    public func commitTransmit(length: Int) {
        guard length > 0, length <= stagingSize else {
            outgoing.counters.overflowed += 1
            return
        }
        let now = outgoing.needsClock ? clock() : 0
        outgoing.process(UnsafeRawBufferPointer(start: staging, count: length), now: now, forward)
    }

    /// Sends the held frames now due, then flushes the base.
    public func flush() {
        if outgoing.held.count > 0 { outgoing.releaseReady(now: clock(), forward) }
        base.flush()
    }

    /// Copies a frame into the base's transmit ring; false when the ring is full.
    private func forward(_ frame: UnsafeRawBufferPointer) -> Bool {
        guard let buffer = base.nextTransmitBuffer(), buffer.count >= frame.count, let source = frame.baseAddress
        else { return false }
        buffer.baseAddress!.copyMemory(from: source, byteCount: frame.count)
        base.commitTransmit(length: frame.count)
        return true
    }
}
