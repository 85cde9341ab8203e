import CShim
import Glibc
import PacketIO
import Stack
import StackRuntime
import TCP
import Wire

/// What a context id names: a stack socket, one end of an mtcp_pipe, or an epoll set.
enum ContextDescriptor {
    case socket(Int32)
    case pipeRead(ContextPipe)
    case pipeWrite(ContextPipe)
    case epoll(ContextEpoll)
}

struct ContextEntry {
    var descriptor: ContextDescriptor
    /// The id's own O_NONBLOCK: the stack sockets underneath are always non-blocking, and
    /// blocking calls wait here, where the lock can be dropped while sleeping.
    var nonBlocking = false
}

/// An mtcp_epoll set: a stack event poll set for the sockets and registrations of pipe ends.
final class ContextEpoll {
    struct PipeRegistration {
        var interest: UInt32
        var data: UInt64
        var pendingEdges: UInt32
        var disabled = false
    }

    let stackEpoll: Int32
    var pipes: [Int32: PipeRegistration] = [:]

    init(stackEpoll: Int32) { self.stackEpoll = stackEpoll }
}

/// One mTCP context: a stack instance on its own queue, the ids the program uses (small
/// integers, lowest free first, below max_concurrency), and a lock so any thread may call.
///
/// Run to completion: the calling thread drives the stack. mtcp_epoll_wait and calls that find
/// nothing to do run loop rounds; a call that must wait drops the lock and sleeps in poll(2) on
/// the link's descriptor and a per-sleeper eventfd (written when another thread's round takes
/// frames or changes a pipe), bounded by the stack's next timer.
final class MTCPContext {
    let cpu: Int
    let stack: NetworkStack<SelectedLink>
    let maxIDs: Int
    var entries: [ContextEntry?] = []
    var lowestFree = 0
    /// The epoll sets, for pipe readiness edges.
    var epollSets: [ContextEpoll] = []
    let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// The eventfds of threads sleeping in `wait`, and spare ones.
    var sleepers: [Int32] = []
    var spareEventFDs: [Int32] = []
    var framesSeen = 0
    /// Epoll events collected under the lock before they are copied out.
    var scratch: UnsafeMutableBufferPointer<EpollEvent>
    /// What mtcp_init_rss prepared last.
    var rss: SourcePool?
    /// True when sibling contexts receive from the same link (num_cores > 1).
    let sharesLink: Bool

    init(cpu: Int, stack: NetworkStack<SelectedLink>, maxIDs: Int, sharesLink: Bool = false) {
        self.cpu = cpu
        self.stack = stack
        self.maxIDs = maxIDs
        self.sharesLink = sharesLink
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        scratch = .allocate(capacity: 64)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        scratch.deallocate()
        for fd in spareEventFDs { Glibc.close(fd) }
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    // MARK: Ids

    func allocate(_ descriptor: ContextDescriptor, nonBlocking: Bool = false) throws(Errno) -> Int32 {
        var id = lowestFree
        while id < entries.count && entries[id] != nil { id += 1 }
        guard id < maxIDs else { throw .EMFILE }
        if id == entries.count { entries.append(nil) }
        entries[id] = ContextEntry(descriptor: descriptor, nonBlocking: nonBlocking)
        lowestFree = id + 1
        return Int32(id)
    }

    func release(_ id: Int32) {
        entries[Int(id)] = nil
        lowestFree = min(lowestFree, Int(id))
        while let last = entries.last, last == nil { entries.removeLast() }
    }

    func entry(_ id: Int32) throws(Errno) -> ContextEntry {
        guard id >= 0, Int(id) < entries.count, let entry = entries[Int(id)] else { throw .EBADF }
        return entry
    }

    /// The stack socket behind `id` (ENOTSOCK for pipes and epoll sets).
    func socket(_ id: Int32) throws(Errno) -> Int32 {
        guard case .socket(let s) = try entry(id).descriptor else { throw .ENOTSOCK }
        return s
    }

    // MARK: Rounds and waiting

    /// One loop round; wakes sleeping threads when it took frames they may be waiting for.
    func round() {
        stack.poll()
        let frames = stack.statistics.framesReceived
        if frames != framesSeen {
            framesSeen = frames
            wakeSleepers()
        }
    }

    func wakeSleepers() {
        var one: UInt64 = 1
        for fd in sleepers { _ = Glibc.write(fd, &one, 8) }
    }

    enum WaitOutcome { case ready, timedOut }

    /// The stack's waiter (`NetworkStack.block`) with this context's sleep: the lock dropped,
    /// in poll(2) on the link and an eventfd of this sleeper's that other threads' rounds
    /// write. EINTR on a signal.
    func wait(until deadline: Instant, _ ready: () -> Bool) throws(Errno) -> WaitOutcome {
        let woke = try stack.block(until: deadline, ready: ready, round: { round() }) { (now, wake) throws(Errno) in
            try sleepUnlocked(from: now, until: wake)
        }
        return woke ? .ready : .timedOut
    }

    private func sleepUnlocked(from now: Instant, until wake: Instant) throws(Errno) {
        let eventFD = spareEventFDs.popLast() ?? eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))
        guard eventFD >= 0 else { throw .ENOMEM }
        sleepers.append(eventFD)
        var fds = (
            pollfd(fd: stack.io.waitDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: eventFD, events: Int16(POLLIN), revents: 0)
        )
        let milliseconds = WaitTimeout.milliseconds(from: now, until: wake, linkIsPolled: stack.io.waitDescriptor < 0)
        unlock()
        let result = withUnsafeMutableBytes(of: &fds) { raw in
            Glibc.poll(raw.baseAddress!.assumingMemoryBound(to: pollfd.self), 2, milliseconds)
        }
        let savedErrno = errno
        lock()
        sleepers.removeAll { $0 == eventFD }
        var drained: UInt64 = 0
        _ = Glibc.read(eventFD, &drained, 8)
        spareEventFDs.append(eventFD)
        if result < 0 && savedErrno == EINTR { throw .EINTR }
    }

    /// The deadline of a blocking call on stack socket `s` from SO_RCVTIMEO or SO_SNDTIMEO.
    func deadline(_ s: Int32, option: Int32) -> Instant {
        var time = timeval()
        let got = try? withUnsafeMutableBytes(of: &time) { (raw) throws(Errno) in
            try stack.getsockopt(s, level: SocketConstant.SOL_SOCKET, name: option, into: raw)
        }
        guard got != nil, time.tv_sec > 0 || time.tv_usec > 0 else { return .never }
        let nanoseconds = UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_usec) * 1000
        return stack.clock() + Interval(nanoseconds: nanoseconds)
    }

    func deadline(milliseconds timeout: Int32) -> Instant {
        timeout < 0 ? .never : stack.clock() + .milliseconds(UInt64(timeout))
    }

    func readiness(_ s: Int32, _ bits: UInt32) -> Bool {
        stack.readinessMask(s) & (bits | EpollFlags.EPOLLERR | EpollFlags.EPOLLHUP) != 0
    }
}
