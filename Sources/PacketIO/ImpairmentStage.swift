/// One direction of an impairment layer: its settings, generator, held frames and counters.
final class ImpairmentStage {
    let impairment: Impairment
    var random: ImpairmentRandom
    let held: HeldFrames
    var counters = ImpairmentCounters()
    /// Frames passed on so far; reordered frames wait for this to reach their mark.
    var passes: UInt64 = 0
    /// Where a corrupted copy is built (the original may be read-only ring memory).
    let scratch: UnsafeMutableRawPointer
    let scratchSize: Int

    init(impairment: Impairment, seed: UInt64, slotSize: Int, capacity: Int) {
        self.impairment = impairment
        random = ImpairmentRandom(seed: seed)
        held = HeldFrames(slotSize: slotSize, capacity: capacity)
        scratchSize = max(slotSize, 65536)
        scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchSize, alignment: 64)
    }

    deinit { scratch.deallocate() }

    /// True when the clock must be read for this direction.
    var needsClock: Bool { impairment.holdsFrames || held.count > 0 }

    /// Passes held frames that are ready to `emit` while it accepts them.
    func releaseReady(now: UInt64, _ emit: (UnsafeRawBufferPointer) -> Bool) {
        while let slot = held.nextReady(now: now, passes: passes) {
            guard emit(held.frame(slot)) else { return }
            held.release(slot)
            passes &+= 1
            counters.passed += 1
        }
    }

    /// Applies loss, corruption, duplication, reordering and delay to one frame; frames
    /// not held go to `emit` (which returns false when it cannot take more right now).
    func process(_ frame: UnsafeRawBufferPointer, now: UInt64, _ emit: (UnsafeRawBufferPointer) -> Bool) {
        let rules = impairment
        if random.chance(rules.lossRate) {
            counters.dropped += 1
            return
        }
        var source = frame
        if random.chance(rules.corruptRate), frame.count > 0, frame.count <= scratchSize, let base = frame.baseAddress {
            scratch.copyMemory(from: base, byteCount: frame.count)
            // Past the Ethernet header when there is a payload, so a checksum notices.
            let start = frame.count > 14 ? 14 : 0
            let bit = random.below(UInt64((frame.count - start) * 8))
            let byte = start + Int(bit / 8)
            scratch.storeBytes(
                of: scratch.load(fromByteOffset: byte, as: UInt8.self) ^ (1 << UInt8(bit % 8)), toByteOffset: byte,
                as: UInt8.self)
            source = UnsafeRawBufferPointer(start: scratch, count: frame.count)
            counters.corrupted += 1
        }
        let copies = random.chance(rules.duplicateRate) ? 2 : 1
        if copies == 2 { counters.duplicated += 1 }
        for copy in 0..<copies {
            if copy == 0 && random.chance(rules.reorderRate) {
                let due = now &+ rules.delay &+ rules.reorderTimeout
                hold(source, due: due, releaseAfter: passes &+ UInt64(rules.reorderDepth), counter: \.reordered)
            } else if rules.delay > 0 || rules.jitter > 0 {
                let due = now &+ rules.delay &+ random.below(rules.jitter)
                hold(source, due: due, releaseAfter: .max, counter: \.delayed)
            } else if emit(source) {
                passes &+= 1
                counters.passed += 1
            } else {
                // The consumer is full for this round: keep it for the next.
                hold(source, due: 0, releaseAfter: .max, counter: nil)
            }
        }
        // Frames this one overtook may now be due.
        if held.count > 0 { releaseReady(now: now, emit) }
    }

    private func hold(
        _ frame: UnsafeRawBufferPointer, due: UInt64, releaseAfter: UInt64,
        counter: WritableKeyPath<ImpairmentCounters, Int>?
    ) {
        guard held.hold(frame, due: due, releaseAfter: releaseAfter) else {
            counters.overflowed += 1
            return
        }
        if let counter { counters[keyPath: counter] += 1 }
    }
}
