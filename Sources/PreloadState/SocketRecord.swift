/// What the preload library keeps for one stack socket, shared by every fd that refers to it
/// (dup). Plain data: the hooks keep it in their instance's `RecordTable`.
public struct SocketRecord {
    /// What the socket is, as the application made it so far.
    public enum Role: Equatable, Sendable {
        /// socket() only.
        case fresh
        /// bind() done.
        case bound
        /// listen() done (after a bind or not).
        case listener
    }

    /// Whose socket it is.
    public enum Ownership: Equatable, Sendable {
        case own
        /// Made by an ancestor before fork: its connection belongs to that process. A listener
        /// is adopted (re-created in this process's stack) when first used here.
        case inherited
    }

    /// The socket in its instance's stack.
    public var stackID: Int32
    /// Unique among the records its table ever held (`RecordTable.add`): a call that waits
    /// tells by it whether its descriptor was closed meanwhile and the entry given to another.
    public var serial: UInt64 = 0
    public var role: Role = .fresh
    public var ownership: Ownership = .own
    /// Descriptors referring to it.
    public var references = 1
    /// The application's O_NONBLOCK (the stack socket itself never blocks).
    public var nonBlocking = false
    /// The other file status flags F_SETFL keeps (O_APPEND, O_NOATIME, O_ASYNC): F_GETFL
    /// shows them as Linux does, though TCP does nothing with them.
    public var statusFlags: Int32 = 0
    /// The placeholder is a real kernel listener too (0.0.0.0 also on loopback).
    public var kernelListener = false
    /// socket(2)'s protocol, for a fall-back to the kernel.
    public var proto: Int32
    /// An AF_INET6 socket (dual-stack: its IPv4 traffic is the stack's, its addresses are
    /// shown v4-mapped), and its IPV6_V6ONLY.
    public var inet6 = false
    public var v6Only = false
    /// Other IPPROTO_IPV6 options an AF_INET6 socket set (IPV6_TCLASS ...), by name: what
    /// getsockopt answers. Its IPv4 traffic does not use them, as on Linux, where a v4-mapped
    /// flow takes the IPv4 options (IP_TOS) instead.
    public var ipv6Options: [Int32: Int32] = [:]
    public var backlog: Int32 = 128
    public var localPort: UInt16 = 0
    /// SO_RCVTIMEO / SO_SNDTIMEO in nanoseconds (0: none).
    public var receiveTimeout: Int64 = 0
    public var sendTimeout: Int64 = 0
    /// Whether options are recorded (not for accepted or connected sockets).
    public var keepsOptions = true
    /// Options set so far, replayed on a kernel socket when this one falls back, and on a
    /// listener's copies and adoptions.
    public var replay: [(level: Int32, name: Int32, value: [UInt8])] = []
    /// ECONNRESET/ETIMEDOUT was reported once: later writes give EPIPE, reads end of stream.
    public var failureReported = false
    /// Alternates accept between the stack and the kernel listener.
    public var preferKernel = false
    /// The kernel listener may have a connection: an accept on the kernel that finds none
    /// costs the kernel a socket allocation, so a non-blocking accept tries it only when an
    /// epoll or poll reported it, or at least every 10 ms.
    public var kernelHalfMayBeReady = true
    public var kernelHalfLastTry: UInt64 = 0
    /// A listener's stack sockets by instance when it has copies in several (-1: none there);
    /// empty while it lives in its own instance only.
    public var copies: [Int32] = []
    /// The instance whose listener an accept tries first (they take turns).
    public var acceptTurn = 0

    public init(stackID: Int32, proto: Int32) {
        self.stackID = stackID
        self.proto = proto
    }

    public var listening: Bool { role == .listener }
    public var bound: Bool { role != .fresh }
    public var inherited: Bool { ownership == .inherited }

    /// The stack sockets behind this record as (instance, socket): each copy, or the one in
    /// `home`, the instance that holds the record.
    public func stackSockets(home: Int) -> StackSockets {
        StackSockets(home: home, stackID: stackID, copies: copies)
    }

    /// The copies outside `home` (what a change to the record's own socket must be repeated on);
    /// empty, with nothing allocated, for a socket without copies.
    public func otherCopies(home: Int) -> [(instance: Int, id: Int32)] {
        stackSockets(home: home).filter { $0.instance != home }
    }

    /// Records an option for replay, replacing an earlier value of the same option.
    public mutating func keep(level: Int32, name: Int32, value: [UInt8]) {
        guard keepsOptions else { return }
        replay.removeAll { $0.level == level && $0.name == name }
        replay.append((level, name, value))
    }
}

/// The stack sockets of a record, walked without building an array (hooks on every socket
/// ask for them): each copy by instance, skipping instances without one, or the record's own
/// socket in its home instance when it has no copies.
public struct StackSockets: Sequence {
    public let home: Int
    public let stackID: Int32
    public let copies: [Int32]

    public struct Iterator: IteratorProtocol {
        let sockets: StackSockets
        var position = 0

        public mutating func next() -> (instance: Int, id: Int32)? {
            if sockets.copies.isEmpty {
                guard position == 0 else { return nil }
                position = 1
                return (sockets.home, sockets.stackID)
            }
            while position < sockets.copies.count {
                let k = position
                position += 1
                if sockets.copies[k] >= 0 { return (k, sockets.copies[k]) }
            }
            return nil
        }
    }

    public func makeIterator() -> Iterator { Iterator(sockets: self) }
}
