import Synchronization

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
