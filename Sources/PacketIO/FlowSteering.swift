import CShim
import Glibc
import Synchronization

/// Counters of one instance's part in kernel flow steering.
public struct FlowSteeringStatistics: Sendable {
    public var flowsClaimed = 0
    /// Claims refused because another instance owns the 4-tuple (its SYN got there first).
    public var claimConflicts = 0
    /// Claims the kernel refused for another reason (the flow map full): the flow is dropped.
    public var claimFailures = 0
    public var flowsReleased = 0
    public var listenerJoins = 0
    public var listenerLeaves = 0
    /// SYNs held for a port that has listeners but no accepting instance yet, and handed on.
    public var synsParked = 0
    public var synsUnparked = 0
    public var primaryTakeovers = 0
    /// Instances found dead whose flows and memberships were removed, and those flows.
    public var instancesSwept = 0
    public var flowsSwept = 0
    /// Connections never accepted given to another instance when a listener closed, and
    /// taken from one.
    public var handoversGiven = 0
    public var handoversTaken = 0

    public init() {}

    public var summary: String {
        "steering_claims=\(flowsClaimed) steering_conflicts=\(claimConflicts) steering_claim_failures=\(claimFailures)"
            + " steering_releases=\(flowsReleased) steering_joins=\(listenerJoins) steering_leaves=\(listenerLeaves)"
            + " syns_parked=\(synsParked) syns_unparked=\(synsUnparked) primary_takeovers=\(primaryTakeovers)"
            + " instances_swept=\(instancesSwept) flows_swept=\(flowsSwept)"
            + " handovers_given=\(handoversGiven) handovers_taken=\(handoversTaken)"
    }
}

/// Which instance owns which flow, decided in the kernel (see `SteeringProgram`): the maps
/// every process on one interface shares, and this instance's program and roles in them.
///
/// - A flow is claimed (an atomic insert-if-absent into the flow map) before its first
///   segment is sent, and released when its connection is freed: from then on only its owner
///   sees its frames, whoever else comes and goes.
/// - A listening port lists its holders and its accepting members; new flows are spread over
///   the members by a hash, so a SYN only reaches an instance that accepts.
/// - One instance is primary (it holds a POSIX lock, so the role passes on when it dies): it
///   answers ARP and ICMP echo, resets segments nobody owns, parks SYNs for ports whose
///   listeners do not accept yet, and removes what dead instances left in the maps.
///
/// Membership and parking changes are serialized by another byte lock of the same file;
/// they are rare (listen, close, exit). Not thread-safe: the owning instance's lock covers it.
public final class FlowSteering {
    /// Descriptors of the shared maps and the lock file; inherited by fork.
    public struct SharedMaps: Sendable {
        public var flows: Int32
        public var listeners: Int32
        public var primary: Int32
        public var registry: Int32
        public var parked: Int32
        /// Connections handed from an instance that stopped listening to one that listens.
        public var handover: Int32
        public var lock: Int32
    }

    public let maps: SharedMaps
    public let token: UInt32
    public let program: Int32
    /// Set by whichever thread obtains the primary lock (the owner's, or the waiter thread).
    let primaryFlag = Atomic<Bool>(false)
    public var isPrimary: Bool { primaryFlag.load(ordering: .relaxed) }
    var countedPrimary = false
    public private(set) var statistics = FlowSteeringStatistics()
    /// Ports this instance listens on, and whether it accepts there.
    public private(set) var ports: [UInt16: Bool] = [:]
    let isAlive: (UInt32) -> Bool

    static let flowCapacity: UInt32 = 1 << 18
    static let listenerCapacity: UInt32 = 4096
    static let registryCapacity: UInt32 = 4096
    public static let parkingSlots: UInt32 = 64
    static let parkedFrameBytes = 128
    static let parkedValueBytes = 16 + parkedFrameBytes
    /// A handed-over connection's state (TCPHandover's encoding, which must fit) after the
    /// token of the instance it is for and 4 bytes of padding.
    public static let handoverBytes = 1048
    static let handoverValueBytes = 8 + handoverBytes
    static let handoverCapacity: UInt32 = 1024
    /// How long a parked SYN is worth handing on (the client retransmits after 1 s anyway).
    public static let parkingLifetimeNanoseconds: UInt64 = 1_000_000_000

    // linux/bpf.h
    static let hashMap: UInt32 = 1
    static let arrayMap: UInt32 = 2
    static let noExist: UInt64 = 1
    static let exist: UInt64 = 2

    /// Registry values: an instance being set up, and one whose stack runs and that waits for
    /// the primary role (it takes it the moment the primary lets go).
    static let starting: UInt32 = 0
    static let ready: UInt32 = 1
    /// Retired: the process is exiting; the sweep removes it, and its flows, once it is dead.
    static let retiring: UInt32 = 2
    /// How long an exiting primary keeps serving for a successor that is still starting.
    static let handoverLimitMilliseconds = 500

    static let mutexByte = 0
    static let primaryByte = 1

    /// The token of instance `instance` of process `pid` (pids fit in 24 bits on Linux).
    public static func token(pid: Int32, instance: Int = 0) -> UInt32 {
        UInt32(bitPattern: pid) << 8 | UInt32(instance & 0xFF)
    }

    /// The process of `token` still runs (a zombie does not: see `ProcessLiveness`).
    public static func processIsAlive(_ token: UInt32) -> Bool {
        ProcessLiveness.isRunning(pid: Int32(bitPattern: token >> 8))
    }

    // MARK: Opening

    /// Opens the maps of `interface` in this network namespace: copies of a live process's
    /// descriptors (pidfd_getfd) when some process already has them, new maps otherwise.
    /// A bpf file system would not do: `ip netns exec` gives each command a mount namespace
    /// of its own, so processes of one namespace would pin into different ones. The lock file
    /// in /dev/shm (named after the network namespace and the interface) lists who has them.
    /// `shared: false` makes maps nobody else finds (tests).
    public static func openMaps(interface: String, shared: Bool = true) throws(PacketIOError) -> SharedMaps {
        let index = if_nametoindex(interface)
        guard index != 0 else { throw .noSuchInterface(interface) }
        var namespace = stat()
        let inode = stat("/proc/self/ns/net", &namespace) == 0 ? UInt64(namespace.st_ino) : 0
        let lockPath = "/dev/shm/mtcp-steering-v2-\(inode)-\(index)\(shared ? "" : "-\(getpid())")"
        let lock = mtcp_shim_move_to_private_range(open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o666))
        guard lock >= 0 else { throw .system(call: "open(\(lockPath))", errno: mtcp_shim_errno()) }
        _ = fchmod(lock, 0o666)
        if !shared { _ = unlink(lockPath) }
        _ = mtcp_shim_lock_byte(lock, mutexByte, 1, 0)
        defer { _ = mtcp_shim_lock_byte(lock, mutexByte, 0, 1) }

        var table = HolderTable(lock: lock)
        for holder in table.entries where holder.pid > 0 && holder.pid != getpid() {
            let copies = holder.fds.map { mtcp_shim_fd_of_process(holder.pid, $0) }
            if copies.allSatisfy({ $0 >= 0 }) {
                return SharedMaps(
                    flows: copies[0], listeners: copies[1], primary: copies[2], registry: copies[3], parked: copies[4],
                    handover: copies[5], lock: lock)
            }
            for fd in copies where fd >= 0 { close(fd) }
        }
        func map(_ name: String, type: UInt32, key: Int, value: Int, entries: UInt32, flags: UInt32 = 0)
            throws(PacketIOError) -> Int32
        {
            let fd = mtcp_shim_bpf_map_create(type, UInt32(key), UInt32(value), entries, flags)
            guard fd >= 0 else { throw .system(call: "bpf(BPF_MAP_CREATE \(name))", errno: mtcp_shim_errno()) }
            return fd
        }
        let noPrealloc: UInt32 = 1  // BPF_F_NO_PREALLOC
        let flows = try map("flows", type: hashMap, key: 16, value: 4, entries: flowCapacity, flags: noPrealloc)
        let listeners = try map(
            "listeners", type: hashMap, key: 4, value: ListenerSet.byteCount, entries: listenerCapacity)
        let primary = try map("primary", type: arrayMap, key: 4, value: 4, entries: 1)
        let registry = try map("registry", type: hashMap, key: 4, value: 4, entries: registryCapacity)
        let parked = try map("parked", type: arrayMap, key: 4, value: parkedValueBytes, entries: parkingSlots)
        let handover = try map(
            "handover", type: hashMap, key: 16, value: handoverValueBytes, entries: handoverCapacity, flags: noPrealloc)
        let maps = SharedMaps(
            flows: flows, listeners: listeners, primary: primary, registry: registry, parked: parked,
            handover: handover, lock: lock)
        // Every earlier holder is gone: its entries describe maps that no longer exist.
        table.clear()
        return maps
    }

    /// The processes that have the maps open and their descriptor numbers, after the lock bytes
    /// of the lock file: 64 entries of a pid and six descriptors (Int32 each).
    struct HolderTable {
        static let offset = 64
        static let count = 64
        static let words = 7
        static let entryBytes = words * 4
        let lock: Int32

        var entries: [(pid: Int32, fds: [Int32])] {
            var words = [Int32](repeating: 0, count: Self.count * Self.entryBytes / 4)
            let read = words.withUnsafeMutableBytes { pread(lock, $0.baseAddress, $0.count, off_t(Self.offset)) }
            guard read > 0 else { return [] }
            let n = Self.words
            return (0..<(read / Self.entryBytes)).map { k in (words[n * k], Array(words[(n * k + 1)..<(n * k + n)])) }
        }

        /// Lists `pid` with `fds`, in its own entry, a dead process's or a free one.
        func add(_ pid: Int32, _ fds: [Int32]) {
            let current = entries
            let slot =
                current.firstIndex { $0.pid == pid }
                ?? current.firstIndex { $0.pid <= 0 || !ProcessLiveness.isRunning(pid: $0.pid) }
                ?? (current.count < Self.count ? current.count : nil)
            guard let slot else { return }
            write([pid] + fds, at: slot)
        }

        func remove(_ pid: Int32) {
            for (slot, entry) in entries.enumerated() where entry.pid == pid {
                write([Int32](repeating: 0, count: Self.words), at: slot)
            }
        }

        func clear() {
            let zero = [Int32](repeating: 0, count: Self.count * Self.entryBytes / 4)
            _ = zero.withUnsafeBytes { pwrite(lock, $0.baseAddress, $0.count, off_t(Self.offset)) }
        }

        func write(_ words: [Int32], at slot: Int) {
            _ = words.withUnsafeBytes {
                pwrite(lock, $0.baseAddress, $0.count, off_t(Self.offset + slot * Self.entryBytes))
            }
        }
    }

    /// Instance `token`'s program over `maps`, registered as a live instance.
    /// `kernelSharesAddress`: TCP nobody here claims is the kernel's (`KernelExclusion`).
    public init(
        maps: SharedMaps, token: UInt32, kernelSharesAddress: Bool = false,
        isAlive: @escaping (UInt32) -> Bool = FlowSteering.processIsAlive
    ) throws(PacketIOError) {
        self.maps = maps
        self.token = token
        self.isAlive = isAlive
        let code = SteeringProgram.instructions(
            token: token, flows: maps.flows, listeners: maps.listeners, primary: maps.primary,
            kernelSharesAddress: kernelSharesAddress)
        let words = code.map(\.bytes)
        var log = [CChar](repeating: 0, count: 16384)
        let fd = words.withUnsafeBytes { raw in
            mtcp_shim_bpf_load_socket_filter(raw.baseAddress, UInt32(words.count), &log, UInt32(log.count))
        }
        guard fd >= 0 else {
            let errno = mtcp_shim_errno()
            let verifier = String(cString: log).split(separator: "\n").suffix(3).joined(separator: " | ")
            throw .system(call: "bpf(BPF_PROG_LOAD steering) \(verifier)", errno: errno)
        }
        program = fd
        var key = token
        var state = Self.starting
        _ = mtcp_shim_bpf_map_update(maps.registry, &key, &state, 0)
        serialized {
            HolderTable(lock: maps.lock).add(
                getpid(), [maps.flows, maps.listeners, maps.primary, maps.registry, maps.parked, maps.handover])
        }
    }

    deinit { close(program) }

    /// Makes `socket` (a packet socket, before it is bound) keep only this instance's frames.
    public func attach(to socket: Int32) throws(PacketIOError) {
        guard mtcp_shim_attach_bpf(socket, program) == 0 else {
            throw .system(call: "setsockopt(SO_ATTACH_BPF)", errno: mtcp_shim_errno())
        }
    }

    // MARK: Flows

    struct FlowKey {
        var localAddress: UInt32
        var remoteAddress: UInt32
        var localPort: UInt16
        var remotePort: UInt16
        /// 0 for IPv4; `SteeringProgram.ipv6KeyFamily` for IPv6 (addresses folded).
        var family: UInt32 = 0
    }

    /// Takes the flow for this instance; false when another instance has it (or the map is full).
    /// An IPv6 flow gives its folded addresses (`SteeringProgram.fold`) and `family`.
    public func claim(
        localAddress: UInt32, localPort: UInt16, remoteAddress: UInt32, remotePort: UInt16, family: UInt32 = 0
    ) -> Bool {
        var key = FlowKey(
            localAddress: localAddress, remoteAddress: remoteAddress, localPort: localPort, remotePort: remotePort,
            family: family)
        var owner = token
        if mtcp_shim_bpf_map_update(maps.flows, &key, &owner, Self.noExist) == 0 {
            statistics.flowsClaimed += 1
            return true
        }
        if mtcp_shim_errno() == EEXIST {
            var current: UInt32 = 0
            if mtcp_shim_bpf_map_lookup(maps.flows, &key, &current) == 0 && current == token { return true }
            if current != 0 && !isAlive(current) {
                // Left by an instance that died before the sweep: take it over.
                if mtcp_shim_bpf_map_update(maps.flows, &key, &owner, Self.exist) == 0 {
                    statistics.flowsClaimed += 1
                    return true
                }
            }
            statistics.claimConflicts += 1
        } else {
            statistics.claimFailures += 1
        }
        return false
    }

    // MARK: Handovers

    /// Gives a flow whose connection was never accepted to another instance that accepts on
    /// its port, with `state` (at most `handoverBytes`) to rebuild it from: the flow's frames
    /// go there from now on. False when no other instance accepts there.
    public func handOver(
        localAddress: UInt32, localPort: UInt16, remoteAddress: UInt32, remotePort: UInt16,
        state: UnsafeRawBufferPointer
    ) -> Bool {
        guard state.count <= Self.handoverBytes, let set = listenerSet(port: localPort),
            // The newest member: on a reload the old workers stop together, the new ones stay.
            let target = set.members.last(where: { $0 != token && isAlive($0) })
        else { return false }
        var key = FlowKey(
            localAddress: localAddress, remoteAddress: remoteAddress, localPort: localPort, remotePort: remotePort)
        var value = [UInt8](repeating: 0, count: Self.handoverValueBytes)
        withUnsafeBytes(of: target) { value.replaceSubrange(0..<4, with: $0) }
        value.replaceSubrange(8..<(8 + state.count), with: state)
        guard mtcp_shim_bpf_map_update(maps.handover, &key, &value, 0) == 0 else { return false }
        var owner = target
        guard mtcp_shim_bpf_map_update(maps.flows, &key, &owner, 0) == 0 else {
            _ = mtcp_shim_bpf_map_delete(maps.handover, &key)
            return false
        }
        statistics.handoversGiven += 1
        return true
    }

    /// Whether another instance listens on `port` (accepting there or not yet).
    public func othersListen(port: UInt16) -> Bool {
        guard let set = listenerSet(port: port) else { return false }
        return (set.members + set.holders).contains { $0 != token && isAlive($0) }
    }

    /// The state of a flow handed to this instance, taken (once); nil when there is none.
    public func takeHandover(localAddress: UInt32, localPort: UInt16, remoteAddress: UInt32, remotePort: UInt16)
        -> [UInt8]?
    {
        var key = FlowKey(
            localAddress: localAddress, remoteAddress: remoteAddress, localPort: localPort, remotePort: remotePort)
        return withUnsafeBytes(of: &key) { take(key: Array($0)) }
    }

    /// Every flow handed to this instance, taken: (local address, local port, remote address,
    /// remote port, state).
    public func pendingHandovers() -> [(UInt32, UInt16, UInt32, UInt16, [UInt8])] {
        keys(of: maps.handover, size: 16).compactMap { key in
            // IPv6 flows are never handed over (their folded addresses cannot name the flow).
            guard key.withUnsafeBytes({ $0.loadUnaligned(as: FlowKey.self).family }) == 0,
                let state = take(key: key)
            else { return nil }
            return key.withUnsafeBytes { raw in
                let flow = raw.loadUnaligned(as: FlowKey.self)
                return (flow.localAddress, flow.localPort, flow.remoteAddress, flow.remotePort, state)
            }
        }
    }

    func take(key: [UInt8]) -> [UInt8]? {
        var key = key
        var value = [UInt8](repeating: 0, count: Self.handoverValueBytes)
        guard mtcp_shim_bpf_map_lookup(maps.handover, &key, &value) == 0,
            value.withUnsafeBytes({ $0.load(as: UInt32.self) }) == token,
            mtcp_shim_bpf_map_delete(maps.handover, &key) == 0
        else { return nil }
        statistics.handoversTaken += 1
        return Array(value[8...])
    }

    /// Gives the flow back (its connection is gone).
    public func release(
        localAddress: UInt32, localPort: UInt16, remoteAddress: UInt32, remotePort: UInt16, family: UInt32 = 0
    ) {
        var key = FlowKey(
            localAddress: localAddress, remoteAddress: remoteAddress, localPort: localPort, remotePort: remotePort,
            family: family)
        if mtcp_shim_bpf_map_delete(maps.flows, &key) == 0 { statistics.flowsReleased += 1 }
    }

    /// The instance owning a flow, nil for none.
    public func owner(localAddress: UInt32, localPort: UInt16, remoteAddress: UInt32, remotePort: UInt16) -> UInt32? {
        var key = FlowKey(
            localAddress: localAddress, remoteAddress: remoteAddress, localPort: localPort, remotePort: remotePort)
        var current: UInt32 = 0
        return mtcp_shim_bpf_map_lookup(maps.flows, &key, &current) == 0 ? current : nil
    }

    // MARK: Listeners

    /// The set of `port` as the maps hold it now.
    public func listenerSet(port: UInt16) -> ListenerSet? {
        var key = UInt32(port)
        var words = [UInt32](repeating: 0, count: ListenerSet.byteCount / 4)
        guard mtcp_shim_bpf_map_lookup(maps.listeners, &key, &words) == 0 else { return nil }
        return ListenerSet(encoded: words)
    }

    func store(_ set: ListenerSet, port: UInt16) {
        var key = UInt32(port)
        if set.isEmpty {
            _ = mtcp_shim_bpf_map_delete(maps.listeners, &key)
        } else {
            var words = set.encoded()
            _ = mtcp_shim_bpf_map_update(maps.listeners, &key, &words, 0)
        }
    }

    /// Runs `body` holding the membership lock (other processes wait; rare changes only).
    func serialized<R>(_ body: () -> R) -> R {
        Self.acrossInstances(lock: maps.lock, body)
    }

    /// POSIX byte locks exclude other processes only: the instances of one process also
    /// take a mutex of the process first.
    static let processMutex = Mutex(())

    static func acrossInstances<R>(lock: Int32, _ body: () -> R) -> R {
        processMutex.withLock { _ in
            _ = mtcp_shim_lock_byte(lock, mutexByte, 1, 0)
            defer { _ = mtcp_shim_lock_byte(lock, mutexByte, 0, 1) }
            return body()
        }
    }

    /// This instance listens on `port` (and accepts there when `accepting`): with `accepting`,
    /// new flows of the port may be steered here from now on. Returns the SYNs parked for the
    /// port meanwhile, for the caller to process as if just received.
    @discardableResult
    public func listen(port: UInt16, accepting: Bool, now: UInt64) -> [[UInt8]] {
        if ports[port] == true || (ports[port] == false && !accepting) { return [] }
        return serialized {
            var set = listenerSet(port: port) ?? ListenerSet()
            guard set.add(token, accepting: accepting) else { return [] }
            store(set, port: port)
            ports[port] = accepting
            guard accepting else { return [] }
            statistics.listenerJoins += 1
            return takeParked(port: port, now: now)
        }
    }

    /// This instance no longer listens on `port`: new flows go to the other members; flows
    /// already here stay here.
    public func stopListening(port: UInt16) {
        guard ports.removeValue(forKey: port) != nil else { return }
        serialized {
            guard var set = listenerSet(port: port) else { return }
            set.remove(token)
            store(set, port: port)
            statistics.listenerLeaves += 1
        }
    }

    /// `port` has listeners of which none accepts yet (a SYN for it is parked, not reset).
    public func awaitsAcceptor(port: UInt16) -> Bool {
        guard let set = listenerSet(port: port) else { return false }
        return set.members.isEmpty && !set.holders.isEmpty
    }

    // MARK: Parking

    /// Keeps a SYN frame for the first instance that accepts on `port` (primary only); false
    /// when every slot holds a younger SYN.
    @discardableResult
    public func park(frame: UnsafeRawBufferPointer, port: UInt16, now: UInt64) -> Bool {
        guard frame.count <= Self.parkedFrameBytes else { return false }
        return serialized {
            var value = [UInt8](repeating: 0, count: Self.parkedValueBytes)
            for slot in 0..<Self.parkingSlots {
                var key = slot
                guard mtcp_shim_bpf_map_lookup(maps.parked, &key, &value) == 0 else { continue }
                let expires = value.withUnsafeBytes { $0.load(as: UInt64.self) }
                guard expires <= now else { continue }
                value.withUnsafeMutableBytes { raw in
                    raw.storeBytes(of: now + Self.parkingLifetimeNanoseconds, as: UInt64.self)
                    raw.storeBytes(of: UInt32(port), toByteOffset: 8, as: UInt32.self)
                    raw.storeBytes(of: UInt32(frame.count), toByteOffset: 12, as: UInt32.self)
                    UnsafeMutableRawBufferPointer(rebasing: raw[16..<(16 + frame.count)]).copyMemory(from: frame)
                }
                guard mtcp_shim_bpf_map_update(maps.parked, &key, &value, 0) == 0 else { return false }
                statistics.synsParked += 1
                return true
            }
            return false
        }
    }

    /// Removes and returns the live parked SYNs of `port` (membership lock held).
    func takeParked(port: UInt16, now: UInt64) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        var value = [UInt8](repeating: 0, count: Self.parkedValueBytes)
        for slot in 0..<Self.parkingSlots {
            var key = slot
            guard mtcp_shim_bpf_map_lookup(maps.parked, &key, &value) == 0 else { continue }
            let (expires, parkedPort, length) = value.withUnsafeBytes {
                (
                    $0.load(as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt32.self),
                    Int($0.load(fromByteOffset: 12, as: UInt32.self))
                )
            }
            guard expires > now, parkedPort == UInt32(port), length <= Self.parkedFrameBytes else { continue }
            frames.append(Array(value[16..<(16 + length)]))
            var empty = [UInt8](repeating: 0, count: Self.parkedValueBytes)
            _ = mtcp_shim_bpf_map_update(maps.parked, &key, &empty, 0)
        }
        statistics.synsUnparked += frames.count
        return frames
    }

    // MARK: The primary role and clean-up

    /// Takes the primary role if nobody holds it; as primary, removes what dead instances
    /// left behind. Called every few hundred milliseconds.
    public func maintain() {
        guard !retired else { return }
        if !isPrimary {
            guard contendsForPrimary, mtcp_shim_lock_byte(maps.lock, Self.primaryByte, 0, 0) == 0 else { return }
            primaryFlag.store(true, ordering: .relaxed)
        }
        if !countedPrimary {
            countedPrimary = true
            statistics.primaryTakeovers += 1
        }
        publishPrimary()
        sweep()
    }

    /// Names this instance in the primary map (a predecessor that died may have left its token).
    func publishPrimary() {
        var key: UInt32 = 0
        var current: UInt32 = 0
        if mtcp_shim_bpf_map_lookup(maps.primary, &key, &current) != 0 || current != token {
            var value = token
            _ = mtcp_shim_bpf_map_update(maps.primary, &key, &value, 0)
        }
    }

    /// A thread that sleeps until the primary lock is free and takes the role at once, so
    /// that a primary that exits (nginx's first process after it daemonized) leaves no gap in
    /// which SYNs for listeners that do not accept yet are lost. Once per instance.
    public func waitForPrimaryRole() {
        guard !waiting, !isPrimary, contendsForPrimary else { return }
        waiting = true
        let context = Unmanaged.passRetained(self).toOpaque()
        _ = mtcp_shim_wait_for_lock_thread(
            maps.lock, Self.primaryByte,
            { context in
                let steering = Unmanaged<FlowSteering>.fromOpaque(context!).takeRetainedValue()
                steering.primaryFlag.store(true, ordering: .relaxed)
                steering.publishPrimary()
            }, context)
    }
    var waiting = false
    /// Whether this instance may take the primary role: one instance per process does (the
    /// primary lock is a POSIX lock, which every thread of the process would obtain at once).
    public var contendsForPrimary = true
    /// Gone from the maps (the process is exiting): takes no role again.
    public private(set) var retired = false

    /// Removes every dead instance's flows, listener memberships and registration.
    public func sweep() {
        let dead = keys(of: maps.registry, size: 4).map { $0.withUnsafeBytes { $0.load(as: UInt32.self) } }
            .filter { $0 != token && !isAlive($0) }
        guard !dead.isEmpty else { return }
        let gone = Set(dead)
        serialized {
            for raw in keys(of: maps.listeners, size: 4) {
                let port = UInt16(truncatingIfNeeded: raw.withUnsafeBytes { $0.load(as: UInt32.self) })
                guard var set = listenerSet(port: port), set.removeAll(where: { gone.contains($0) }) else { continue }
                store(set, port: port)
            }
        }
        for var key in keys(of: maps.flows, size: 16) {
            var owner: UInt32 = 0
            guard mtcp_shim_bpf_map_lookup(maps.flows, &key, &owner) == 0, gone.contains(owner) else { continue }
            if mtcp_shim_bpf_map_delete(maps.flows, &key) == 0 { statistics.flowsSwept += 1 }
        }
        for var key in keys(of: maps.handover, size: 16) {
            var value = [UInt8](repeating: 0, count: Self.handoverValueBytes)
            guard mtcp_shim_bpf_map_lookup(maps.handover, &key, &value) == 0,
                gone.contains(value.withUnsafeBytes { $0.load(as: UInt32.self) })
            else { continue }
            _ = mtcp_shim_bpf_map_delete(maps.handover, &key)
        }
        for var token in dead {
            _ = mtcp_shim_bpf_map_delete(maps.registry, &token)
            statistics.instancesSwept += 1
        }
    }

    /// Every key of a hash map (collected first: deleting while walking restarts the walk).
    func keys(of map: Int32, size: Int) -> [[UInt8]] {
        var result: [[UInt8]] = []
        var previous: [UInt8]?
        var next = [UInt8](repeating: 0, count: size)
        while result.count < Int(Self.flowCapacity) {
            let status: Int32
            if var key = previous {
                status = mtcp_shim_bpf_map_next_key(map, &key, &next)
            } else {
                status = mtcp_shim_bpf_map_next_key(map, nil, &next)
            }
            guard status == 0 else { break }
            result.append(next)
            previous = next
        }
        return result
    }

    /// Lists instance `token` (a child just forked, before it runs) as starting, so that an
    /// exiting primary waits for it (see `retire`).
    public func registerStarting(_ token: UInt32) {
        var key = token
        var state = Self.starting
        _ = mtcp_shim_bpf_map_update(maps.registry, &key, &state, 0)
    }

    /// This instance's stack runs and it waits for the primary role.
    public func markReady() {
        var key = token
        var state = Self.ready
        _ = mtcp_shim_bpf_map_update(maps.registry, &key, &state, 0)
    }

    /// Whether another live instance is ready to take the primary role, or one is still
    /// starting (worth waiting for).
    func successors() -> (ready: Bool, starting: Bool) {
        var result = (ready: false, starting: false)
        for raw in keys(of: maps.registry, size: 4) {
            var key = raw.withUnsafeBytes { $0.load(as: UInt32.self) }
            var state: UInt32 = 0
            guard key != token, mtcp_shim_bpf_map_lookup(maps.registry, &key, &state) == 0, isAlive(key) else {
                continue
            }
            if state == Self.ready { result.ready = true } else if state == Self.starting { result.starting = true }
        }
        return result
    }

    /// This instance leaves: out of every listener set, and marked retiring in the registry (its
    /// flows go with the sweep once it is dead, so that segments still in flight are not reset
    /// meanwhile).
    /// A primary whose successor is still starting (nginx's first process exits right after
    /// forking the master) keeps the role, calling `keepServing` every millisecond, until the
    /// successor is ready or the limit passes: SYNs parked meanwhile are not lost.
    public func retire(keepServing: () -> Void = {}) {
        guard !retired else { return }
        for port in Array(ports.keys) { stopListening(port: port) }
        if isPrimary {
            for _ in 0..<Self.handoverLimitMilliseconds {
                let next = successors()
                if next.ready || !next.starting { break }
                keepServing()
                usleep(1000)
            }
        }
        retired = true
        serialized {
            // Still registered, as retiring: once this process is dead the primary's sweep
            // removes its flows (TIME-WAIT ones too, whose 4-tuples clients reuse).
            var key = token
            var state = Self.retiring
            _ = mtcp_shim_bpf_map_update(maps.registry, &key, &state, 0)
            HolderTable(lock: maps.lock).remove(getpid())
            if isPrimary {
                var zero: UInt32 = 0
                var slot: UInt32 = 0
                _ = mtcp_shim_bpf_map_update(maps.primary, &slot, &zero, 0)
            }
        }
        if isPrimary {
            primaryFlag.store(false, ordering: .relaxed)
            countedPrimary = false
            _ = mtcp_shim_lock_byte(maps.lock, Self.primaryByte, 0, 1)
        }
    }
}
