import CShim
import Glibc
import Synchronization

/// What a statistics region says about its process, as text in its header.
public struct StatsProcessDescription: Sendable, Equatable {
    public var command: String
    public var interface: String
    public var backend: String
    /// Which host runs the stack: "preload", "capi" or "example".
    public var host: String
    public var address: String

    public init(command: String, interface: String, backend: String, host: String, address: String) {
        self.command = command
        self.interface = interface
        self.backend = backend
        self.host = host
        self.address = address
    }
}

/// Why a region or capture file could not be made or read.
public struct StatsRegionError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// A process's statistics region, written by the process (see `StatsLayout`). The file stays
/// after the process dies, so its last counters can be read; `remove()` at a normal exit or
/// `mtcp-stat --clean` deletes it.
public final class StatsRegion: @unchecked Sendable {
    public let path: String
    let base: UnsafeMutableRawPointer
    let geometry: StatsLayout.Geometry
    /// Serializes writers of the fallback rows (a leaf lock: held over no other).
    let fallbackLock = Mutex(())

    /// Where regions live unless MTCP_STATS_DIR says otherwise.
    public static let defaultDirectory = "/dev/shm"

    /// The region file of process `pid` in `directory`.
    public static func path(directory: String, pid: Int32) -> String { "\(directory)/mtcp-stats.\(pid)" }

    /// Makes the region of this process (replacing an old file of the same pid).
    public init(
        directory: String, pid: Int32, description: StatsProcessDescription, counterNames: [String],
        instances: Int, socketCapacity: Int = 4096, fallbackCapacity: Int = 64
    ) throws(StatsRegionError) {
        geometry = StatsLayout.Geometry(
            counterCount: counterNames.count, instanceCount: max(instances, 1), socketCapacity: socketCapacity,
            fallbackCapacity: fallbackCapacity)
        path = Self.path(directory: directory, pid: pid)
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StatsRegionError(description: "cannot create \(path): errno \(errno)") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(geometry.totalLength)) == 0 else {
            let e = errno
            unlink(path)
            throw StatsRegionError(description: "cannot size \(path): errno \(e)")
        }
        guard let mapped = mmap(nil, geometry.totalLength, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
            mapped != MAP_FAILED
        else {
            let e = errno
            unlink(path)
            throw StatsRegionError(description: "cannot map \(path): errno \(e)")
        }
        base = mapped
        let g = geometry
        base.storeBytes(of: StatsLayout.version, toByteOffset: StatsLayout.versionOffset, as: UInt32.self)
        base.storeBytes(of: pid, toByteOffset: StatsLayout.pidOffset, as: Int32.self)
        base.storeBytes(of: UInt32(g.instanceCount), toByteOffset: StatsLayout.instanceCountOffset, as: UInt32.self)
        base.storeBytes(of: UInt32(g.counterCount), toByteOffset: StatsLayout.counterCountOffset, as: UInt32.self)
        base.storeBytes(of: UInt32(g.socketCapacity), toByteOffset: StatsLayout.socketCapacityOffset, as: UInt32.self)
        base.storeBytes(
            of: UInt32(g.fallbackCapacity), toByteOffset: StatsLayout.fallbackCapacityOffset, as: UInt32.self)
        let start = Self.realtimeNanoseconds()
        base.storeBytes(of: start, toByteOffset: StatsLayout.startTimeOffset, as: UInt64.self)
        base.storeBytes(of: start, toByteOffset: StatsLayout.heartbeatOffset, as: UInt64.self)
        base.storeBytes(
            of: ProcessIdentity.startTicks(of: pid) ?? 0, toByteOffset: StatsLayout.bootTicksOffset, as: UInt64.self)
        base.storeBytes(
            of: UInt64(g.instanceBlockLength), toByteOffset: StatsLayout.instanceBlockLengthOffset, as: UInt64.self)
        base.storeBytes(of: UInt64(g.instanceBlocks), toByteOffset: StatsLayout.instanceBlocksOffset, as: UInt64.self)
        base.storeBytes(of: UInt64(g.fallbacks), toByteOffset: StatsLayout.fallbacksOffset, as: UInt64.self)
        base.storeBytes(of: UInt64(g.names), toByteOffset: StatsLayout.namesOffset, as: UInt64.self)
        base.storeText(description.command, at: StatsLayout.commandOffset, length: StatsLayout.commandLength)
        base.storeText(description.interface, at: StatsLayout.interfaceOffset, length: StatsLayout.interfaceLength)
        base.storeText(description.backend, at: StatsLayout.backendOffset, length: StatsLayout.backendLength)
        base.storeText(description.host, at: StatsLayout.hostOffset, length: StatsLayout.hostLength)
        base.storeText(description.address, at: StatsLayout.addressOffset, length: StatsLayout.addressLength)
        for (i, name) in counterNames.enumerated() {
            base.storeText(name, at: g.names + i * StatsLayout.nameLength, length: StatsLayout.nameLength)
        }
        state = .running
        // The magic last: a reader that sees it sees the rest.
        mtcp_shim_store_release_u64(base + StatsLayout.magicOffset, StatsLayout.magic)
    }

    deinit { munmap(base, geometry.totalLength) }

    public var instanceCount: Int { geometry.instanceCount }

    /// The block of instance `k`, for its stack to publish into.
    public func instance(_ k: Int) -> StatsInstanceSlot {
        precondition(k >= 0 && k < geometry.instanceCount, "no statistics block for instance \(k)")
        return StatsInstanceSlot(
            base: base + geometry.instanceBlocks + k * geometry.instanceBlockLength, geometry: geometry, index: k)
    }

    public var state: StatsProcessState {
        get {
            StatsProcessState(rawValue: base.load(fromByteOffset: StatsLayout.stateOffset, as: UInt32.self))
                ?? .starting
        }
        set { base.storeBytes(of: newValue.rawValue, toByteOffset: StatsLayout.stateOffset, as: UInt32.self) }
    }

    /// Deletes the file (a normal exit; the mapping stays valid until this object goes).
    public func remove() { unlink(path) }

    // MARK: Sockets that went to the kernel

    /// Records that descriptor `fd` (`family`, `type`) is the kernel's, and why: what
    /// `mtcp-stat --sockets` lists under the stack's own. Full table: not recorded.
    public func recordFallback(fd: Int32, family: Int32, type: Int32, reason: String) {
        withFallbackRows { rows in
            var free: UnsafeMutableRawPointer?
            for row in rows {
                let used = row.load(fromByteOffset: 12, as: UInt32.self) != 0
                if used && row.load(as: Int32.self) == fd { free = row; break }
                if !used && free == nil { free = row }
            }
            guard let row = free else { return }
            row.storeBytes(of: fd, toByteOffset: 0, as: Int32.self)
            row.storeBytes(of: family, toByteOffset: 4, as: Int32.self)
            row.storeBytes(of: type, toByteOffset: 8, as: Int32.self)
            row.storeBytes(of: 1, toByteOffset: 12, as: UInt32.self)
            row.storeText(reason, at: StatsLayout.fallbackReasonOffset, length: StatsLayout.fallbackReasonLength)
        }
    }

    /// Forgets descriptor `fd` (closed, or now a stack socket); false when it was not listed.
    @discardableResult
    public func removeFallback(fd: Int32) -> Bool {
        var found = false
        withFallbackRows { rows in
            for row in rows
            where row.load(fromByteOffset: 12, as: UInt32.self) != 0 && row.load(as: Int32.self) == fd {
                row.storeBytes(of: 0, toByteOffset: 12, as: UInt32.self)
                found = true
            }
        }
        return found
    }

    /// Runs `body` over the fallback rows inside their sequence lock, one writer at a time.
    func withFallbackRows(_ body: ([UnsafeMutableRawPointer]) -> Void) {
        fallbackLock.withLock { _ in
            let sequence = base + StatsLayout.fallbackSequenceOffset
            let s = sequence.load(as: UInt64.self)
            mtcp_shim_store_release_u64(sequence, s &+ 1)
            mtcp_shim_fence_release()
            let rows = (0..<geometry.fallbackCapacity).map {
                base + geometry.fallbacks + $0 * StatsLayout.fallbackRowLength
            }
            body(rows)
            mtcp_shim_store_release_u64(sequence, s &+ 2)
        }
    }

    /// CLOCK_REALTIME in nanoseconds.
    public static func realtimeNanoseconds() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }
}

/// One instance's block of a statistics region: the stack that owns the instance publishes
/// its counters and socket table here, without a system call.
public struct StatsInstanceSlot: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let geometry: StatsLayout.Geometry
    public let index: Int

    public var counterCount: Int { geometry.counterCount }
    public var socketCapacity: Int { geometry.socketCapacity }

    /// Writes the counter values (`fill` stores `counterCount` of them, in the names' order)
    /// inside the block's sequence lock, stamped with `published` (CLOCK_REALTIME ns).
    @inline(__always)
    public func publishCounters(published: UInt64, _ fill: (UnsafeMutablePointer<UInt64>) -> Void) {
        let sequence = base + StatsLayout.counterSequenceOffset
        let s = sequence.load(as: UInt64.self)
        mtcp_shim_store_release_u64(sequence, s &+ 1)
        mtcp_shim_fence_release()
        fill((base + StatsLayout.valuesOffset).assumingMemoryBound(to: UInt64.self))
        base.storeBytes(of: published, toByteOffset: StatsLayout.countersPublishedOffset, as: UInt64.self)
        mtcp_shim_store_release_u64(sequence, s &+ 2)
    }

    /// Writes the socket rows `fill` appends (beyond the capacity only counted) inside the
    /// table's sequence lock.
    public func publishSockets(published: UInt64, _ fill: (inout SocketRowWriter) -> Void) {
        let sequence = base + StatsLayout.socketSequenceOffset
        let s = sequence.load(as: UInt64.self)
        mtcp_shim_store_release_u64(sequence, s &+ 1)
        mtcp_shim_fence_release()
        var writer = SocketRowWriter(rows: base + geometry.socketRowsStart, capacity: geometry.socketCapacity)
        fill(&writer)
        base.storeBytes(
            of: UInt32(min(writer.total, geometry.socketCapacity)), toByteOffset: StatsLayout.socketRowsOffset,
            as: UInt32.self)
        base.storeBytes(
            of: UInt32(clamping: writer.total), toByteOffset: StatsLayout.socketTotalOffset, as: UInt32.self)
        base.storeBytes(of: published, toByteOffset: StatsLayout.socketsPublishedOffset, as: UInt64.self)
        mtcp_shim_store_release_u64(sequence, s &+ 2)
    }
}

/// Appends socket rows into an instance block.
public struct SocketRowWriter {
    let rows: UnsafeMutableRawPointer
    let capacity: Int
    /// Rows appended, those beyond the capacity included.
    public private(set) var total = 0

    public mutating func append(_ row: SocketRow) {
        if total < capacity { row.store(to: rows + total * SocketRow.length) }
        total += 1
    }
}

/// Tells a process from a later one with the same pid: the start time /proc gives each.
public enum ProcessIdentity {
    /// Field 22 of /proc/PID/stat (clock ticks after boot when the process started); nil when
    /// no such process runs.
    public static func startTicks(of pid: Int32) -> UInt64? {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        // The command (field 2) is in parentheses and may hold spaces: count after its last ')'.
        guard let paren = buffer[..<n].lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = buffer[(paren + 1)..<n].split(separator: UInt8(ascii: " "))
        // fields[0] is field 3 (state); field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        return UInt64(String(decoding: fields[19], as: UTF8.self))
    }
}
