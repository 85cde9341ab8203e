// mtcp-stat: what runs on the user-level stack on this machine, read from the statistics
// regions the processes publish in shared memory (see Telemetry's StatsLayout), without
// stopping them. A process killed or hung still shows its last counters.
import ArgumentParser
import Glibc
import Telemetry
import Wire

@main
struct MTCPStat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mtcp-stat",
        abstract: "Processes on the user-level stack: their counters and sockets.",
        discussion: """
            With no options, every process that runs (or ran) on the stack on this machine and its \
            counters summed over its instances. Processes that died without exiting keep their last \
            figures (state "dead") until --clean removes them.
            """)

    @Option(name: [.short, .customLong("pid")], help: "Only this process.")
    var pid: Int32?

    @Option(name: [.short, .customLong("interval")], help: "Repeat every SECONDS, showing rates per second.")
    var interval: Double?

    @Option(name: [.short, .customLong("count")], help: "With --interval: stop after COUNT reports.")
    var count: Int?

    @Flag(
        name: [.customShort("t"), .customLong("sockets")],
        help: "A socket table like `ss -tni`, and the sockets that use the kernel.")
    var sockets = false

    @Flag(name: .customLong("json"), help: "JSON for scripts.")
    var json = false

    @Flag(name: .customLong("reset"), help: "Show counters from zero from now on (the processes' own counters go on).")
    var reset = false

    @Flag(name: .customLong("clean"), help: "Remove the regions of processes that no longer run.")
    var clean = false

    @Flag(name: [.short, .customLong("all")], help: "Also counters that are zero.")
    var all = false

    @Option(name: .customLong("dir"), help: "Where the regions are (MTCP_STATS_DIR, else /dev/shm).")
    var directory: String?

    func validate() throws {
        if let interval, interval <= 0 { throw ValidationError("--interval must be above 0") }
        if let count, count <= 0 { throw ValidationError("--count must be above 0") }
        if count != nil && interval == nil { throw ValidationError("--count needs --interval") }
    }

    var regionDirectory: String {
        directory ?? getenv("MTCP_STATS_DIR").map { String(cString: $0) } ?? StatsRegion.defaultDirectory
    }

    func run() throws {
        if clean {
            let removed = StatsReader.removeDeadRegions(in: regionDirectory)
            print("removed \(removed) region\(removed == 1 ? "" : "s") of processes that no longer run")
            return
        }
        let readers = try openReaders()
        if reset {
            for reader in readers { try reader.reset(except: levelCounters) }
            print("counters of \(readers.count) process\(readers.count == 1 ? "" : "es") shown from zero from now on")
            return
        }
        guard let interval else {
            report(readers.map { $0.snapshot(sockets: sockets) }, previous: nil, seconds: 0)
            return
        }
        var previous = readers.map { $0.snapshot(sockets: false) }
        var reports = 0
        while count.map({ reports < $0 }) ?? true {
            usleep(useconds_t(interval * 1_000_000))
            let current = readers.map { $0.snapshot(sockets: sockets) }
            report(current, previous: previous, seconds: interval)
            previous = current
            reports += 1
        }
    }

    func openReaders() throws -> [StatsReader] {
        var found = StatsReader.regions(in: regionDirectory)
        if let pid { found = found.filter { $0.pid == pid } }
        if let pid, found.isEmpty {
            throw ValidationError(
                "process \(pid) has no statistics region in \(regionDirectory) (not on the stack, or MTCP_STATS_SHM=0)")
        }
        var readers: [StatsReader] = []
        for (_, path) in found {
            do { readers.append(try StatsReader(path: path)) } catch {
                if pid != nil { throw ValidationError("\(error)") }
                printError("mtcp-stat: skipping \(path): \(error)")
            }
        }
        return readers
    }

    func report(_ snapshots: [StatsSnapshot], previous: [StatsSnapshot]?, seconds: Double) {
        if json {
            print(JSONReport.render(snapshots, previous: previous, seconds: seconds, sockets: sockets))
            return
        }
        if snapshots.isEmpty {
            print("no process on the stack (no region in \(regionDirectory))")
            return
        }
        for (i, snapshot) in snapshots.enumerated() {
            let before = previous.flatMap { $0.indices.contains(i) ? $0[i] : nil }
            TextReport.process(snapshot, previous: before, seconds: seconds, all: all)
            if sockets { TextReport.sockets(snapshot) }
        }
    }
}

func printError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// How a process's state reads in a report.
func stateName(_ snapshot: StatsSnapshot) -> String {
    if snapshot.state == .exited { return "exited" }
    return snapshot.alive ? "running" : "dead"
}

/// Counters that are levels, not running totals: shown as they are, never as rates.
let levelCounters: Set<String> = ["sockets", "connections", "pool_chunks_in_use", "pool_chunks_free", "pool_bytes"]

/// A row's local or peer address as ss shows it: "10.0.0.2:80", "[fd00::2]:80", "*" for port 0.
func address(_ row: SocketRow, local: Bool) -> String {
    let port = local ? row.localPort : row.remotePort
    guard row.flags & SocketRow.ipv6 != 0 else { return address(local ? row.localAddress : row.remoteAddress, port) }
    let halves = local ? row.localAddress6 : row.remoteAddress6
    let ip = IPAddress(high: halves.high, low: halves.low)
    return "[\(ip)]:\(port == 0 && ip == .unspecified ? "*" : String(port))"
}

func address(_ raw: UInt32, _ port: UInt16) -> String {
    let bytes = withUnsafeBytes(of: raw) { Array($0) }
    return "\(bytes[0]).\(bytes[1]).\(bytes[2]).\(bytes[3]):\(port == 0 && raw == 0 ? "*" : String(port))"
}
