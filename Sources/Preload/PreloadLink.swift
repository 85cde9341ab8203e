import PacketIO
import PacketIODPDK
import Wire

/// The link a preloaded process's stack runs on: one concrete type over the backends, so the
/// stack stays statically dispatched (a switch per call, no existential).
final class PreloadLink: PacketIO {
    enum Backend {
        case ring(AFPacketRing)
        case tap(TAPDevice)
        /// A DPDK queue: no descriptor to sleep on, so waits are short naps.
        case dpdk(DPDKQueue, DPDKPort)
    }

    let backend: Backend

    init(_ backend: Backend) { self.backend = backend }

    var macAddress: MACAddress {
        switch backend {
        case .ring(let io): io.macAddress
        case .tap(let io): io.macAddress
        case .dpdk(let io, _): io.macAddress
        }
    }

    var mtu: Int {
        switch backend {
        case .ring(let io): io.mtu
        case .tap(let io): io.mtu
        case .dpdk(let io, _): io.mtu
        }
    }

    var waitDescriptor: Int32 {
        switch backend {
        case .ring(let io): io.waitDescriptor
        case .tap(let io): io.waitDescriptor
        case .dpdk(let io, _): io.waitDescriptor
        }
    }

    var statistics: PacketIOStatistics {
        switch backend {
        case .ring(let io): io.statistics
        case .tap(let io): io.statistics
        case .dpdk(let io, _): io.statistics
        }
    }

    func receive(limit: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> Int {
        switch backend {
        case .ring(let io): io.receive(limit: limit, body)
        case .tap(let io): io.receive(limit: limit, body)
        case .dpdk(let io, _): io.receive(limit: limit, body)
        }
    }

    func nextTransmitBuffer() -> UnsafeMutableRawBufferPointer? {
        switch backend {
        case .ring(let io): io.nextTransmitBuffer()
        case .tap(let io): io.nextTransmitBuffer()
        case .dpdk(let io, _): io.nextTransmitBuffer()
        }
    }

    func commitTransmit(length: Int) {
        switch backend {
        case .ring(let io): io.commitTransmit(length: length)
        case .tap(let io): io.commitTransmit(length: length)
        case .dpdk(let io, _): io.commitTransmit(length: length)
        }
    }

    func flush() {
        switch backend {
        case .ring(let io): io.flush()
        case .tap(let io): io.flush()
        case .dpdk(let io, _): io.flush()
        }
    }
}
