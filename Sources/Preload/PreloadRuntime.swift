import CPreload
import CShim
import Glibc
import PacketIO
import PacketIODPDK
import PreloadState
import Stack
import StackRuntime
import Synchronization
import TCP
import Wire

/// The process's stack instances (MTCP_CORES, one by default) and what the hooks keep about
/// descriptors. Each instance has its lock, receive queue and socket records
/// (`StackInstance`); the process lock (`withProcessLock`) guards what spans them: activation,
/// epoll shadows, fork. Lock order: the process lock, then one instance lock; never two
/// instance locks at once.
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

    /// Made with the runtime and kept for its life (a forked child keeps the shells), so
    /// threads read the array without a lock.
    let instances: [StackInstance]
    /// How many instances run a stack (set at activation, before any stack descriptor exists):
    /// fewer than `instances` when the instances could not divide the link.
    var activeInstances = 0
    /// Hands threads their instances at their first call, in turn.
    let nextThreadInstance = Atomic<Int>(0)

    /// The first instance's stack: the one that answers for the process (address, routes),
    /// nil before activation.
    var stack: NetworkStack<SelectedLink>? { instances[0].stack }
    /// The first instance's steering: the one that may take the primary role.
    var steering: FlowSteering? { instances[0].steering }
    var activationFailed = false
    /// The stacks of ancestors, inherited by fork: never driven or freed here.
    var retired: [AnyObject] = []
    var pid: Int32

    var shadows: [EpollShadow?] = []
    var freeShadows: [Int32] = []

    /// An AF_UNIX socket whose duplicates are the placeholder fds of stack sockets.
    var anchor: Int32 = -1

    /// Packet sockets made right after fork, one pair per instance, while the child still had
    /// the privilege (nginx workers drop root before they first touch a socket).
    var preopenedSockets: [(receive: Int32, transmit: Int32)] = []
    /// The DPDK device the first process of this family opened (e.g. "net_af_packet0"): what
    /// forked children make their own instance of.
    var dpdkDevice: String?
    /// This forked child's own DPDK port, made and started at fork, until the stack takes it;
    /// or why the child has none.
    var dpdkChildPort: DPDKPort?
    var dpdkChildRefusal: String?
    /// The shared port claims table (kept across fork).
    var claimsTable: UnsafeMutableRawPointer?
    /// The kernel flow steering maps every process on the interface shares (kept across fork);
    /// each instance has its program over them. A forked child makes its own at fork, or
    /// says why it could not (then it must not run a stack: it would see its parent's frames).
    var steeringMaps: FlowSteering.SharedMaps?
    var steeringRefusal: String?
    /// Shared mode's ingress program, attached by the first process of this lineage (a fork
    /// child inherits the link): while it is there the kernel does not see the stack's frames.
    var kernelExclusion: KernelExclusion?
    var exitHandlerRegistered = false
    /// How long a wait that finds nothing keeps looking before it sleeps (MTCP_BUSY_POLL).
    let busyPollNanoseconds: UInt64
    /// This process's statistics region, capture and stat-print lines (made at activation).
    var observation: StackObservation?
    /// Kernel sockets listed in the region with why they are the kernel's (close forgets them).
    let kernelSocketsListed = Atomic<Int>(0)

    init(options: StackOptions?, log: PreloadLog) {
        self.options = options
        self.log = log
        kernelListen = options?.kernelListen ?? true
        pid = getpid()
        busyPollNanoseconds = UInt64(options?.busyPollMicroseconds ?? 0) * 1000
        instances = (0..<Self.instanceCount(options, log: log)).map { StackInstance(index: $0) }
    }

    /// MTCP_CORES instances where the link can be divided among them (AF_PACKET with kernel
    /// flow steering: each instance is a steering member of its own); one otherwise.
    static func instanceCount(_ options: StackOptions?, log: PreloadLog) -> Int {
        guard let options, options.cores > 1 else { return 1 }
        guard options.backend == .afpacket, options.steering == .kernel else {
            log.warn(
                "MTCP_CORES=\(options.cores): several instances in one process need the afpacket backend with kernel flow steering; one instance runs"
            )
            return 1
        }
        let limit = Int(MTCP_MAX_INSTANCES)
        if options.cores > limit { log.warn("MTCP_CORES=\(options.cores): at most \(limit) instances per process") }
        return min(options.cores, limit)
    }

    /// Runs `body` with the process lock held (activation, epoll shadows, fork).
    @inline(__always)
    func withProcessLock<R>(_ body: () -> R) -> R { mtcp_withProcessLock(body) }

    /// The instance that owns the socket of descriptor table entry `entry`.
    @inline(__always)
    func instance(of entry: Int32) -> StackInstance {
        instances[min(DescriptorEntry.instance(entry), instances.count - 1)]
    }

    /// The calling thread's instance: given at its first call, in turn among those running.
    func threadInstance() -> StackInstance {
        let active = max(activeInstances, 1)
        var assigned = Int(mtcp_thread_instance())
        if assigned < 0 || assigned >= active {
            assigned = nextThreadInstance.wrappingAdd(1, ordering: .relaxed).oldValue % active
            mtcp_set_thread_instance(Int32(assigned))
        }
        return instances[assigned]
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
        let runtime = PreloadRuntime(options: options, log: PreloadLog(level: level, file: options?.logFile))
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

    /// Starts the stacks on first need (process lock held); false (once logged) when they
    /// cannot run, so sockets stay with the kernel.
    func activate() -> Bool {
        if stack != nil { return true }
        if activationFailed { return false }
        activationFailed = true
        guard let options, !options.interface.isEmpty, options.hasAddress else {
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
        anchor = mtcp_move_private(
            mtcp_real_socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0))
        guard anchor >= 0 else {
            log.error("cannot create the placeholder socket (errno \(mtcp_errno())); every socket uses the kernel")
            return false
        }
        guard startInstance(instances[0], options) else {
            _ = mtcp_real_close(anchor)
            anchor = -1
            return false
        }
        activeInstances = 1
        activationFailed = false
        // Further instances divide the link only as steering members of their own.
        if instances.count > 1 {
            if steering == nil {
                log.warn("MTCP_CORES=\(options.cores): no kernel flow steering here, so one instance runs")
            } else {
                for instance in instances.dropFirst() {
                    guard startInstance(instance, options) else { break }
                    activeInstances += 1
                }
            }
        }
        log.info(
            "stack on \(options.interface) as \(options.addressText) (pid \(pid), backend \(options.backend.rawValue), \(activeInstances) instance\(activeInstances == 1 ? "" : "s"))"
        )
        let log = self.log
        let observation = StackObservation(
            options: options, host: "preload", instances: activeInstances, exclusiveCapture: true,
            statLine: { log.always($0) }
        ) { log.info($0) }
        for instance in instances.prefix(activeInstances) {
            if let stack = instance.stack { observation.attach(stack, instance: instance.index) }
        }
        self.observation = observation
        for instance in instances.prefix(activeInstances) { instance.startDriver(log: log) }
        if !exitHandlerRegistered {
            exitHandlerRegistered = true
            Self.registerExitHandler()
        }
        return true
    }

    /// Opens `instance`'s link and starts its stack (process lock held); false, logged, when
    /// the link cannot be opened.
    func startInstance(_ instance: StackInstance, _ options: StackOptions) -> Bool {
        let k = instance.index
        let link: SelectedLink
        do {
            switch options.backend {
            case .afpacket:
                let sockets = k < preopenedSockets.count ? preopenedSockets[k] : nil
                if k < preopenedSockets.count { preopenedSockets[k] = (-1, -1) }
                let usable = sockets.flatMap { $0.receive >= 0 ? $0 : nil }
                // A child's steering was attached at fork; the first process makes its own.
                if usable == nil && instance.steering == nil { instance.steering = makeSteering(options, instance: k) }
                // A further instance without its own steering would see every frame.
                if k > 0 && instance.steering == nil { return false }
                if options.kernelSharesAddress && (instance.steering == nil || kernelExclusion == nil) {
                    // Without both the kernel would answer the stack's flows with RST, and the
                    // stack the kernel's.
                    log.error(
                        "cannot divide \(options.interface)'s address between the kernel and the stack (no"
                            + " kernel flow steering or ingress program, see above); every socket uses the kernel")
                    return false
                }
                link = SelectedLink(
                    .ring(
                        try AFPacketRing(
                            interface: options.interface, preopened: usable,
                            steering: usable == nil ? instance.steering : nil)))
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
                    port = try DPDKBackend.open(portOptions(options), programName: "mtcp-preload")
                    dpdkDevice = port.name
                }
                guard let queue = port.queues.first else {
                    log.error("DPDK port \(options.interface) has no queue; every socket uses the kernel")
                    return false
                }
                if instance.steering == nil && queue.waitDescriptor >= 0 {
                    instance.steering = makeSteering(options, instance: k)
                    attachSteering(instance, toDPDKQueue: queue.waitDescriptor)
                }
                link = SelectedLink(.dpdk(queue, port))
            }
        } catch {
            log.error("cannot open \(options.interface) (\(error)); every socket uses the kernel")
            return false
        }
        if options.impairTransmit != nil || options.impairReceive != nil {
            logOnce("impair", "MTCP_IMPAIR: the link drops, duplicates, reorders or corrupts frames as asked")
        }
        let stack = NetworkStack(
            io: SelectedLink.impaired(link, by: options, index: k), configuration: options.stackConfiguration,
            secret: HostSecret.load())
        HostSecret.configure(stack)
        let log = self.log
        stack.log = { log.warn($0) }
        if let steering = instance.steering {
            steering.contendsForPrimary = k == 0
            stack.useFlowSteering(steering)
        } else if let memory = claimsMemory(options) {
            let claims = PortClaims(memory: memory, pid: getpid())
            claims.activate()
            stack.portClaims = claims
        }
        if k == 0 { stack.announce() }
        if options.kernelSharesAddress {
            stack.adoptKernelNeighbours(KernelAddresses.neighbours(interface: options.interface))
        }
        instance.stack = stack
        return true
    }

    /// The options a DPDK port is opened with here: a queue pair per instance this process
    /// runs (one: MTCP_CORES does not divide a DPDK port among instances of the preload).
    func portOptions(_ options: StackOptions) -> StackOptions {
        var adjusted = options
        adjusted.cores = instances.count
        return adjusted
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
    func makeSteering(_ options: StackOptions, instance: Int) -> FlowSteering? {
        guard options.steering == .kernel, options.backend != .tap else { return nil }
        let interface = kernelInterface(options)
        do throws(PacketIOError) {
            if steeringMaps == nil { steeringMaps = try FlowSteering.openMaps(interface: interface) }
            if options.kernelSharesAddress && kernelExclusion == nil {
                kernelExclusion = try KernelExclusion(
                    maps: steeringMaps!, interface: interface, address: options.address, address6: options.address6)
                log.info(
                    "sharing \(interface)'s address \(options.addressText) with the kernel: the stack takes the"
                        + " frames of its listeners and connections, the kernel keeps the rest")
            }
            return try FlowSteering(
                maps: steeringMaps!, token: FlowSteering.token(pid: getpid(), instance: instance),
                kernelSharesAddress: options.kernelSharesAddress)
        } catch {
            log.warn("no kernel flow steering on \(interface) (\(error)): processes share its frames by port claims")
            return nil
        }
    }

    /// A net_af_packet queue sleeps on (and receives through) one packet socket: the filter
    /// goes there. Frames it took before are handled as before (port claims are not needed:
    /// until the filter is on, no other process has flows here).
    func attachSteering(_ instance: StackInstance, toDPDKQueue socket: Int32) {
        guard let steering = instance.steering else { return }
        do throws(PacketIOError) {
            try steering.attach(to: socket)
        } catch {
            log.warn("cannot steer the DPDK queue's socket (\(error)): processes share its frames by port claims")
            instance.steering = nil
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

    // MARK: Records

    /// Whether the kernel half of dual listener `fd` may have a connection (see
    /// `SocketRecord.kernelHalfMayBeReady`); `triedAt`: an accept found none then.
    func markKernelHalf(of fd: Int32, mayBeReady: Bool, triedAt: UInt64? = nil) {
        let entry = mtcp_fd_entry(fd)
        let instance = instance(of: entry)
        instance.withLock {
            guard let r = instance.record(forEntry: entry) else { return }
            instance.records[r]!.kernelHalfMayBeReady = mayBeReady
            if let triedAt { instance.records[r]!.kernelHalfLastTry = triedAt }
        }
    }

    /// A new placeholder fd: the lowest free number, a socket as far as fstat is concerned.
    func placeholder(closeOnExec: Bool) -> Int32 {
        mtcp_real_fcntl(anchor, closeOnExec ? F_DUPFD_CLOEXEC : F_DUPFD, 0)
    }

    /// How long to sleep: the caller's remaining time, cut at the next timer of the instances
    /// the thread may drive (negative: without limit).
    func nanosecondsToSleep(remaining: Int64, driving: some Sequence<StackInstance>) -> Int64 {
        var timer = UInt64.max
        var polled = false
        for instance in driving {
            polled = polled || instance.linkIsPolled
            timer = min(timer, instance.nextWake.load(ordering: .relaxed))
        }
        let now = polled || timer == UInt64.max ? 0 : mtcp_shim_monotonic_ns()
        return WaitTimeout.nanoseconds(remaining: remaining, timer: timer, now: now, linkIsPolled: polled)
    }

    // MARK: Logging once

    /// Keys already logged; its own lock, as any instance's hooks log.
    let loggedOnce = Mutex<Set<String>>([])

    /// Lists kernel socket `fd` in the statistics region with `reason` (any lock or none: the
    /// region's own lock is a leaf).
    func listKernelSocket(_ fd: Int32, family: Int32, type: Int32, reason: String) {
        guard let region = observation?.region else { return }
        region.recordFallback(fd: fd, family: family, type: type, reason: reason)
        kernelSocketsListed.add(1, ordering: .releasing)
    }

    /// Takes `fd` off that list.
    func forgetKernelSocket(_ fd: Int32) {
        guard let region = observation?.region, region.removeFallback(fd: fd) else { return }
        kernelSocketsListed.subtract(1, ordering: .releasing)
    }

    func logOnce(_ key: String, _ message: @autoclosure () -> String) {
        guard loggedOnce.withLock({ $0.insert(key).inserted }) else { return }
        log.info(message())
    }
}

extension PreloadRuntime {
    /// MTCP_STATS=PREFIX: at exit each process that ran a stack writes its counters to
    /// PREFIX.PID (one line of key=value pairs).
    /// At exit the kernel closes a process's sockets (FIN, or RST with unread data); the
    /// library does the same for stack sockets, then writes MTCP_STATS.
    static func registerExitHandler() {
        atexit {
            guard let runtime = PreloadRuntime.current else { return }
            runtime.withProcessLock { runtime.closeEverythingAtExit() }
            // The region's last word is the final state, not the last periodic one.
            for instance in runtime.runningInstances {
                instance.withLock { instance.stack?.publishStatisticsNow(sockets: true) }
            }
            runtime.writeStatistics()
            runtime.observation?.finish()
        }
    }

    /// Rounds of at most 5 ms an exiting process waits for its connections' close handshakes.
    static let exitLingerRounds = 100

    /// The instances that run a stack in this process.
    var runningInstances: [StackInstance] { instances.prefix(activeInstances).filter { $0.stack != nil } }

    /// Closes every stack socket this process owns and sends what that produces (process
    /// lock held).
    func closeEverythingAtExit() {
        let running = runningInstances
        for instance in running {
            instance.withLock {
                guard let stack = instance.stack else { return }
                for r in instance.records.indices {
                    guard let record = instance.records[r], !record.inherited else { continue }
                    try? stack.close(record.stackID)
                    instance.records[r]!.ownership = .inherited
                }
            }
        }
        // Connections handed here and not taken yet go on to a process that stays.
        for instance in running {
            instance.withLock {
                instance.stack?.endpoint.adoptHandovers(now: Instant(nanoseconds: mtcp_shim_monotonic_ns()))
            }
        }
        // Out of the steering maps first, the instance that may be primary last: the role
        // passes on now, so frames that would reach this process after its last round go to
        // one that stays.
        for instance in running.reversed() {
            instance.withLock { instance.steering?.retire(keepServing: { instance.drive() }) }
        }
        // A few rounds: the FINs leave, and ACKs still owed go with them.
        for instance in running { instance.withLock { for _ in 0..<3 { instance.drive() } } }
        // The kernel keeps a closed socket after its process exits until the close handshake
        // ends; this process cannot, so it waits for its closes a little (bounded): a peer's
        // FIN arriving after the exit would otherwise find no owner and be reset.
        let states: [TCPState] = [.finWait1, .finWait2, .closing, .lastAck]
        for _ in 0..<Self.exitLingerRounds {
            let closing = running.filter { instance in
                instance.withLock {
                    guard let stack = instance.stack else { return false }
                    // Also connections never accepted that wait for a process to take them.
                    return stack.endpoint.hasOrphans || states.contains { stack.endpoint.countConnections(in: $0) > 0 }
                }
            }
            guard !closing.isEmpty else { break }
            var entries = closing.map {
                pollfd(fd: $0.stack?.io.waitDescriptor ?? -1, events: Int16(POLLIN), revents: 0)
            }
            _ = mtcp_real_poll(&entries, nfds_t(entries.count), 5)
            for instance in closing { instance.withLock { instance.drive() } }
        }
    }

    func writeStatistics() {
        guard let prefix = options?.statsPath else { return }
        let running = runningInstances
        guard !running.isEmpty else { return }
        var lines: [String] = []
        var perInstance = ""
        for instance in running {
            instance.withLock {
                guard let stack = instance.stack else { return }
                let tcp = stack.endpoint.statistics
                var text = stack.counterLine
                if let steering = stack.flowSteering { text += " steering=kernel \(steering.statistics.summary)" }
                if case .impaired(let link) = stack.io.backend {
                    let (rx, tx) = (link.receiveCounters, link.transmitCounters)
                    text += " impair_rx_dropped=\(rx.dropped) impair_rx_duplicated=\(rx.duplicated)"
                    text += " impair_rx_reordered=\(rx.reordered) impair_tx_dropped=\(tx.dropped)"
                    text += " impair_tx_duplicated=\(tx.duplicated) impair_tx_reordered=\(tx.reordered)"
                }
                lines.append(text)
                let k = instance.index
                perInstance +=
                    " instance\(k)_passive_opens=\(tcp.passiveOpens) instance\(k)_active_opens=\(tcp.activeOpens)"
                perInstance += " instance\(k)_connections=\(stack.endpoint.connectionCount)"
            }
        }
        var text = "pid=\(getpid()) \(CounterLine.summed(lines)) instances=\(running.count)\(perInstance)\n"
        let path = "\(prefix).\(getpid())"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        text.withUTF8 { bytes in _ = mtcp_real_write(fd, bytes.baseAddress, bytes.count) }
        _ = mtcp_real_close(fd)
    }
}
