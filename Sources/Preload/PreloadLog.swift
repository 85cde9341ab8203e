import CPreload
import Glibc
import PreloadState
import StackRuntime

/// One-line diagnostics on stderr or MTCP_LOG_FILE (`LogLine`: pid and the calling thread's
/// instance), written with the real write(2) (never through the hooks).
/// MTCP_LOG: error, warn (default), info, debug, or 0-3.
struct PreloadLog: Sendable {
    let level: Int
    /// MTCP_LOG_FILE (nil: stderr).
    var file: String? = nil

    static func levelFromEnvironment() -> Int {
        guard let raw = getenv("MTCP_LOG") else { return 1 }
        switch String(cString: raw) {
        case "error", "0": return 0
        case "warn", "warning", "1": return 1
        case "info", "2": return 2
        case "debug", "3": return 3
        default: return 1
        }
    }

    func error(_ message: @autoclosure () -> String) { emit(0, message) }
    func warn(_ message: @autoclosure () -> String) { emit(1, message) }
    func info(_ message: @autoclosure () -> String) { emit(2, message) }
    func debug(_ message: @autoclosure () -> String) { emit(3, message) }
    /// Lines asked for by a setting of their own (MTCP_STAT_PRINT), at any level.
    func always(_ message: @autoclosure () -> String) { emit(0, message) }

    private func emit(_ severity: Int, _ message: () -> String) {
        guard severity <= level else { return }
        let instance = mtcp_thread_instance()
        LogLine.emit(
            program: "mtcp-preload", instance: instance >= 0 ? Int(instance) : nil, message(), file: file,
            write: { mtcp_real_write($0, $1, $2) }, close: { mtcp_real_close($0) })
    }
}
