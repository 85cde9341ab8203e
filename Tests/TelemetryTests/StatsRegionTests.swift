import Glibc
import Telemetry
import Testing

/// A fresh directory for one test's regions, removed after it.
final class TemporaryDirectory {
    let path: String
    init() {
        var template = Array("/tmp/mtcp-telemetry-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit {
        for (_, file) in StatsReader.regions(in: path) { unlink(file) }
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name != "." && name != ".." { unlink("\(path)/\(name)") }
            }
            closedir(dir)
        }
        rmdir(path)
    }
}

@Suite struct StatsRegionTests {
    let description = StatsProcessDescription(
        command: "nginx", interface: "veth0", backend: "afpacket", host: "preload", address: "10.0.0.2/24")

    @Test func writtenCountersAndSocketsReadBack() throws {
        let dir = TemporaryDirectory()
        let region = try StatsRegion(
            directory: dir.path, pid: getpid(), description: description, counterNames: ["frames_in", "frames_out"],
            instances: 2, socketCapacity: 3)
        region.instance(1).publishCounters(published: 42) { values in
            values[0] = 7
            values[1] = 9
        }
        var row = SocketRow()
        row.state = 1
        row.localPort = 80
        row.remotePort = 40000
        row.localAddress = 0x0200_000a
        row.sendQueue = 12
        row.smoothedRTT = 250
        row.bytesSent = 1 << 40
        region.instance(1).publishSockets(published: 43) { rows in
            for _ in 0..<5 { rows.append(row) }
        }
        let snapshot = try StatsReader(path: region.path).snapshot()
        #expect(snapshot.pid == getpid())
        #expect(snapshot.description == description)
        #expect(snapshot.alive)
        #expect(snapshot.state == .running)
        #expect(snapshot.counterNames == ["frames_in", "frames_out"])
        #expect(snapshot.instances.count == 2)
        #expect(snapshot.instances[0].counters == [0, 0])
        #expect(snapshot.instances[1].counters == [7, 9])
        #expect(snapshot.instances[1].countersPublished == 42)
        // Capacity 3: three rows kept, five counted.
        #expect(snapshot.instances[1].sockets == [row, row, row])
        #expect(snapshot.instances[1].socketTotal == 5)
        #expect(snapshot.total("frames_out") == 9)
        #expect(StatsReader.regions(in: dir.path).map(\.pid) == [getpid()])
    }

    @Test func resetShowsCountersFromZeroWithoutTouchingTheWriter() throws {
        let dir = TemporaryDirectory()
        let region = try StatsRegion(
            directory: dir.path, pid: getpid(), description: description, counterNames: ["tcp_in", "sockets"],
            instances: 1)
        region.instance(0).publishCounters(published: 1) {
            $0[0] = 100; $0[1] = 20
        }
        let reader = try StatsReader(path: region.path)
        try reader.reset(except: ["sockets"])
        // A level that falls below its value at the reset must not wrap around.
        region.instance(0).publishCounters(published: 2) {
            $0[0] = 130; $0[1] = 5
        }
        let snapshot = reader.snapshot()
        #expect(snapshot.instances[0].counters == [130, 5])
        #expect(snapshot.total("tcp_in") == 30)
        #expect(snapshot.total("sockets") == 5)
    }

    @Test func kernelSocketsAreListedAndForgotten() throws {
        let dir = TemporaryDirectory()
        let region = try StatsRegion(
            directory: dir.path, pid: getpid(), description: description, counterNames: [], instances: 1,
            fallbackCapacity: 2)
        region.recordFallback(fd: 5, family: 10, type: 1, reason: "AF_INET6: the stack serves IPv4 TCP")
        region.recordFallback(fd: 6, family: 2, type: 2, reason: "UDP")
        region.recordFallback(fd: 7, family: 2, type: 2, reason: "no room")
        let reader = try StatsReader(path: region.path)
        #expect(reader.snapshot().fallbacks.map(\.fd) == [5, 6])
        #expect(reader.snapshot().fallbacks[0].reason == "AF_INET6: the stack serves IPv4 TCP")
        #expect(region.removeFallback(fd: 5))
        #expect(!region.removeFallback(fd: 5))
        #expect(reader.snapshot().fallbacks.map(\.fd) == [6])
    }

    @Test func aRegionOfAProcessThatIsGoneReadsAsDead() throws {
        let dir = TemporaryDirectory()
        // A pid above Linux's largest pid_max (2^22): a process that no longer runs, whose
        // region stayed as under SIGKILL. (Not a forked child: in this multi-threaded test
        // process a child can block forever on a lock another thread held at fork.)
        let gone: Int32 = 4_194_304 + 7
        let region = try StatsRegion(
            directory: dir.path, pid: gone, description: description, counterNames: ["x"], instances: 1)
        region.instance(0).publishCounters(published: 5) { $0[0] = 77 }
        let reader = try StatsReader(path: StatsRegion.path(directory: dir.path, pid: gone))
        let snapshot = reader.snapshot()
        #expect(!snapshot.alive)
        #expect(snapshot.instances[0].counters == [77])
        let mine = try StatsRegion(
            directory: dir.path, pid: getpid(), description: description, counterNames: ["x"], instances: 1)
        #expect(try StatsReader(path: mine.path).snapshot().alive)
        mine.remove()
    }

    @Test func deadProcessesRegionsAreRemovedButTheNewest() throws {
        let dir = TemporaryDirectory()
        // Regions of pids above Linux's largest pid_max (2^22): processes that cannot run, as
        // regions SIGKILLed processes leave. No fork: a child of this multi-threaded test
        // process could block on a lock another thread held.
        let dead: [Int32] = (1...4).map { 4_194_304 + $0 }
        for (age, pid) in dead.enumerated() {
            _ = try StatsRegion(
                directory: dir.path, pid: pid, description: description, counterNames: ["x"], instances: 1)
            // Modification times a minute apart, the last one's the newest.
            let time = timespec(tv_sec: 1_000_000 + age * 60, tv_nsec: 0)
            var times = [time, time]
            #expect(utimensat(AT_FDCWD, StatsRegion.path(directory: dir.path, pid: pid), &times, 0) == 0)
        }
        let live = try StatsRegion(
            directory: dir.path, pid: getpid(), description: description, counterNames: ["x"], instances: 1)
        #expect(StatsReader.removeDeadRegions(in: dir.path, keepingNewest: 2) == 2)
        #expect(StatsReader.regions(in: dir.path).map(\.pid) == [getpid()] + dead.suffix(2))
        #expect(StatsReader.removeDeadRegions(in: dir.path) == 2, "mtcp-stat --clean: every dead one")
        #expect(StatsReader.regions(in: dir.path).map(\.pid) == [getpid()])
        live.remove()
    }

    @Test func filesThatAreNotRegionsAreRefused() throws {
        let dir = TemporaryDirectory()
        let path = "\(dir.path)/mtcp-stats.1"
        let fd = open(path, O_WRONLY | O_CREAT, 0o644)
        var junk = [UInt8](repeating: 0x41, count: 4096)
        _ = write(fd, &junk, junk.count)
        close(fd)
        #expect(throws: StatsRegionError.self) { try StatsReader(path: path) }
        let short = "\(dir.path)/mtcp-stats.2"
        close(open(short, O_WRONLY | O_CREAT, 0o644))
        #expect(throws: StatsRegionError.self) { try StatsReader(path: short) }
    }

    @Test func aReaderNeverSeesAHalfWrittenPublication() throws {
        let dir = TemporaryDirectory()
        let names = (0..<64).map { "c\($0)" }
        let region = try StatsRegion(
            directory: dir.path, pid: getpid(), description: description, counterNames: names, instances: 1)
        let slot = region.instance(0)
        let reader = try StatsReader(path: region.path)
        // Every publication writes one value into all counters; a torn copy would mix two.
        let writer = Thread {
            for n in 1...20000 { slot.publishCounters(published: UInt64(n)) { for i in 0..<64 { $0[i] = UInt64(n) } } }
        }
        writer.start()
        for _ in 0..<2000 {
            let values = reader.snapshot(sockets: false).instances[0].counters
            #expect(Set(values).count == 1)
        }
        writer.join()
    }
}

/// A POSIX thread for the tests (no Foundation).
final class Thread: @unchecked Sendable {
    let body: () -> Void
    var thread = pthread_t()
    init(_ body: @escaping () -> Void) { self.body = body }
    func start() {
        let context = Unmanaged.passRetained(self).toOpaque()
        pthread_create(
            &thread, nil,
            { raw in
                let me = Unmanaged<Thread>.fromOpaque(raw!).takeRetainedValue()
                me.body()
                return nil
            }, context)
    }
    func join() { pthread_join(thread, nil) }
}
