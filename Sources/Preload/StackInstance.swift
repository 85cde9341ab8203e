import CPreload
import CShim
import Glibc
import PacketIO
import PreloadState
import Stack
import StackRuntime
import Synchronization
import TCP

/// One stack instance of the process (MTCP_CORES gives several): its stack over a receive
/// queue of its own, its lock, and the records of the sockets it owns. The shell outlives
/// fork (a child keeps the records, marked inherited); the stack is made at activation.
///
/// Run-to-completion: the application's own calls drive the stack (epoll_wait, poll, and
/// reads, writes and accepts that find nothing run a loop round first). When the program
/// blocks, it blocks in the kernel on descriptors that wake it for packets (the link's) and
/// for readiness made by other threads (an eventfd per wait set). A driver thread runs rounds
/// only when no call has for a millisecond: timers and packets while the program computes.
///
/// Everything below is guarded by the instance's lock (`withLock`), taken after the process
/// lock when both are needed, and never two instance locks at once.
final class StackInstance {
    let index: Int
    var stack: NetworkStack<SelectedLink>? {
        didSet { linkIsPolled = stack.map { $0.io.waitDescriptor < 0 } ?? false }
    }
    /// The link has no descriptor to sleep on (DPDK): sleepers nap and look again.
    var linkIsPolled = false
    /// This instance's kernel flow steering program (on its receive socket).
    var steering: FlowSteering?

    var records: RecordTable
    var waitSets: [WaitSet] = []
    var freeWaitSets: [Int] = []
    /// Shadow parts and wait sets that have an event poll set to signal after each round.
    var signalled: [SignalTarget] = []

    /// CLOCK_MONOTONIC nanoseconds of the last loop round, and of the stack's next timer.
    let lastDriven = Atomic<UInt64>(0)
    let nextWake = Atomic<UInt64>(UInt64.max)
    /// Threads sleeping in the kernel with the link among their descriptors: they run the
    /// loop round themselves when frames come.
    let linkWatchers = Atomic<Int>(0)
    var driverStarted = false
    /// The application is handling the events an epoll_wait just returned: its writes and
    /// closes leave their frames for the round its next epoll_wait runs, so a batch of
    /// responses goes out with one transmit kick, as mTCP batches. Reads that find nothing do
    /// not run a round either. The driver thread sends deferred frames within about a
    /// millisecond when the application does not come back.
    var inEpollBatch = false
    /// The driver thread sleeps on the link for up to a timer's delay: nothing may be
    /// deferred then, it would not see it in time.
    var driverSleepsLong = false

    init(index: Int) {
        self.index = index
        records = RecordTable(instance: index)
    }

    /// Runs `body` with this instance's lock held: the one way its state is touched.
    @inline(__always)
    func withLock<R>(_ body: () -> R) -> R {
        mtcp_instance_lock(Int32(index))
        defer { mtcp_instance_unlock(Int32(index)) }
        return body()
    }

    // MARK: Loop rounds

    /// One loop round, then wakes every wait set that has events (but `collecting`, the one
    /// the calling thread reads itself: no eventfd write for it, and no read back).
    @inline(__always)
    func drive(collecting: EpollPart? = nil) {
        guard let stack else { return }
        // One clock read per round (the stack's clock is CLOCK_MONOTONIC too).
        let now = mtcp_shim_monotonic_ns()
        stack.poll(now: Instant(nanoseconds: now))
        lastDriven.store(now, ordering: .relaxed)
        signalReadySets(except: collecting?.notifyFD ?? -1)
    }

    /// A round after output (a write, close or shutdown), unless it can wait for the round
    /// the application's next epoll_wait runs.
    @inline(__always)
    func driveAfterOutput() {
        if inEpollBatch && !driverSleepsLong { return }
        drive()
    }

    /// Publishes the stack's next timer for threads about to sleep. Done only before
    /// sleeping: finding the earliest timer can mean a walk over the timer wheel.
    func refreshNextWake() {
        guard let stack else { return }
        let deadline = stack.nextDeadline
        nextWake.store(deadline == .never ? UInt64.max : deadline.nanoseconds, ordering: .relaxed)
    }

    /// Writes the eventfd of every set whose ready list filled since it was last cleared.
    func signalReadySets(except skipped: Int32 = -1) {
        guard let stack else { return }
        for target in signalled where !target.isSignalled.pointee && target.notifyFD != skipped {
            if stack.epollHasReady(target.stackEpoll) {
                target.isSignalled.pointee = true
                var one: UInt64 = 1
                _ = mtcp_real_write(target.notifyFD, &one, 8)
            }
        }
    }

    /// Makes a part's eventfd say whether its ready list holds events: cleared once it is
    /// empty, written when it is not.
    func settleSignal(_ part: EpollPart) {
        guard let stack else { return }
        let ready = stack.epollHasReady(part.stackEpoll)
        guard ready != part.isSignalled.pointee else { return }
        var value: UInt64 = ready ? 1 : 0
        _ = ready ? mtcp_real_write(part.notifyFD, &value, 8) : mtcp_real_read(part.notifyFD, &value, 8)
        part.isSignalled.pointee = ready
    }

    /// Milliseconds until the stack's next timer, at most `limit` (-1: no limit and no timer).
    func millisecondsToNextTimer(limit: Int64) -> Int64 {
        let wake = nextWake.load(ordering: .relaxed)
        if wake == UInt64.max { return limit }
        let now = mtcp_shim_monotonic_ns()
        let delta = wake > now ? Int64((wake - now + 999_999) / 1_000_000) : 0
        return limit < 0 ? delta : min(delta, limit)
    }

    // MARK: The driver thread

    func startDriver(log: PreloadLog) {
        guard !driverStarted else { return }
        driverStarted = true
        let result = mtcp_start_thread(
            { context in
                let index = Int(bitPattern: context)
                guard let runtime = PreloadRuntime.current, index < runtime.instances.count else { return nil }
                runtime.instances[index].driverLoop(pid: runtime.pid)
                return nil
            }, UnsafeMutableRawPointer(bitPattern: index))
        if result != 0 { log.warn("no driver thread (error \(result)): timers run only inside calls") }
    }

    /// Drives the stack when no call has for a millisecond. While the application drives it,
    /// or sleeps with the link in its wait set (it wakes for packets itself), the driver only
    /// naps; otherwise it sleeps on the link until a frame or the next timer.
    func driverLoop(pid myPid: Int32) {
        // Signals are the application's: a blocked call must be the one that sees EINTR.
        mtcp_block_all_signals()
        enum Turn {
            case stop, again, sleep(Int32, Int32), nap(Bool)
        }
        while true {
            let turn: Turn = withLock {
                // The runtime's pid, not getpid(): no system call per turn.
                guard PreloadRuntime.current?.pid == myPid, let stack else { return .stop }
                let now = mtcp_shim_monotonic_ns()
                let idle = now &- lastDriven.load(ordering: .relaxed) >= 1_000_000
                guard idle else { return .nap(false) }
                refreshNextWake()
                if nextWake.load(ordering: .relaxed) <= now {
                    // A timer is due and nobody is driving: retransmissions must not wait.
                    drive()
                    return .again
                }
                guard linkWatchers.load(ordering: .relaxed) == 0 else { return .nap(true) }
                driverSleepsLong = true
                let timeout = Int32(millisecondsToNextTimer(limit: linkIsPolled ? 1 : 50))
                return .sleep(stack.io.waitDescriptor, max(timeout, 1))
            }
            switch turn {
            case .stop: return
            case .again: continue
            case .nap(let idle):
                // The application drives the stack, or sleeps watching the link: look again soon.
                usleep(idle ? 5000 : 1000)
            case .sleep(let descriptor, let timeout):
                var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                _ = mtcp_real_poll(&entry, 1, timeout)
                withLock {
                    driverSleepsLong = false
                    if PreloadRuntime.current?.pid == myPid
                        && mtcp_shim_monotonic_ns() &- lastDriven.load(ordering: .relaxed) >= 1_000_000
                    {
                        drive()
                    }
                }
            }
        }
    }

    // MARK: Records

    func record(forEntry entry: Int32) -> Int? { records.index(of: entry) }

    // MARK: Wait sets

    func takeWaitSet(_ stack: NetworkStack<SelectedLink>) -> WaitSet {
        let set: WaitSet
        if let free = freeWaitSets.popLast() {
            set = waitSets[free]
        } else {
            set = WaitSet(stackEpoll: stack.epollCreate(), notifyFD: mtcp_eventfd())
            waitSets.append(set)
        }
        signalled.append(SignalTarget(stackEpoll: set.stackEpoll, notifyFD: set.notifyFD, isSignalled: set.isSignalled))
        return set
    }

    func giveBack(_ set: WaitSet) {
        signalled.removeAll { $0.notifyFD == set.notifyFD }
        if set.isSignalled.pointee {
            var value: UInt64 = 0
            _ = mtcp_real_read(set.notifyFD, &value, 8)
            set.isSignalled.pointee = false
        }
        if let index = waitSets.firstIndex(where: { $0 === set }) { freeWaitSets.append(index) }
    }

    /// The child side of fork: the stack stays the parent's; records become inherited.
    func becomeChild() -> NetworkStack<SelectedLink>? {
        let parentStack = stack
        stack = nil
        steering = nil
        driverStarted = false
        inEpollBatch = false
        driverSleepsLong = false
        records.markInherited()
        waitSets = []
        freeWaitSets = []
        signalled = []
        lastDriven.store(0, ordering: .relaxed)
        nextWake.store(UInt64.max, ordering: .relaxed)
        return parentStack
    }
}

/// A set whose eventfd a loop round writes when its ready list fills.
struct SignalTarget {
    var stackEpoll: Int32
    var notifyFD: Int32
    /// Owned by the shadow part or wait set (stable heap memory).
    var isSignalled: UnsafeMutablePointer<Bool>
}
