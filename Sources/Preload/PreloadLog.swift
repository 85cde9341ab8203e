import CPreload
import Glibc
import PreloadState

/// One-line diagnostics on stderr, written with the real write(2) (never through the hooks).
/// MTCP_LOG: error, warn (default), info, debug, or 0-3.
struct PreloadLog {
    let level: Int

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

    private func emit(_ severity: Int, _ message: () -> String) {
        guard severity <= level else { return }
        var line = "mtcp-preload[\(getpid())]: \(message())\n"
        line.withUTF8 { bytes in _ = mtcp_real_write(2, bytes.baseAddress, bytes.count) }
    }
}
