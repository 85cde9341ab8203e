import Synchronization

/// What the library keeps for one stack socket, shared by every fd that refers to it (dup).
struct SocketRecord {
    /// The socket in the process's stack.
    var stackID: Int32
    /// Made by an ancestor before fork: its connection belongs to that process. A listener
    /// is adopted (re-created in this process's stack) when first used here.
    var inherited = false
    /// Descriptors referring to it.
    var references = 1
    /// The application's O_NONBLOCK (the stack socket itself never blocks).
    var nonBlocking = false
    /// The placeholder is a real kernel listener too (0.0.0.0 also on loopback).
    var kernelListener = false
    /// socket(2)'s protocol, for a fall-back to the kernel.
    var proto: Int32
    var listening = false
    var backlog: Int32 = 128
    var localPort: UInt16 = 0
    var bound = false
    /// SO_RCVTIMEO / SO_SNDTIMEO in nanoseconds (0: none).
    var receiveTimeout: Int64 = 0
    var sendTimeout: Int64 = 0
    /// Whether options are recorded (not for accepted or connected sockets).
    var keepsOptions = true
    /// Options set so far, replayed on a kernel socket when this one falls back.
    var replay: [(level: Int32, name: Int32, value: [UInt8])] = []
    /// ECONNRESET/ETIMEDOUT was reported once: later writes give EPIPE, reads end of stream.
    var failureReported = false
    /// Alternates accept between the stack and the kernel listener.
    var preferKernel = false
    /// The kernel listener may have a connection: an accept on the kernel that finds none
    /// costs the kernel a socket allocation, so a non-blocking accept tries it only when an
    /// epoll or poll reported it, or at least every 10 ms.
    var kernelHalfMayBeReady = true
    var kernelHalfLastTry: UInt64 = 0
    /// A listener's copies in the other instances: the stack socket in instance k at [k]
    /// (-1: none); its own instance's entry is unused.
    var replicas: [Int32] = []
    /// The instance whose listener an accept tries first (they take turns).
    var acceptTurn = 0
}

/// The stack side of an application's epoll fd: one stack event poll set per instance (a
/// part), whose readiness is merged into the kernel set through an eventfd of the part's inside
/// it. Guarded by the process lock; each part's sets by its instance's lock.
final class EpollShadow {
    var parts: [EpollPart] = []
    var references = 1
    /// The application's data of each kernel listener half in the kernel set, which holds it
    /// under `PreloadRuntime.kernelHalfTag | fd` so that its events can be recognised.
    var kernelHalfData: [Int32: UInt64] = [:]
    /// Alternates which side fills an epoll_wait first when both have events (threads
    /// waiting on one set flip it without a lock).
    let preferKernel = Atomic<Bool>(false)
    /// Inherited across fork: its kernel set is shared with the parent.
    var inherited = false
    /// The application's own kernel descriptors in the kernel set (an upper bound: a closed
    /// descriptor leaves the set without an EPOLL_CTL_DEL). While it is 0, an epoll_wait
    /// that found stack events skips the kernel's epoll_wait.
    var kernelMembers = 0

    /// An application descriptor went into (or out of) the kernel set.
    func countKernelMember(added: Bool) {
        kernelMembers = max(0, kernelMembers + (added ? 1 : -1))
    }
}

/// One instance's side of an epoll shadow (guarded by that instance's lock).
final class EpollPart {
    let instance: Int
    let stackEpoll: Int32
    let notifyFD: Int32
    let isSignalled = UnsafeMutablePointer<Bool>.allocate(capacity: 1)
    /// A stack socket was ever registered here: parts never used are not asked.
    var used = false

    init(instance: Int, stackEpoll: Int32, notifyFD: Int32) {
        self.instance = instance
        self.stackEpoll = stackEpoll
        self.notifyFD = notifyFD
        isSignalled.initialize(to: false)
    }
    deinit { isSignalled.deallocate() }

    var target: SignalTarget { SignalTarget(stackEpoll: stackEpoll, notifyFD: notifyFD, isSignalled: isSignalled) }
}

/// A stack event poll set and eventfd lent to one blocking call (poll, select, blocking I/O).
final class WaitSet {
    let stackEpoll: Int32
    let notifyFD: Int32
    let isSignalled = UnsafeMutablePointer<Bool>.allocate(capacity: 1)

    init(stackEpoll: Int32, notifyFD: Int32) {
        self.stackEpoll = stackEpoll
        self.notifyFD = notifyFD
        isSignalled.initialize(to: false)
    }
    deinit { isSignalled.deallocate() }
}
