// mtcp-run: runs an unmodified program on the user-level stack. It checks the stack settings,
// exports them as MTCP_* variables, puts libmtcp-preload.so first in LD_PRELOAD and execs the
// program, which then finds the stack under its socket calls.
//
//   mtcp-run [--iface IF] [--addr A/N] [--gateway G] [--backend B] [--cores N] [--config FILE]
//            [--log LEVEL] [--stats PREFIX] [--no-kernel-listen] -- COMMAND ARGS...
import Glibc
import StackRuntime

let usage = """
    usage: mtcp-run [--iface IF] [--addr A/N] [--gateway G] [--backend afpacket|tap|dpdk] [--cores N]
                    [--dpdk-args "EAL ARGUMENTS"] [--config FILE] [--log error|warn|info|debug] [--stats PREFIX] [--no-kernel-listen]
                    [--impair|--impair-tx|--impair-rx SPEC] [--busy-poll USEC]
                    [--pcap FILE [--pcap-size MIB] [--pcap-files N] [--pcap-snaplen N]]
                    [--no-stats-shm] [--stats-dir DIR] [--log-file FILE] [--stat-print SECONDS]
                    -- COMMAND [ARGS...]

    Runs COMMAND with libmtcp-preload.so, so that its TCP sockets use the user-level stack.
    Settings come from the flags, then the MTCP_* variables, then the config file (--config or
    MTCP_CONFIG); interface and address are required. The library is looked for at
    $MTCP_PRELOAD_LIBRARY, else next to mtcp-run. See docs/PRELOAD-USAGE.md.
    While it runs, `mtcp-stat` shows its counters and sockets (--sockets).
    """

/// The library's file name, as SwiftPM names the dynamic product `mtcp-preload`.
let libraryName = "libmtcp-preload.so"

func fail(_ message: String, status: Int32, showUsage: Bool = false) -> Never {
    var text = "mtcp-run: \(message)\n"
    if showUsage { text += "\(usage)\n" }
    // write(2) rather than stdio's stderr, which Swift 6 treats as shared mutable state.
    _ = text.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    exit(status)
}

/// The canonical absolute path of `path`, nil if it does not exist.
func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// $MTCP_PRELOAD_LIBRARY, else libmtcp-preload.so in the directory of this executable's real
/// path (SwiftPM builds both into .build/<configuration>/).
func findLibrary() -> String {
    let candidate: String
    if let explicit = getenv("MTCP_PRELOAD_LIBRARY"), explicit.pointee != 0 {
        candidate = String(cString: explicit)
    } else {
        guard let executable = realPath("/proc/self/exe"), let slash = executable.lastIndex(of: "/") else {
            fail("cannot find my own executable through /proc/self/exe", status: 1)
        }
        candidate = String(executable[..<slash]) + "/" + libraryName
    }
    guard let path = realPath(candidate), access(path, R_OK) == 0 else {
        fail(
            "preload library not found: \(candidate)\n"
                + "build it with `swift build -c release` (it is put next to mtcp-run), or set MTCP_PRELOAD_LIBRARY",
            status: 1)
    }
    // ld.so splits LD_PRELOAD at spaces and colons: such a path could not be preloaded.
    guard !path.contains(" "), !path.contains(":") else {
        fail("the preload library's path must not contain spaces or colons: \(path)", status: 1)
    }
    return path
}

/// LD_PRELOAD with `library` first and the entries that were there after it (once each).
func preloadList(_ library: String, existing: String?) -> String {
    let others = (existing ?? "").split(whereSeparator: { $0 == " " || $0 == ":" }).map(String.init)
    return ([library] + others.filter { $0 != library && realPath($0) != library }).joined(separator: ":")
}

func currentDirectory() -> String {
    guard let cwd = getcwd(nil, 0) else { fail("cannot read the current directory", status: 1) }
    defer { free(cwd) }
    return String(cString: cwd)
}

// --- Arguments: stack flags, "--", the command. ------------------------------------------
let arguments = Array(CommandLine.arguments.dropFirst())
let separator = arguments.firstIndex(of: "--")
let flags = Array(arguments[..<(separator ?? arguments.endIndex)])
if flags.contains("--help") || flags.contains("-h") {
    print(usage)
    exit(0)
}
guard let separator else {
    fail(arguments.isEmpty ? "no command given" : "put -- before the command", status: 2, showUsage: true)
}
let command = Array(arguments[(separator + 1)...])
guard !command.isEmpty else { fail("no command after --", status: 2, showUsage: true) }
// --cc has no MTCP_* variable, so the program could not be told.
guard !flags.contains("--cc") else { fail("--cc is not available through mtcp-run", status: 2, showUsage: true) }

var rest = flags
var options: StackOptions
do {
    options = try StackOptions.parse(&rest)
} catch {
    fail("\(error)", status: 2, showUsage: true)
}
if let unknown = rest.first { fail("unknown argument \(unknown)", status: 2, showUsage: true) }
options.enabled = true
// The program may change directory before it exits and writes its counters.
if let stats = options.statsPath, !stats.hasPrefix("/") { options.statsPath = currentDirectory() + "/" + stats }
if let file = options.logFile, !file.hasPrefix("/") { options.logFile = currentDirectory() + "/" + file }
if let file = options.pcapPath, !file.hasPrefix("/") { options.pcapPath = currentDirectory() + "/" + file }
// The capture file belongs to this run: the first process to capture takes the name again
// (the others of a forking program write FILE.PID.INSTANCE beside it).
if let file = options.pcapPath { unlink(file) }

let library = findLibrary()

// --- Environment: exactly the resolved settings, so the program sees what was checked here. --
for key in StackOptions.environmentKeys { unsetenv(key) }
for (name, value) in options.environmentVariables { setenv(name, value, 1) }
let existing = getenv("LD_PRELOAD").map { String(cString: $0) }
setenv("LD_PRELOAD", preloadList(library, existing: existing), 1)

// --- Exec: the program replaces mtcp-run (same pid, so signals reach it directly). ---------
var cArguments: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) }
cArguments.append(nil)
execvp(command[0], &cArguments)
let reason = errno
if reason == ENOENT { fail("\(command[0]): command not found", status: 127) }
fail("cannot run \(command[0]): \(String(cString: strerror(reason)))", status: 126)
