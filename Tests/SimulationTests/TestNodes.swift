import Simulation
import TCP
import Wire

/// Builds a minimal IPv4-shaped packet: addresses at bytes 12..<20, a 32-bit tag at 20..<24, padded to `size`.
func makePacket(from source: IPv4Address, to destination: IPv4Address, tag: UInt32, size: Int = 64) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: max(size, 24))
    bytes[0] = 0x45
    for i in 0..<4 {
        let shift = UInt32(24 - 8 * i)
        bytes[12 + i] = UInt8(truncatingIfNeeded: source.rawValue >> shift)
        bytes[16 + i] = UInt8(truncatingIfNeeded: destination.rawValue >> shift)
        bytes[20 + i] = UInt8(truncatingIfNeeded: tag >> shift)
    }
    for i in 24..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ Int(tag)) }
    return bytes
}

/// Reads the tag written by `makePacket`.
func tag(of bytes: [UInt8]) -> UInt32 {
    bytes[20..<24].reduce(0) { $0 << 8 | UInt32($1) }
}

/// A test node: sends what is queued in `outbox` (optionally only from given instants on), records
/// every arrival and every wake-up, and can echo packets back to their sender.
final class TestNode: SimulatedNode {
    let address: IPAddress
    /// Packets to send at the next `transmit` call, each not before its instant.
    var outbox: [(notBefore: Instant, bytes: [UInt8])] = []
    /// Wake-ups still wanted, ascending.
    var wakeups: [Instant] = []
    /// Instants at which a requested wake-up was served.
    var firedWakeups: [Instant] = []
    /// Every arrival, in order.
    var received: [(time: Instant, bytes: [UInt8])] = []
    /// Reply to every packet with its addresses swapped.
    var echo = false
    /// Every instant `transmit` was called.
    var transmitCalls: [Instant] = []

    init(_ address: IPv4Address) { self.address = IPAddress(address) }

    func queue(_ bytes: [UInt8], at instant: Instant = .zero) {
        outbox.append((instant, bytes))
        if let last = wakeups.last, last > instant {
            wakeups.append(instant)
            wakeups.sort()
        } else {
            wakeups.append(instant)
        }
    }

    func receive(packet: UnsafeRawBufferPointer, now: Instant) {
        let bytes = Array(packet)
        received.append((now, bytes))
        if echo {
            var reply = bytes
            for i in 0..<4 { reply.swapAt(12 + i, 16 + i) }
            outbox.append((now, reply))
        }
    }

    func transmit(now: Instant, send: (UnsafeRawBufferPointer) -> Void) {
        transmitCalls.append(now)
        let due = wakeups.prefix { $0 <= now }.count
        firedWakeups += repeatElement(now, count: due)
        wakeups.removeFirst(due)
        var kept: [(notBefore: Instant, bytes: [UInt8])] = []
        for entry in outbox {
            if entry.notBefore <= now {
                entry.bytes.withUnsafeBytes { send($0) }
            } else {
                kept.append(entry)
            }
        }
        outbox = kept
    }

    var nextWakeup: Instant? { wakeups.first }

    var receivedTags: [UInt32] { received.map { tag(of: $0.bytes) } }
}

/// A node that always claims a wake-up is due but never makes progress.
final class StuckNode: SimulatedNode {
    let address: IPAddress
    var transmitCount = 0
    init(_ address: IPv4Address) { self.address = IPAddress(address) }
    func receive(packet: UnsafeRawBufferPointer, now: Instant) {}
    func transmit(now: Instant, send: (UnsafeRawBufferPointer) -> Void) { transmitCount += 1 }
    var nextWakeup: Instant? { .zero }
}

/// A node that wants a wake-up every `period`, forever.
final class PeriodicNode: SimulatedNode {
    let address: IPAddress
    let period: Interval
    var next: Instant
    var fired: [Instant] = []
    init(_ address: IPv4Address, period: Interval) {
        self.address = IPAddress(address)
        self.period = period
        next = .zero + period
    }
    func receive(packet: UnsafeRawBufferPointer, now: Instant) {}
    func transmit(now: Instant, send: (UnsafeRawBufferPointer) -> Void) {
        if now >= next {
            fired.append(now)
            next = next + period
        }
    }
    var nextWakeup: Instant? { next }
}

let addressA = IPv4Address(10, 0, 0, 1)
let addressB = IPv4Address(10, 0, 0, 2)
let addressC = IPv4Address(10, 0, 0, 3)

extension Instant {
    static func ms(_ n: UInt64) -> Instant { .zero + .milliseconds(n) }
    static func us(_ n: UInt64) -> Instant { .zero + .microseconds(n) }
    static func s(_ n: UInt64) -> Instant { .zero + .seconds(n) }
}
