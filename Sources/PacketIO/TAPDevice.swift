import CShim
import Glibc
import Wire

/// Frame I/O through a Linux TAP device (/dev/net/tun, IFF_TAP | IFF_NO_PI): every read is
/// one frame the kernel sent into the device, every write one frame the kernel receives.
///
/// Slower than `AFPacketRing` (a system call per frame) but needs no physical or veth
/// interface. The kernel side of the TAP has its own MAC; the stack is a separate host
/// behind it, so this device uses a locally administered address of its own.
public final class TAPDevice: PacketIO {
    /// The stack's address on this link (not the TAP's kernel-side address).
    public let macAddress: MACAddress
    /// The device's MTU as the kernel reports it.
    public let mtu: Int
    /// The device name the kernel assigned.
    public let name: String
    /// The queue descriptor: readable when the kernel has a frame for us.
    public var waitDescriptor: Int32 { fd }
    public private(set) var statistics = PacketIOStatistics()

    let fd: Int32
    let slotSize: Int
    let receiveBuffer: UnsafeMutableRawPointer
    let transmitSlots: UnsafeMutableRawPointer
    let transmitCapacity: Int
    var transmitLengths: UnsafeMutablePointer<Int>
    var transmitCount = 0

    /// A locally administered unicast MAC derived from the device name, stable per name.
    public static func defaultAddress(for name: String) -> MACAddress {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
        }
        // 0x02 in the first byte: locally administered, unicast.
        return MACAddress(rawValue: (hash & 0x00FF_FFFF_FFFF) | 0x0200_0000_0000)
    }

    /// Opens (creating it if needed) TAP device `name`. With `multiQueue` the device is
    /// created with IFF_MULTI_QUEUE and each instance opened on it is one more queue.
    public init(
        name: String, multiQueue: Bool = false, macAddress: MACAddress? = nil, transmitCapacity: Int = 256
    ) throws(PacketIOError) {
        guard transmitCapacity >= 1 else { throw .invalidConfiguration("transmitCapacity must be at least 1") }
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw .system(call: "open(/dev/net/tun)", errno: mtcp_shim_errno()) }
        var flags = Int32(IFF_TAP | IFF_NO_PI)
        if multiQueue { flags |= Int32(IFF_MULTI_QUEUE) }
        var actual = [CChar](repeating: 0, count: Int(IFNAMSIZ) + 1)
        let mtu: Int
        let actualName: String
        do throws(PacketIOError) {
            try InterfaceQuery.check(
                mtcp_shim_tun_set_iff(fd, name, flags, &actual), "ioctl(TUNSETIFF)", interface: name)
            actualName = String(decoding: actual.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard mtcp_shim_set_nonblocking(fd) == 0 else {
                throw .system(call: "fcntl(O_NONBLOCK)", errno: mtcp_shim_errno())
            }
            let query = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard query >= 0 else { throw .system(call: "socket(AF_INET)", errno: mtcp_shim_errno()) }
            defer { close(query) }
            mtu = try InterfaceQuery.mtu(socket: query, interface: actualName)
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
        self.name = actualName
        self.mtu = mtu
        self.macAddress = macAddress ?? Self.defaultAddress(for: self.name)
        // Room for a frame of the MTU plus the Ethernet header and a VLAN tag.
        slotSize = (mtu + 18 + 63) & ~63
        self.transmitCapacity = transmitCapacity
        receiveBuffer = UnsafeMutableRawPointer.allocate(byteCount: max(slotSize, 65536), alignment: 64)
        transmitSlots = UnsafeMutableRawPointer.allocate(byteCount: slotSize * transmitCapacity, alignment: 64)
        transmitLengths = UnsafeMutablePointer<Int>.allocate(capacity: transmitCapacity)
        transmitLengths.initialize(repeating: 0, count: transmitCapacity)
    }

    /// Opens `count` queues of one multi-queue TAP device.
    public static func openQueues(name: String, count: Int) throws(PacketIOError) -> [TAPDevice] {
        var queues: [TAPDevice] = []
        for _ in 0..<count {
            queues.append(try TAPDevice(name: name, multiQueue: count > 1))
        }
        return queues
    }

    deinit {
        close(fd)
        receiveBuffer.deallocate()
        transmitSlots.deallocate()
        transmitLengths.deallocate()
    }

    /// Reads frames until `limit`, or until the device has none (EAGAIN).
    public func receive(limit: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> Int {
        var delivered = 0
        let capacity = max(slotSize, 65536)
        while delivered < limit {
            let n = read(fd, receiveBuffer, capacity)
            if n < 0 {
                let code = mtcp_shim_errno()
                if code == EINTR { continue }
                if code != EAGAIN { statistics.receiveDrops += 1 }
                break
            }
            if n == 0 { break }
            statistics.framesReceived += 1
            statistics.bytesReceived += n
            body(UnsafeRawBufferPointer(start: receiveBuffer, count: n))
            delivered += 1
        }
        return delivered
    }

    public func nextTransmitBuffer() -> UnsafeMutableRawBufferPointer? {
        if transmitCount == transmitCapacity { flush() }
        guard transmitCount < transmitCapacity else {
            statistics.transmitRingFull += 1
            return nil
        }
        return UnsafeMutableRawBufferPointer(start: transmitSlots + transmitCount * slotSize, count: slotSize)
    }

    public func commitTransmit(length: Int) {
        guard transmitCount < transmitCapacity, length > 0, length <= slotSize else {
            statistics.transmitErrors += 1
            return
        }
        transmitLengths[transmitCount] = length
        transmitCount += 1
    }

    /// Writes the queued frames, one write() each (a TAP takes exactly one frame per write).
    public func flush() {
        for i in 0..<transmitCount {
            let length = transmitLengths[i]
            var written = write(fd, transmitSlots + i * slotSize, length)
            while written < 0 && mtcp_shim_errno() == EINTR {
                written = write(fd, transmitSlots + i * slotSize, length)
            }
            if written == length {
                statistics.framesSent += 1
                statistics.bytesSent += length
            } else {
                statistics.transmitErrors += 1
            }
        }
        transmitCount = 0
    }
}
