import Glibc
import PacketIO
import Stack
import Synchronization
import Telemetry

/// What one process on the stack shows outside, for every host (the examples' launcher,
/// mTCP's C API, the preload library): its statistics region (`StatsRegion`, on unless
/// MTCP_STATS_SHM=0), capture files (MTCP_PCAP) and the periodic counter lines of
/// MTCP_STAT_PRINT / mTCP's stat_print. One thread, started only for capture or printing,
/// drains the instances' capture rings and prints; the stacks themselves only write memory.
public final class StackObservation: @unchecked Sendable {
    /// Regions of processes that died without removing theirs (SIGKILL, a crash) kept for
    /// mtcp-stat when a new one starts; older ones are removed.
    public static let deadRegionsKept = 8
    public let options: StackOptions
    let host: String
    let pid: Int32
    let instanceCount: Int
    /// Capture files are taken only when free (forking programs: several processes capture).
    let exclusiveCapture: Bool
    let log: @Sendable (String) -> Void
    /// Where MTCP_STAT_PRINT's lines go (shown whatever the log level).
    let statLine: @Sendable (String) -> Void

    struct Stream {
        var ring: CaptureRing
        var file: CaptureFile
    }

    struct State {
        var region: StatsRegion?
        var regionFailed = false
        var streams: [Stream] = []
        var thread: pthread_t?
        var stopping = false
    }

    let state = Mutex(State())
    /// Set when the thread should end (read by the thread each turn).
    let stopRequested = Atomic<Bool>(false)

    public init(
        options: StackOptions, host: String, instances: Int, exclusiveCapture: Bool = false,
        statLine: (@Sendable (String) -> Void)? = nil, log: @escaping @Sendable (String) -> Void
    ) {
        self.statLine = statLine ?? log
        self.options = options
        self.host = host
        pid = getpid()
        instanceCount = max(instances, 1)
        self.exclusiveCapture = exclusiveCapture
        self.log = log
    }

    /// The region, made with the first attached stack (nil: off or failed).
    public var region: StatsRegion? { state.withLock { $0.region } }

    /// Gives instance `k`'s stack its block of the region and, with MTCP_PCAP, a capture ring
    /// (the stack's owner calls this before the stack runs, or with its lock held).
    public func attach<IO: PacketIO>(_ stack: NetworkStack<IO>, instance k: Int) {
        let names = stack.counterNames
        let (slot, ring, needsThread) = state.withLock { state -> (StatsInstanceSlot?, CaptureRing?, Bool) in
            if options.statsRegion && state.region == nil && !state.regionFailed {
                do {
                    state.region = try StatsRegion(
                        directory: options.statsDirectory, pid: pid, description: processDescription,
                        counterNames: names,
                        instances: instanceCount)
                    // SIGKILLed processes leave theirs behind: the newest few stay to be read.
                    StatsReader.removeDeadRegions(
                        in: options.statsDirectory, keepingNewest: StackObservation.deadRegionsKept)
                } catch {
                    state.regionFailed = true
                    log("no statistics region (\(error)); mtcp-stat cannot see this process")
                }
            }
            let slot = state.region.flatMap { k < $0.instanceCount ? $0.instance(k) : nil }
            var ring: CaptureRing?
            if let requested = options.pcapPath {
                let header = Pcapng.fileHeader(
                    interfaceName: options.interface, description: "\(host) pid \(pid) instance \(k)",
                    snapLength: options.pcapSnapLength)
                do {
                    let file = try CaptureFile(
                        requested: requested, pid: pid, instance: k, header: header,
                        limit: options.pcapFileMegabytes << 20, files: options.pcapFiles, exclusive: exclusiveCapture)
                    let made = CaptureRing(capacity: 8 << 20, snapLength: options.pcapSnapLength)
                    state.streams.append(Stream(ring: made, file: file))
                    ring = made
                    log("capture of instance \(k) to \(file.path)")
                } catch {
                    log("no capture for instance \(k): \(error)")
                }
            }
            let wanted = (ring != nil || (options.statPrintSeconds > 0 && state.region != nil)) && state.thread == nil
            return (slot, ring, wanted)
        }
        if let slot { stack.publishStatistics(into: slot) }
        if let ring { stack.startCapture(ring) }
        if needsThread { startThread() }
    }

    var processDescription: StatsProcessDescription {
        StatsProcessDescription(
            command: Self.command(), interface: options.interface, backend: options.backend.rawValue, host: host,
            address: options.addressText)
    }

    /// The program's name (/proc/self/comm).
    static func command() -> String {
        let fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "?" }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 64)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return "?" }
        return String(decoding: bytes[..<n].prefix { $0 != 10 }, as: UTF8.self)
    }

    /// The thread starts with every signal blocked (it inherits the mask): the program's signals
    /// (an alarm meant to interrupt its own call) must not land on it.
    func startThread() {
        var all = sigset_t()
        var saved = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, &saved)
        let thread = spawnThread { [self] in run() }
        pthread_sigmask(SIG_SETMASK, &saved, nil)
        state.withLock { $0.thread = thread }
    }

    /// The thread: drains capture rings every 10 ms, prints counters every MTCP_STAT_PRINT seconds.
    func run() {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20)
        var printer = StatPrinter()
        var nextPrint = Self.seconds() + Double(options.statPrintSeconds)
        while true {
            let stopping = stopRequested.load(ordering: .acquiring)
            drainCaptures(into: &buffer)
            if options.statPrintSeconds > 0, Self.seconds() >= nextPrint, let region {
                nextPrint += Double(options.statPrintSeconds)
                if let reader = try? StatsReader(path: region.path) {
                    for line in printer.lines(reader.snapshot(sockets: false), now: Self.seconds()) {
                        statLine(line)
                    }
                }
            }
            if stopping { return }
            usleep(10_000)
        }
    }

    func drainCaptures(into buffer: inout [UInt8]) {
        let streams = state.withLock { $0.streams }
        var scratch = [UInt8](repeating: 0, count: 0)
        for stream in streams {
            buffer.removeAll(keepingCapacity: true)
            stream.ring.drain { frame in
                if frame.checksumPending {
                    // The device would have filled the TCP checksum in; the copy gets it here.
                    scratch.removeAll(keepingCapacity: true)
                    scratch.append(contentsOf: frame.bytes)
                    scratch.withUnsafeMutableBytes { _ = OffloadChecksum.complete(frame: $0) }
                    scratch.withUnsafeBytes {
                        Pcapng.appendPacket(
                            $0, originalLength: frame.originalLength, timestamp: frame.timestamp, inbound: false,
                            to: &buffer)
                    }
                } else {
                    Pcapng.appendPacket(
                        frame.bytes, originalLength: frame.originalLength, timestamp: frame.timestamp,
                        inbound: frame.direction == .inbound, to: &buffer)
                }
                // Large bursts go out in pieces, so a rotation falls between blocks.
                if buffer.count >= 1 << 20 {
                    stream.file.append(buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            stream.file.append(buffer)
        }
    }

    /// The end of the process: the last frames written, the thread stopped, and the region
    /// marked exited and removed (MTCP_STATS_KEEP=1 keeps it). `normal` false (a crash handler):
    /// the region stays for `mtcp-stat`.
    public func finish(normal: Bool = true) {
        let thread = state.withLock { state -> pthread_t? in
            guard !state.stopping else { return nil }
            state.stopping = true
            return state.thread
        }
        stopRequested.store(true, ordering: .releasing)
        if let thread { pthread_join(thread, nil) }
        for stream in state.withLock({ $0.streams }) { stream.file.close() }
        guard let region = state.withLock({ $0.region }) else { return }
        region.state = .exited
        if normal && !options.statsKeep { region.remove() }
    }

    /// The stack's monotonic clock in seconds (print intervals and rates).
    static func seconds() -> Double { Double(MonotonicClock.now().nanoseconds) / 1e9 }
}

/// mTCP's periodic statistics lines: per instance and in all, what changed since the last
/// lines (frames and bytes per second each way, new connections, retransmissions).
struct StatPrinter {
    var last: [[UInt64]] = []
    var lastTime = 0.0

    mutating func lines(_ snapshot: StatsSnapshot, now: Double) -> [String] {
        let names = snapshot.counterNames
        func index(_ name: String) -> Int? { names.firstIndex(of: name) }
        let keys = [
            "link_frames_in", "link_frames_out", "link_bytes_in", "link_bytes_out", "passive_opens", "active_opens",
            "retransmits", "connections", "dropped",
        ]
        let positions = keys.map(index)
        let current = snapshot.instances.map { instance in
            positions.map { $0.map { instance.counters[$0] } ?? 0 }
        }
        defer {
            last = current
            lastTime = now
        }
        guard last.count == current.count, now > lastTime else { return [] }
        let seconds = now - lastTime
        var totals = [Double](repeating: 0, count: keys.count)
        var out: [String] = []
        func line(_ label: String, _ v: [Double]) -> String {
            func rate(_ x: Double) -> String { String(Int((x / seconds).rounded())) }
            func mbits(_ x: Double) -> String { String(Int((x * 8 / seconds / 1e6).rounded())) }
            return "[\(label)] rx \(rate(v[0])) pps \(mbits(v[2])) Mbit/s tx \(rate(v[1])) pps \(mbits(v[3])) Mbit/s"
                + " accepts/s \(rate(v[4])) connects/s \(rate(v[5])) retransmits/s \(rate(v[6]))"
                + " connections \(Int(v[7])) dropped/s \(rate(v[8]))"
        }
        for (k, values) in current.enumerated() {
            let delta = values.indices.map { i in i == 7 ? Double(values[i]) : Double(values[i] &- last[k][i]) }
            for i in delta.indices { totals[i] += delta[i] }
            if current.count > 1 { out.append(line("instance \(k)", delta)) }
        }
        out.append(line("all", totals))
        return out
    }
}
