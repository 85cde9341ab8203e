import PacketIO
import PacketIODPDK
import Wire

/// The link of a stack whose backend is chosen at run time (the preload library, mTCP's C
/// API): one concrete type over the backends, so the stack stays statically dispatched (a
/// switch per call, no existential).
public final class SelectedLink: PacketIO {
    public enum Backend {
        case ring(AFPacketRing)
        case tap(TAPDevice)
        /// A DPDK queue: no descriptor to sleep on, so waits are short naps.
        case dpdk(DPDKQueue, DPDKPort)
        /// Another link with seeded faults (MTCP_IMPAIR, MTCP_IMPAIR_TX, MTCP_IMPAIR_RX).
        case impaired(ImpairedPacketIO<SelectedLink>)
    }

    public let backend: Backend
    /// The backend's object for the per-packet calls, used without reference counting:
    /// binding it out of `backend` retained and released it on every receive and flush.
    /// (`backend` keeps it alive.)
    let ring: Unmanaged<AFPacketRing>?
    let tap: Unmanaged<TAPDevice>?
    let queue: Unmanaged<DPDKQueue>?
    let impaired: Unmanaged<ImpairedPacketIO<SelectedLink>>?

    public init(_ backend: Backend) {
        self.backend = backend
        switch backend {
        case .ring(let io): (ring, tap, queue, impaired) = (.passUnretained(io), nil, nil, nil)
        case .tap(let io): (ring, tap, queue, impaired) = (nil, .passUnretained(io), nil, nil)
        case .dpdk(let io, _): (ring, tap, queue, impaired) = (nil, nil, .passUnretained(io), nil)
        case .impaired(let io): (ring, tap, queue, impaired) = (nil, nil, nil, .passUnretained(io))
        }
    }

    /// `link` with the faults `options` ask for (MTCP_IMPAIR*), or `link` itself: how every
    /// host (the examples' launcher, the preload library, the C API) applies them. `index`
    /// varies the seed per instance.
    public static func impaired(_ link: SelectedLink, by options: StackOptions, index: Int) -> SelectedLink {
        guard let wrapping = StackLauncher.impaired(link, options, index: index) else { return link }
        return SelectedLink(.impaired(wrapping))
    }

    /// The link under any impairment.
    public var underlying: SelectedLink {
        if case .impaired(let io) = backend { return io.base.underlying }
        return self
    }

    public var macAddress: MACAddress {
        switch backend {
        case .ring(let io): io.macAddress
        case .tap(let io): io.macAddress
        case .dpdk(let io, _): io.macAddress
        case .impaired(let io): io.macAddress
        }
    }

    /// The ring's (an impairment layer may have corrupted the frame: never).
    public var receivedChecksumVerified: Bool {
        if let ring { return ring._withUnsafeGuaranteedRef { $0.receivedChecksumVerified } }
        return false
    }

    public var transmitChecksumOffload: Bool {
        switch backend {
        case .dpdk(let io, _): return io.transmitChecksumOffload
        case .impaired(let io): return io.base.transmitChecksumOffload
        default: return false
        }
    }

    public var mtu: Int {
        switch backend {
        case .ring(let io): io.mtu
        case .tap(let io): io.mtu
        case .dpdk(let io, _): io.mtu
        case .impaired(let io): io.mtu
        }
    }

    public var waitDescriptor: Int32 {
        switch backend {
        case .ring(let io): io.waitDescriptor
        case .tap(let io): io.waitDescriptor
        case .dpdk(let io, _): io.waitDescriptor
        case .impaired(let io): io.waitDescriptor
        }
    }

    public var statistics: PacketIOStatistics {
        switch backend {
        case .ring(let io): io.statistics
        case .tap(let io): io.statistics
        case .dpdk(let io, _): io.statistics
        case .impaired(let io): io.statistics
        }
    }

    public func receive(limit: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> Int {
        if let ring { return ring._withUnsafeGuaranteedRef { $0.receive(limit: limit, body) } }
        if let queue { return queue._withUnsafeGuaranteedRef { $0.receive(limit: limit, body) } }
        if let impaired { return impaired._withUnsafeGuaranteedRef { $0.receive(limit: limit, body) } }
        return tap!._withUnsafeGuaranteedRef { $0.receive(limit: limit, body) }
    }

    public func nextTransmitBuffer() -> UnsafeMutableRawBufferPointer? {
        if let ring { return ring._withUnsafeGuaranteedRef { $0.nextTransmitBuffer() } }
        if let queue { return queue._withUnsafeGuaranteedRef { $0.nextTransmitBuffer() } }
        if let impaired { return impaired._withUnsafeGuaranteedRef { $0.nextTransmitBuffer() } }
        return tap!._withUnsafeGuaranteedRef { $0.nextTransmitBuffer() }
    }

    public func commitTransmit(length: Int) {
        if let ring { return ring._withUnsafeGuaranteedRef { $0.commitTransmit(length: length) } }
        if let queue { return queue._withUnsafeGuaranteedRef { $0.commitTransmit(length: length) } }
        if let impaired { return impaired._withUnsafeGuaranteedRef { $0.commitTransmit(length: length) } }
        return tap!._withUnsafeGuaranteedRef { $0.commitTransmit(length: length) }
    }

    public func flush() {
        if let ring { return ring._withUnsafeGuaranteedRef { $0.flush() } }
        if let queue { return queue._withUnsafeGuaranteedRef { $0.flush() } }
        if let impaired { return impaired._withUnsafeGuaranteedRef { $0.flush() } }
        return tap!._withUnsafeGuaranteedRef { $0.flush() }
    }
}
