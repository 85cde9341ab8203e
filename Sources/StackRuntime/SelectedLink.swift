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
    }

    public let backend: Backend

    public init(_ backend: Backend) { self.backend = backend }

    public var macAddress: MACAddress {
        switch backend {
        case .ring(let io): io.macAddress
        case .tap(let io): io.macAddress
        case .dpdk(let io, _): io.macAddress
        }
    }

    public var mtu: Int {
        switch backend {
        case .ring(let io): io.mtu
        case .tap(let io): io.mtu
        case .dpdk(let io, _): io.mtu
        }
    }

    public var waitDescriptor: Int32 {
        switch backend {
        case .ring(let io): io.waitDescriptor
        case .tap(let io): io.waitDescriptor
        case .dpdk(let io, _): io.waitDescriptor
        }
    }

    public var statistics: PacketIOStatistics {
        switch backend {
        case .ring(let io): io.statistics
        case .tap(let io): io.statistics
        case .dpdk(let io, _): io.statistics
        }
    }

    public func receive(limit: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> Int {
        switch backend {
        case .ring(let io): io.receive(limit: limit, body)
        case .tap(let io): io.receive(limit: limit, body)
        case .dpdk(let io, _): io.receive(limit: limit, body)
        }
    }

    public func nextTransmitBuffer() -> UnsafeMutableRawBufferPointer? {
        switch backend {
        case .ring(let io): io.nextTransmitBuffer()
        case .tap(let io): io.nextTransmitBuffer()
        case .dpdk(let io, _): io.nextTransmitBuffer()
        }
    }

    public func commitTransmit(length: Int) {
        switch backend {
        case .ring(let io): io.commitTransmit(length: length)
        case .tap(let io): io.commitTransmit(length: length)
        case .dpdk(let io, _): io.commitTransmit(length: length)
        }
    }

    public func flush() {
        switch backend {
        case .ring(let io): io.flush()
        case .tap(let io): io.flush()
        case .dpdk(let io, _): io.flush()
        }
    }
}
