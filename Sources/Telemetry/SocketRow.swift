/// One row of a stack instance's socket table as the statistics region holds it: what
/// `mtcp-stat --sockets` shows, like `ss -tni`.
public struct SocketRow: Equatable, Sendable {
    public enum Kind: UInt8, Sendable {
        case connection = 0
        case listener = 1
    }

    public static let length = 128

    /// Linux's TCP state number (1 ESTABLISHED ... 10 LISTEN, include/net/tcp_states.h).
    public var state: UInt8 = 0
    public var kind = Kind.connection
    public var instance: UInt8 = 0
    /// Bit 0: the application holds it (accepted or connected); bit 1: closed by the
    /// application and still finishing (an orphan, as ss shows after close).
    public var flags: UInt8 = 0
    /// IPv4 addresses as their four bytes in network order, read as a native number.
    public var localAddress: UInt32 = 0
    public var remoteAddress: UInt32 = 0
    /// An IPv6 row's addresses (flag `ipv6`), each as two 64-bit halves in host order.
    public var localAddress6: (high: UInt64, low: UInt64) = (0, 0)
    public var remoteAddress6: (high: UInt64, low: UInt64) = (0, 0)
    public var localPort: UInt16 = 0
    public var remotePort: UInt16 = 0
    /// Bytes sent and not acknowledged or not yet sent (a listener: its backlog), bytes
    /// received and not read (a listener: connections waiting to be accepted).
    public var sendQueue: UInt32 = 0
    public var receiveQueue: UInt32 = 0
    public var congestionWindow: UInt32 = 0
    public var slowStartThreshold: UInt32 = 0
    /// Microseconds; 0: no sample yet.
    public var smoothedRTT: UInt32 = 0
    public var rttVariance: UInt32 = 0
    public var retransmissionTimeout: UInt32 = 0
    public var mss: UInt32 = 0
    public var retransmissions: UInt32 = 0
    public var sendWindow: UInt32 = 0
    public var bytesSent: UInt64 = 0
    public var bytesReceived: UInt64 = 0

    public static let heldByApplication: UInt8 = 1
    public static let orphan: UInt8 = 2
    /// Bit 2: an IPv6 socket (the addresses are `localAddress6` and `remoteAddress6`).
    public static let ipv6: UInt8 = 4

    public static func == (lhs: SocketRow, rhs: SocketRow) -> Bool {
        lhs.fixedPart == rhs.fixedPart && lhs.localAddress6 == rhs.localAddress6
            && lhs.remoteAddress6 == rhs.remoteAddress6
    }

    /// Every field but the IPv6 addresses (tuples have no synthesized equality).
    var fixedPart: [UInt64] {
        [
            UInt64(state), UInt64(kind.rawValue), UInt64(instance), UInt64(flags), UInt64(localAddress),
            UInt64(remoteAddress), UInt64(localPort), UInt64(remotePort), UInt64(sendQueue), UInt64(receiveQueue),
            UInt64(congestionWindow), UInt64(slowStartThreshold), UInt64(smoothedRTT), UInt64(rttVariance),
            UInt64(retransmissionTimeout), UInt64(mss), UInt64(retransmissions), UInt64(sendWindow), bytesSent,
            bytesReceived,
        ]
    }

    public init() {}

    func store(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: state, toByteOffset: 0, as: UInt8.self)
        p.storeBytes(of: kind.rawValue, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: instance, toByteOffset: 2, as: UInt8.self)
        p.storeBytes(of: flags, toByteOffset: 3, as: UInt8.self)
        p.storeBytes(of: localAddress, toByteOffset: 4, as: UInt32.self)
        p.storeBytes(of: remoteAddress, toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: localPort, toByteOffset: 12, as: UInt16.self)
        p.storeBytes(of: remotePort, toByteOffset: 14, as: UInt16.self)
        func put(_ word: UInt32, _ i: Int) { p.storeBytes(of: word, toByteOffset: 16 + 4 * i, as: UInt32.self) }
        put(sendQueue, 0)
        put(receiveQueue, 1)
        put(congestionWindow, 2)
        put(slowStartThreshold, 3)
        put(smoothedRTT, 4)
        put(rttVariance, 5)
        put(retransmissionTimeout, 6)
        put(mss, 7)
        put(retransmissions, 8)
        put(sendWindow, 9)
        p.storeBytes(of: bytesSent, toByteOffset: 56, as: UInt64.self)
        p.storeBytes(of: bytesReceived, toByteOffset: 64, as: UInt64.self)
        p.storeBytes(of: localAddress6.high, toByteOffset: 72, as: UInt64.self)
        p.storeBytes(of: localAddress6.low, toByteOffset: 80, as: UInt64.self)
        p.storeBytes(of: remoteAddress6.high, toByteOffset: 88, as: UInt64.self)
        p.storeBytes(of: remoteAddress6.low, toByteOffset: 96, as: UInt64.self)
    }

    init(loadingFrom p: UnsafeRawPointer) {
        state = p.load(fromByteOffset: 0, as: UInt8.self)
        kind = Kind(rawValue: p.load(fromByteOffset: 1, as: UInt8.self)) ?? .connection
        instance = p.load(fromByteOffset: 2, as: UInt8.self)
        flags = p.load(fromByteOffset: 3, as: UInt8.self)
        localAddress = p.load(fromByteOffset: 4, as: UInt32.self)
        remoteAddress = p.load(fromByteOffset: 8, as: UInt32.self)
        localPort = p.load(fromByteOffset: 12, as: UInt16.self)
        remotePort = p.load(fromByteOffset: 14, as: UInt16.self)
        func word(_ i: Int) -> UInt32 { p.load(fromByteOffset: 16 + 4 * i, as: UInt32.self) }
        sendQueue = word(0)
        receiveQueue = word(1)
        congestionWindow = word(2)
        slowStartThreshold = word(3)
        smoothedRTT = word(4)
        rttVariance = word(5)
        retransmissionTimeout = word(6)
        mss = word(7)
        retransmissions = word(8)
        sendWindow = word(9)
        bytesSent = p.load(fromByteOffset: 56, as: UInt64.self)
        bytesReceived = p.load(fromByteOffset: 64, as: UInt64.self)
        localAddress6 = (p.load(fromByteOffset: 72, as: UInt64.self), p.load(fromByteOffset: 80, as: UInt64.self))
        remoteAddress6 = (p.load(fromByteOffset: 88, as: UInt64.self), p.load(fromByteOffset: 96, as: UInt64.self))
    }

    /// ss's names of Linux's TCP states.
    public var stateName: String {
        switch state {
        case 1: "ESTAB"
        case 2: "SYN-SENT"
        case 3: "SYN-RECV"
        case 4: "FIN-WAIT-1"
        case 5: "FIN-WAIT-2"
        case 6: "TIME-WAIT"
        case 7: "CLOSED"
        case 8: "CLOSE-WAIT"
        case 9: "LAST-ACK"
        case 10: "LISTEN"
        case 11: "CLOSING"
        default: "UNKNOWN"
        }
    }
}
