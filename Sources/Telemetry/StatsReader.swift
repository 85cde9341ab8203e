import CShim
import Glibc

/// What one instance block held at one moment.
public struct StatsInstanceSnapshot: Sendable {
    public var index: Int
    /// When the counters and the socket rows were published (CLOCK_REALTIME ns; 0: never).
    public var countersPublished: UInt64
    public var socketsPublished: UInt64
    public var counters: [UInt64]
    /// The values `--reset` recorded; shown counters are `counters - baseline`.
    public var baseline: [UInt64]
    public var sockets: [SocketRow]
    /// Sockets the instance had, also those beyond the region's capacity.
    public var socketTotal: Int
}

/// A socket of the process that the kernel carries, and why.
public struct StatsFallback: Sendable, Equatable {
    public var fd: Int32
    public var family: Int32
    public var type: Int32
    public var reason: String
}

/// A copy of a whole region.
public struct StatsSnapshot: Sendable {
    public var path: String
    public var pid: Int32
    public var description: StatsProcessDescription
    public var startTime: UInt64
    public var state: StatsProcessState
    /// The process with this pid and start time still runs.
    public var alive: Bool
    public var counterNames: [String]
    public var instances: [StatsInstanceSnapshot]
    public var fallbacks: [StatsFallback]

    /// Every counter summed over the instances, less the baseline, in `counterNames` order.
    public var totals: [UInt64] {
        var sums = [UInt64](repeating: 0, count: counterNames.count)
        for instance in instances {
            for i in sums.indices where i < instance.counters.count {
                sums[i] &+= instance.counters[i] &- instance.baseline[i]
            }
        }
        return sums
    }

    /// Counter `name` over every instance, less the baseline; nil when the region has none.
    public func total(_ name: String) -> UInt64? {
        counterNames.firstIndex(of: name).map { totals[$0] }
    }
}

/// Reads regions without stopping their writers: each part is copied under its sequence lock
/// and copied again when a writer moved meanwhile.
public final class StatsReader {
    public let path: String
    let base: UnsafeMutableRawPointer
    let length: Int
    let writable: Bool

    /// The region files in `directory`, by pid.
    public static func regions(in directory: String) -> [(pid: Int32, path: String)] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var found: [(pid: Int32, path: String)] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard name.hasPrefix("mtcp-stats."), let pid = Int32(name.dropFirst("mtcp-stats.".count)) else { continue }
            found.append((pid, "\(directory)/\(name)"))
        }
        return found.sorted { $0.pid < $1.pid }
    }

    /// Removes the regions of processes that no longer run but the newest `keep` of them (by
    /// the file's modification time: a region is rewritten while its process runs), and says
    /// how many went. Every process that makes a region calls it with a few kept, so regions
    /// of SIGKILLed processes stay readable for a while (post mortem) without piling up.
    @discardableResult
    public static func removeDeadRegions(in directory: String, keepingNewest keep: Int = 0) -> Int {
        var dead: [(path: String, modified: Int)] = []
        for (_, path) in regions(in: directory) {
            guard let reader = try? StatsReader(path: path), !reader.processAlive else { continue }
            var info = stat()
            dead.append((path, stat(path, &info) == 0 ? Int(info.st_mtim.tv_sec) : 0))
        }
        var removed = 0
        for old in dead.sorted(by: { $0.modified > $1.modified }).dropFirst(max(keep, 0)) where unlink(old.path) == 0 {
            removed += 1
        }
        return removed
    }

    /// Opens a region to read (and, when permitted, to record a reset baseline).
    public init(path: String) throws(StatsRegionError) {
        self.path = path
        var fd = open(path, O_RDWR | O_CLOEXEC)
        writable = fd >= 0
        if fd < 0 { fd = open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw StatsRegionError(description: "cannot open \(path): errno \(errno)") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size >= StatsLayout.headerLength else {
            throw StatsRegionError(description: "\(path) is not a statistics region (too short)")
        }
        length = Int(info.st_size)
        let protection = writable ? PROT_READ | PROT_WRITE : PROT_READ
        guard let mapped = mmap(nil, length, protection, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            throw StatsRegionError(description: "cannot map \(path): errno \(errno)")
        }
        base = mapped
        guard mtcp_shim_load_acquire_u64(base) == StatsLayout.magic,
            base.load(fromByteOffset: StatsLayout.versionOffset, as: UInt32.self) == StatsLayout.version
        else {
            munmap(base, length)
            throw StatsRegionError(description: "\(path) is not a statistics region of this version")
        }
        let g = geometry
        guard g.totalLength <= length,
            Int(base.load(fromByteOffset: StatsLayout.instanceBlocksOffset, as: UInt64.self)) == g.instanceBlocks
        else {
            munmap(base, length)
            throw StatsRegionError(description: "\(path) is damaged (its sizes do not add up)")
        }
    }

    deinit { munmap(base, length) }

    var geometry: StatsLayout.Geometry {
        StatsLayout.Geometry(
            counterCount: Int(base.load(fromByteOffset: StatsLayout.counterCountOffset, as: UInt32.self)),
            instanceCount: Int(base.load(fromByteOffset: StatsLayout.instanceCountOffset, as: UInt32.self)),
            socketCapacity: Int(base.load(fromByteOffset: StatsLayout.socketCapacityOffset, as: UInt32.self)),
            fallbackCapacity: Int(base.load(fromByteOffset: StatsLayout.fallbackCapacityOffset, as: UInt32.self)))
    }

    public var pid: Int32 { base.load(fromByteOffset: StatsLayout.pidOffset, as: Int32.self) }

    /// Whether the process that made the region still runs (same pid, same start time).
    public var processAlive: Bool {
        let recorded = base.load(fromByteOffset: StatsLayout.bootTicksOffset, as: UInt64.self)
        guard let ticks = ProcessIdentity.startTicks(of: pid) else { return false }
        return recorded == 0 || ticks == recorded
    }

    /// Copies the region; `sockets: false` skips the socket rows.
    public func snapshot(sockets: Bool = true) -> StatsSnapshot {
        let g = geometry
        let raw = UnsafeRawPointer(base)
        let names = (0..<g.counterCount).map {
            raw.loadText(at: g.names + $0 * StatsLayout.nameLength, length: StatsLayout.nameLength)
        }
        let description = StatsProcessDescription(
            command: raw.loadText(at: StatsLayout.commandOffset, length: StatsLayout.commandLength),
            interface: raw.loadText(at: StatsLayout.interfaceOffset, length: StatsLayout.interfaceLength),
            backend: raw.loadText(at: StatsLayout.backendOffset, length: StatsLayout.backendLength),
            host: raw.loadText(at: StatsLayout.hostOffset, length: StatsLayout.hostLength),
            address: raw.loadText(at: StatsLayout.addressOffset, length: StatsLayout.addressLength))
        var instances: [StatsInstanceSnapshot] = []
        for k in 0..<g.instanceCount {
            let block = raw + g.instanceBlocks + k * g.instanceBlockLength
            var counters: [UInt64] = []
            var published: UInt64 = 0
            Self.consistently(block + StatsLayout.counterSequenceOffset) {
                let values = (block + StatsLayout.valuesOffset).assumingMemoryBound(to: UInt64.self)
                counters = Array(UnsafeBufferPointer(start: values, count: g.counterCount))
                published = block.load(fromByteOffset: StatsLayout.countersPublishedOffset, as: UInt64.self)
            }
            let baselineValues = (block + g.baselineOffset).assumingMemoryBound(to: UInt64.self)
            let baseline = Array(UnsafeBufferPointer(start: baselineValues, count: g.counterCount))
            var rows: [SocketRow] = []
            var total = 0
            var socketsPublished: UInt64 = 0
            if sockets {
                Self.consistently(block + StatsLayout.socketSequenceOffset) {
                    let n = min(
                        Int(block.load(fromByteOffset: StatsLayout.socketRowsOffset, as: UInt32.self)), g.socketCapacity
                    )
                    rows = (0..<n).map { SocketRow(loadingFrom: block + g.socketRowsStart + $0 * SocketRow.length) }
                    total = Int(block.load(fromByteOffset: StatsLayout.socketTotalOffset, as: UInt32.self))
                    socketsPublished = block.load(fromByteOffset: StatsLayout.socketsPublishedOffset, as: UInt64.self)
                }
            }
            instances.append(
                StatsInstanceSnapshot(
                    index: k, countersPublished: published, socketsPublished: socketsPublished, counters: counters,
                    baseline: baseline, sockets: rows, socketTotal: total))
        }
        var fallbacks: [StatsFallback] = []
        Self.consistently(raw + StatsLayout.fallbackSequenceOffset) {
            fallbacks = []
            for i in 0..<g.fallbackCapacity {
                let row = raw + g.fallbacks + i * StatsLayout.fallbackRowLength
                guard row.load(fromByteOffset: 12, as: UInt32.self) != 0 else { continue }
                fallbacks.append(
                    StatsFallback(
                        fd: row.load(as: Int32.self), family: row.load(fromByteOffset: 4, as: Int32.self),
                        type: row.load(fromByteOffset: 8, as: Int32.self),
                        reason: row.loadText(
                            at: StatsLayout.fallbackReasonOffset, length: StatsLayout.fallbackReasonLength)))
            }
        }
        return StatsSnapshot(
            path: path, pid: pid, description: description,
            startTime: raw.load(fromByteOffset: StatsLayout.startTimeOffset, as: UInt64.self),
            state: StatsProcessState(rawValue: raw.load(fromByteOffset: StatsLayout.stateOffset, as: UInt32.self))
                ?? .starting,
            alive: processAlive, counterNames: names, instances: instances, fallbacks: fallbacks)
    }

    /// Makes the current counters the zero from which they are shown (`mtcp-stat --reset`);
    /// the process's own counters go on unchanged. `levels` (sockets, connections: not running
    /// totals) keep a zero baseline.
    public func reset(except levels: Set<String> = []) throws(StatsRegionError) {
        guard writable else { throw StatsRegionError(description: "\(path) is read-only for this user") }
        let g = geometry
        let names = snapshot(sockets: false).counterNames
        for k in 0..<g.instanceCount {
            let block = base + g.instanceBlocks + k * g.instanceBlockLength
            var counters: [UInt64] = []
            Self.consistently(UnsafeRawPointer(block + StatsLayout.counterSequenceOffset)) {
                let values = UnsafeRawPointer(block + StatsLayout.valuesOffset).assumingMemoryBound(to: UInt64.self)
                counters = Array(UnsafeBufferPointer(start: values, count: g.counterCount))
            }
            let baseline = (block + g.baselineOffset).assumingMemoryBound(to: UInt64.self)
            for i in 0..<g.counterCount { baseline[i] = levels.contains(names[i]) ? 0 : counters[i] }
        }
    }

    /// Runs `copy` until the sequence lock at `sequence` was even and unchanged around it. A
    /// writer that died inside its lock (the sequence odd and unchanged for 100 ms: a live one
    /// may be preempted there for a while on a busy host) leaves the last copy; a busy one is
    /// waited out, for at most about a second.
    static func consistently(_ sequence: UnsafeRawPointer, _ copy: () -> Void) {
        var oddSince: (value: UInt64, at: UInt64)?
        let start = monotonicNanoseconds()
        while monotonicNanoseconds() &- start < 1_000_000_000 {
            let before = mtcp_shim_load_acquire_u64(sequence)
            if before & 1 != 0 {
                let now = monotonicNanoseconds()
                if let odd = oddSince, odd.value == before {
                    if now &- odd.at > 100_000_000 { break }
                } else {
                    oddSince = (before, now)
                }
                sched_yield()
                continue
            }
            copy()
            mtcp_shim_fence_acquire()
            if mtcp_shim_load_acquire_u64(sequence) == before { return }
        }
        copy()
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
private func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}
