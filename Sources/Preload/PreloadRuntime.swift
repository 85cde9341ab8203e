import CPreload
import CShim
import Glibc
import PacketIO
import PacketIODPDK
import Stack
import StackRuntime
import Synchronization
import TCP
import Wire

/// The process's one stack instance and everything the hooks keep about descriptors.
///
/// Run-to-completion: the application's own calls drive the stack (epoll_wait, poll, and
/// reads, writes and accepts that find nothing run a loop round first), under one lock. When
/// the program blocks, it blocks in the kernel on descriptors that wake it for packets (the
/// link's) and for readiness made by other threads (an eventfd per wait set). A driver thread
/// runs rounds only when no call has for a millisecond: timers and packets while the program
/// computes or sleeps elsewhere.
final class PreloadRuntime {
    /// Tags of the library's own descriptors inside an application's kernel epoll set.
    static let notifyTag: UInt64 = 0x6d74_6370_6e6f_7466
    static let linkTag: UInt64 = 0x6d74_6370_6c69_6e6b
    /// High half of the data under which a kernel listener half sits in a kernel set (its fd
    /// in the low half).
    static let kernelHalfTag: UInt64 = 0x6d74_6b68_0000_0000

    let options: StackOptions?
    let log: PreloadLog
    let kernelListen: Bool

    var stack: NetworkStack<SelectedLink>? {
        didSet { linkIsPolled = stack.map { $0.io.waitDescriptor < 0 } ?? false }
    }
    /// The link has no descriptor to sleep on (DPDK): sleepers nap and look again.
    var linkIsPolled = false
    var activationFailed = false
    /// The stacks of ancestors, inherited by fork: never driven or freed here.
    var retired: [AnyObject] = []
    var pid: Int32

    var records: [SocketRecord?] = []
    var freeRecords: [Int32] = []
    var shadows: [EpollShadow?] = []
    var freeShadows: [Int32] = []
    var waitSets: [WaitSet] = []
    var freeWaitSets: [Int] = []
    /// Shadows and wait sets that have a stack event poll set to signal after each round.
    var signalled: [SignalTarget] = []

    /// An AF_UNIX socket whose duplicates are the placeholder fds of stack sockets.
    var anchor: Int32 = -1

    /// CLOCK_MONOTONIC nanoseconds of the last loop round, and of the stack's next timer.
    let lastDriven = Atomic<UInt64>(0)
    let nextWake = Atomic<UInt64>(UInt64.max)
    /// Threads sleeping in the kernel with the link among their descriptors: they run the
    /// loop round themselves when frames come.
    let linkWatchers = Atomic<Int>(0)
    var driverStarted = false
    /// The application is handling the events an epoll_wait just returned (lock held): its
    /// writes and closes leave their frames for the round its next epoll_wait runs, so a
    /// batch of responses goes out with one transmit kick, as mTCP batches. Reads that find
    /// nothing do not run a round either. The driver thread sends deferred frames within about
    /// a millisecond when the application does not come back.
    var inEpollBatch = false
    /// The driver thread sleeps on the link for up to a timer's delay (lock held): nothing may
    /// be deferred then, it would not see it in time.
    var driverSleepsLong = false
    /// Packet sockets made right after fork, while the child still had the privilege (nginx
    /// workers drop root before they first touch a socket).
    var preopenedSockets: (receive: Int32, transmit: Int32)?
    /// The DPDK device the first process of this family opened (e.g. "net_af_packet0"): what
    /// forked children make their own instance of.
    var dpdkDevice: String?
    /// This forked child's own DPDK port, made and started at fork, until the stack takes it;
    /// or why the child has none.
    var dpdkChildPort: DPDKPort?
    var dpdkChildRefusal: String?
    /// The shared port claims table (kept across fork).
    var claimsTable: UnsafeMutableRawPointer?
    /// The kernel flow steering maps every process on the interface shares (kept across fork),
    /// and this process's program over them; a forked child makes its own at fork, or says
    /// why it could not (then it must not run a stack: it would see its parent's frames).
    var steeringMaps: FlowSteering.SharedMaps?
    var steering: FlowSteering?
    var steeringRefusal: String?
    var exitHandlerRegistered = false

    init(options: StackOptions?, log: PreloadLog) {
        self.options = options
        self.log = log
        kernelListen = options?.kernelListen ?? true
        pid = getpid()
    }

    // MARK: The process's runtime

    nonisolated(unsafe) static var current: PreloadRuntime?

    /// The runtime, made on first use from the settings saved when the library loaded (a
    /// program may clear its environment first, as nginx does for its workers).
    static func obtain() -> PreloadRuntime {
        if let current { return current }
        var options: StackOptions?
        var level = PreloadLog.levelFromEnvironment()
        do {
            let parsed = try StackOptions.fromEnvironment(savedSettings())
            level = parsed.logLevel.rawValue
            if parsed.enabled { options = parsed } else { mtcp_enabled = 0 }
        } catch {
            PreloadLog(level: level).error("bad MTCP_* settings (\(error)); every socket uses the kernel")
        }
        let runtime = PreloadRuntime(options: options, log: PreloadLog(level: level))
        current = runtime
        return runtime
    }

    /// The saved MTCP_* variables as a dictionary.
    static func savedSettings() -> [String: String] {
        var settings: [String: String] = [:]
        guard var entry = mtcp_saved_settings else { return settings }
        while let raw = entry.pointee {
            let text = String(cString: raw)
            if let equals = text.firstIndex(of: "=") {
                settings[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            entry += 1
        }
        return settings
    }

    // MARK: Activation

    /// Starts the stack on first need; false (once logged) when it cannot run, so sockets
    /// stay with the kernel.
    func activate() -> Bool {
        if stack != nil { return true }
        if activationFailed { return false }
        activationFailed = true
        guard let options, !options.interface.isEmpty, options.address != .any else {
            log.warn("MTCP_IFACE and MTCP_ADDR are not set: every socket uses the kernel")
            return false
        }
        if options.backend == .dpdk && DPDKEnvironment.initializedArguments != nil && dpdkChildPort == nil {
            // A forked child whose ancestor ran the EAL: it has no port of its own.
            let reason = dpdkChildRefusal ?? "the DPDK port could not be opened in the parent"
            log.error("no DPDK port for this forked child (\(reason)): this child's sockets use the kernel")
            return false
        }
        if let steeringRefusal {
            log.error(
                "no flow steering for this forked child (\(steeringRefusal)): this child's sockets use the kernel")
            return false
        }
        mtcp_set_private_fd_floor()
        let link: SelectedLink
        do {
            switch options.backend {
            case .afpacket:
                let sockets = preopenedSockets
                preopenedSockets = nil
                // A child's steering was attached at fork; the first process makes its own.
                if sockets == nil && steering == nil { steering = makeSteering(options) }
                link = SelectedLink(
                    .ring(
                        try AFPacketRing(
                            interface: options.interface, preopened: sockets, steering: sockets == nil ? steering : nil)
                    ))
            case .tap: link = SelectedLink(.tap(try TAPDevice(name: options.interface)))
            case .dpdk:
                let port: DPDKPort
                if let childPort = dpdkChildPort {
                    port = childPort
                    dpdkChildPort = nil
                } else {
                    // Private EAL memory, so that forked children can have ports (exports.c).
                    mtcp_dpdk_private_memory = 1
                    defer { mtcp_dpdk_private_memory = 0 }
                    port = try DPDKBackend.open(options, programName: "mtcp-preload")
                    dpdkDevice = port.name
                }
                guard let queue = port.queues.first else {
                    log.error("DPDK port \(options.interface) has no queue; every socket uses the kernel")
                    return false
                }
                if steering == nil && queue.waitDescriptor >= 0 {
                    steering = makeSteering(options)
                    attachSteering(toDPDKQueue: queue.waitDescriptor)
                }
                link = SelectedLink(.dpdk(queue, port))
            }
        } catch {
            log.error("cannot open \(options.interface) (\(error)); every socket uses the kernel")
            return false
        }
        anchor = mtcp_move_private(
            mtcp_real_socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0))
        guard anchor >= 0 else {
            log.error("cannot create the placeholder socket (errno \(mtcp_errno())); every socket uses the kernel")
            return false
        }
        let stack = NetworkStack(io: link, configuration: options.stackConfiguration, secret: HostSecret.load())
        HostSecret.configure(stack)
        let log = self.log
        stack.log = { log.warn($0) }
        if let steering {
            stack.useFlowSteering(steering)
        } else if let memory = claimsMemory(options) {
            let claims = PortClaims(memory: memory, pid: getpid())
            claims.activate()
            stack.portClaims = claims
        }
        stack.announce()
        self.stack = stack
        activationFailed = false
        log.info(
            "stack on \(options.interface) as \(options.address)/\(options.prefixLength) (pid \(pid), backend \(options.backend.rawValue))"
        )
        startDriver()
        if options.cores > 1 {
            logOnce("cores", "MTCP_CORES=\(options.cores): the preload library runs one stack instance per process")
        }
        if !exitHandlerRegistered {
            exitHandlerRegistered = true
            Self.registerExitHandler()
        }
        return true
    }

    /// The kernel interface under the link: processes on one veth share frames whether they
    /// reach it through AF_PACKET or a DPDK net_af_packet device (whose name, net_af_packet0,
    /// every namespace uses alike).
    func kernelInterface(_ options: StackOptions) -> String {
        if options.backend == .dpdk, let arguments = DPDKEnvironment.initializedArguments,
            let kernel = DPDKChildPort.kernelInterface(of: dpdkDevice ?? options.interface, in: arguments)
        {
            return kernel
        }
        return options.interface
    }

    /// This process's flow steering program over the interface's shared maps (opened or made
    /// by the first process); nil when the kernel refuses (no CAP_BPF) or MTCP_STEERING=claims,
    /// and then the port claims table divides the frames.
    func makeSteering(_ options: StackOptions) -> FlowSteering? {
        guard options.steering == .kernel, options.backend != .tap else { return nil }
        let interface = kernelInterface(options)
        do throws(PacketIOError) {
            if steeringMaps == nil { steeringMaps = try FlowSteering.openMaps(interface: interface) }
            let made = try FlowSteering(maps: steeringMaps!, token: FlowSteering.token(pid: getpid()))
            return made
        } catch {
            log.warn("no kernel flow steering on \(interface) (\(error)): processes share its frames by port claims")
            return nil
        }
    }

    /// A net_af_packet queue sleeps on (and receives through) one packet socket: the filter
    /// goes there. Frames it took before are handled as before (port claims are not needed:
    /// until the filter is on, no other process has flows here).
    func attachSteering(toDPDKQueue socket: Int32) {
        guard let steering else { return }
        do throws(PacketIOError) {
            try steering.attach(to: socket)
        } catch {
            log.warn("cannot steer the DPDK queue's socket (\(error)): processes share its frames by port claims")
            self.steering = nil
        }
    }

    /// The table of which process answers which port: one per interface in /dev/shm, so
    /// forked children and unrelated processes on the same interface share it (anonymous
    /// shared memory, inherited by children only, when /dev/shm is unusable).
    func claimsMemory(_ options: StackOptions) -> UnsafeMutableRawPointer? {
        if let claimsTable { return claimsTable }
        let interface = kernelInterface(options)
        let path = "/dev/shm/mtcp-port-claims-\(interface)"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        if fd >= 0 {
            _ = fchmod(fd, 0o666)
            var memory: UnsafeMutableRawPointer?
            if ftruncate(fd, off_t(PortClaims.byteCount)) == 0 {
                let mapped = mmap(nil, PortClaims.byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                if mapped != MAP_FAILED { memory = mapped }
            }
            _ = mtcp_real_close(fd)
            if let memory {
                claimsTable = memory
                return memory
            }
        }
        log.warn("cannot share \(path) (errno \(mtcp_errno())): only forked processes share port claims")
        claimsTable = PortClaims.mapShared()
        return claimsTable
    }

    // MARK: Loop rounds

    /// One loop round, then wakes every wait set that has events (lock held).
    @inline(__always)
    func drive() {
        guard let stack else { return }
        // One clock read per round (the stack's clock is CLOCK_MONOTONIC too).
        let now = mtcp_shim_monotonic_ns()
        stack.poll(now: Instant(nanoseconds: now))
        lastDriven.store(now, ordering: .relaxed)
        signalReadySets()
    }

    /// A round after output (a write, close or shutdown), unless it can wait for the round
    /// the application's next epoll_wait runs (lock held).
    @inline(__always)
    func driveAfterOutput() {
        if inEpollBatch && !driverSleepsLong { return }
        drive()
    }

    /// Publishes the stack's next timer for threads about to sleep (lock held). Done only
    /// before sleeping: finding the earliest timer can mean a walk over the timer wheel.
    func refreshNextWake() {
        guard let stack else { return }
        let deadline = stack.nextDeadline
        nextWake.store(deadline == .never ? UInt64.max : deadline.nanoseconds, ordering: .relaxed)
    }

    /// Writes the eventfd of every set whose ready list filled since it was last cleared.
    func signalReadySets() {
        guard let stack else { return }
        for target in signalled where !target.isSignalled.pointee {
            if stack.epollHasReady(target.stackEpoll) {
                target.isSignalled.pointee = true
                var one: UInt64 = 1
                _ = mtcp_real_write(target.notifyFD, &one, 8)
            }
        }
    }

    /// Clears a set's eventfd once its ready list is empty (lock held).
    func clearSignal(stackEpoll: Int32, notifyFD: Int32, isSignalled: UnsafeMutablePointer<Bool>) {
        guard isSignalled.pointee, let stack, !stack.epollHasReady(stackEpoll) else { return }
        var value: UInt64 = 0
        _ = mtcp_real_read(notifyFD, &value, 8)
        isSignalled.pointee = false
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

    func startDriver() {
        guard !driverStarted else { return }
        driverStarted = true
        let result = mtcp_start_thread(
            { _ in
                PreloadRuntime.current?.driverLoop()
                return nil
            }, nil)
        if result != 0 { log.warn("no driver thread (error \(result)): timers run only inside calls") }
    }

    /// Drives the stack when no call has for a millisecond. While the application drives it,
    /// or sleeps with the link in its wait set (it wakes for packets itself), the driver only
    /// naps; otherwise it sleeps on the link until a frame or the next timer.
    func driverLoop() {
        // Signals are the application's: a blocked call must be the one that sees EINTR.
        mtcp_block_all_signals()
        let myPid = pid
        while true {
            mtcp_lock()
            guard pid == myPid, let stack else {
                mtcp_unlock()
                return
            }
            let now = mtcp_shim_monotonic_ns()
            let idle = now &- lastDriven.load(ordering: .relaxed) >= 1_000_000
            if idle {
                refreshNextWake()
                if nextWake.load(ordering: .relaxed) <= now {
                    // A timer is due and nobody is driving: retransmissions must not wait.
                    drive()
                    mtcp_unlock()
                    continue
                }
                if linkWatchers.load(ordering: .relaxed) == 0 {
                    let descriptor = stack.io.waitDescriptor
                    driverSleepsLong = true
                    mtcp_unlock()
                    var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                    let timeout = Int32(millisecondsToNextTimer(limit: linkIsPolled ? 1 : 50))
                    _ = mtcp_real_poll(&entry, 1, max(timeout, 1))
                    mtcp_lock()
                    driverSleepsLong = false
                    if pid == myPid && mtcp_shim_monotonic_ns() &- lastDriven.load(ordering: .relaxed) >= 1_000_000 {
                        drive()
                    }
                    mtcp_unlock()
                    continue
                }
            }
            mtcp_unlock()
            // The application drives the stack, or sleeps watching the link: look again soon.
            usleep(idle ? 5000 : 1000)
        }
    }

    // MARK: Records

    /// Whether the kernel half of dual listener `fd` may have a connection (see
    /// `SocketRecord.kernelHalfMayBeReady`); `triedAt`: an accept found none then. Takes the lock.
    func markKernelHalf(of fd: Int32, mayBeReady: Bool, triedAt: UInt64? = nil) {
        mtcp_lock()
        if let r = record(forEntry: mtcp_fd_entry(fd)) {
            records[r]!.kernelHalfMayBeReady = mayBeReady
            if let triedAt { records[r]!.kernelHalfLastTry = triedAt }
        }
        mtcp_unlock()
    }

    func record(forEntry entry: Int32) -> Int? {
        guard DescriptorEntry.kind(entry) == DescriptorEntry.socketKind else { return nil }
        let index = DescriptorEntry.index(entry)
        guard index < records.count, records[index] != nil else { return nil }
        return index
    }

    func addRecord(_ record: SocketRecord) -> Int32 {
        if let free = freeRecords.popLast() {
            records[Int(free)] = record
            return free
        }
        records.append(record)
        return Int32(records.count - 1)
    }

    func releaseRecord(_ index: Int) {
        records[index] = nil
        freeRecords.append(Int32(index))
    }

    /// A new placeholder fd: the lowest free number, a socket as far as fstat is concerned.
    func placeholder(closeOnExec: Bool) -> Int32 {
        mtcp_real_fcntl(anchor, closeOnExec ? F_DUPFD_CLOEXEC : F_DUPFD, 0)
    }

    // MARK: Logging once

    var loggedOnce: Set<String> = []

    func logOnce(_ key: String, _ message: @autoclosure () -> String) {
        guard loggedOnce.insert(key).inserted else { return }
        log.info(message())
    }
}

/// What the descriptor table's int32 says about an fd: kind in the top byte, index + 1 below.
enum DescriptorEntry {
    static let socketKind: Int32 = 1
    static let epollKind: Int32 = 2

    static func make(kind: Int32, index: Int32) -> Int32 { kind << 24 | (index + 1) }
    static func kind(_ entry: Int32) -> Int32 { entry >> 24 }
    static func index(_ entry: Int32) -> Int { Int(entry & 0xFF_FFFF) - 1 }
}

/// A set whose eventfd a loop round writes when its ready list fills.
struct SignalTarget {
    var stackEpoll: Int32
    var notifyFD: Int32
    /// Owned by the shadow or wait set (stable heap memory).
    var isSignalled: UnsafeMutablePointer<Bool>
}

extension PreloadRuntime {
    /// MTCP_STATS=PREFIX: at exit each process that ran a stack writes its counters to
    /// PREFIX.PID (one line of key=value pairs).
    /// At exit the kernel closes a process's sockets (FIN, or RST with unread data); the
    /// library does the same for stack sockets, then writes MTCP_STATS.
    static func registerExitHandler() {
        atexit {
            guard let runtime = PreloadRuntime.current else { return }
            mtcp_lock()
            runtime.closeEverythingAtExit()
            mtcp_unlock()
            runtime.writeStatistics()
        }
    }

    /// Rounds of at most 5 ms an exiting process waits for its connections' close handshakes.
    static let exitLingerRounds = 100

    /// Closes every stack socket this process owns and sends what that produces (lock held).
    func closeEverythingAtExit() {
        guard let stack else { return }
        for r in records.indices {
            guard let record = records[r], !record.inherited else { continue }
            try? stack.close(record.stackID)
            records[r]!.inherited = true
        }
        // Out of the steering maps first: the primary role passes on now, so frames that would
        // reach this process after its last round go to one that stays.
        steering?.retire(keepServing: { self.drive() })
        // A few rounds: the FINs leave, and ACKs still owed go with them.
        for _ in 0..<3 { drive() }
        // The kernel keeps a closed socket after its process exits until the close handshake
        // ends; this process cannot, so it waits for its closes a little (bounded): a peer's
        // FIN arriving after the exit would otherwise find no owner and be reset.
        let states: [TCPState] = [.finWait1, .finWait2, .closing, .lastAck]
        for _ in 0..<Self.exitLingerRounds {
            guard states.contains(where: { stack.endpoint.countConnections(in: $0) > 0 }) else { break }
            var entry = pollfd(fd: stack.io.waitDescriptor, events: Int16(POLLIN), revents: 0)
            _ = mtcp_real_poll(&entry, 1, 5)
            drive()
        }
    }

    func writeStatistics() {
        guard let prefix = options?.statsPath, let stack else { return }
        let path = "\(prefix).\(getpid())"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        let io = stack.io.statistics
        var text = "pid=\(getpid()) sockets=\(stack.socketCount) \(stack.statistics.summary)"
        let tcp = stack.endpoint.statistics
        text += " passive_opens=\(tcp.passiveOpens) active_opens=\(tcp.activeOpens)"
        text += " resets_for_unknown_flows=\(tcp.resetsSentForUnknownFlows) rx_drops=\(io.receiveDrops)"
        text += " flows_owned_elsewhere=\(tcp.flowsOwnedElsewhere)"
        text += " resets_left_to_primary=\(tcp.unknownSegmentsLeftToOthers)"
        if let steering = stack.flowSteering { text += " steering=kernel \(steering.statistics.summary)" }
        text += "\n"
        text.withUTF8 { bytes in _ = mtcp_real_write(fd, bytes.baseAddress, bytes.count) }
        _ = mtcp_real_close(fd)
    }
}
