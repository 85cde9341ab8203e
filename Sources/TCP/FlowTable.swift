import Wire

/// The endpoint's flow → slot map: open addressing with linear probing over preallocated
/// arrays, keyed by a cheap hash of the 4-tuple mixed with a per-endpoint secret.
///
/// `Dictionary` hashed every segment's flow with seeded SipHash (a few percent of the packet
/// path in profiles). The secret keeps a remote peer from choosing tuples that collide (hash
/// flooding); deletion shifts entries back, so probes never cross tombstones.
public struct FlowTable {
    private var keys: [TCPFlow]
    /// Slot of each entry, -1 where empty.
    private var values: [Int32]
    private var mask: Int
    public private(set) var count = 0
    private let key: (UInt64, UInt64)

    public init(secret: (UInt64, UInt64), capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = Array(repeating: .none, count: size)
        values = Array(repeating: -1, count: size)
        mask = size - 1
        key = (secret.0 | 1, secret.1 | 1)
    }

    @inline(__always)
    private func home(_ flow: TCPFlow) -> Int {
        // The low halves carry an IPv4 flow's addresses and an IPv6 one's interface
        // identifiers; the high halves fold in for IPv6 (they are 0 for IPv4).
        let addresses =
            (flow.localAddress.low << 32 | flow.localAddress.low >> 32) ^ flow.remoteAddress.low
            ^ (flow.localAddress.high &* 0x9E37_79B9_7F4A_7C15) ^ flow.remoteAddress.high
        let ports = UInt64(flow.localPort) << 16 | UInt64(flow.remotePort)
        // Two keyed multiplications folded: cheap, and unpredictable without the secret.
        let a = (addresses ^ key.1).multipliedFullWidth(by: key.0)
        let b = (ports ^ a.low).multipliedFullWidth(by: key.1)
        return Int(truncatingIfNeeded: (b.high ^ a.high ^ b.low) >> 7) & mask
    }

    public subscript(flow: TCPFlow) -> Int32? {
        var i = home(flow)
        while values[i] >= 0 {
            if keys[i] == flow { return values[i] }
            i = (i + 1) & mask
        }
        return nil
    }

    public mutating func insert(_ flow: TCPFlow, slot: Int32) {
        precondition(slot >= 0)
        if (count + 1) * 2 > values.count { grow() }
        var i = home(flow)
        while values[i] >= 0 {
            if keys[i] == flow {
                values[i] = slot
                return
            }
            i = (i + 1) & mask
        }
        keys[i] = flow
        values[i] = slot
        count += 1
    }

    public mutating func remove(_ flow: TCPFlow) {
        var i = home(flow)
        while values[i] >= 0 {
            if keys[i] == flow { break }
            i = (i + 1) & mask
        }
        guard values[i] >= 0 else { return }
        values[i] = -1
        count -= 1
        // Backward shift: move later entries of the run into the hole when their home allows.
        var hole = i
        var j = (i + 1) & mask
        while values[j] >= 0 {
            let h = home(keys[j])
            // Entry j may move to the hole when its home is not cyclically in (hole, j].
            let distanceToHole = (j - h) & mask
            let distanceBetween = (j - hole) & mask
            if distanceToHole >= distanceBetween {
                keys[hole] = keys[j]
                values[hole] = values[j]
                values[j] = -1
                hole = j
            }
            j = (j + 1) & mask
        }
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldValues = values
        let size = values.count * 2
        keys = Array(repeating: oldKeys[0], count: size)
        values = Array(repeating: -1, count: size)
        mask = size - 1
        count = 0
        for i in oldValues.indices where oldValues[i] >= 0 { insert(oldKeys[i], slot: oldValues[i]) }
    }
}
