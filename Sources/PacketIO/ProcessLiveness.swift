import Glibc

/// Whether a process still runs, for the sweep of dead instances. `kill(pid, 0)` alone is not
/// enough: a process killed with SIGKILL stays a zombie until its parent reaps it, and an
/// orphan's reaper (a container's init, a supervisor) may take seconds or never do it, while
/// the peers of its flows wait for a reset.
public enum ProcessLiveness {
    /// A process that exists (EPERM: it runs under another user) and is not a zombie.
    public static func isRunning(pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 512) { buffer in
            let path = "/proc/\(pid)/stat"
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            // No /proc (or the process just went): kill's answer stands.
            guard fd >= 0 else { return true }
            defer { close(fd) }
            let count = read(fd, buffer.baseAddress, buffer.count)
            guard count > 0 else { return true }
            return !isDead(statLine: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<count]))
        }
    }

    /// Whether a /proc/PID/stat line ("PID (COMM) STATE ...") names a zombie or dead process.
    /// COMM may hold spaces and parentheses, so the state is the field after the last ')'.
    public static func isDead(statLine: UnsafeRawBufferPointer) -> Bool {
        guard let close = statLine.lastIndex(of: UInt8(ascii: ")")), close + 2 < statLine.count,
            statLine[close + 1] == UInt8(ascii: " ")
        else { return false }
        let state = statLine[close + 2]
        return state == UInt8(ascii: "Z") || state == UInt8(ascii: "X") || state == UInt8(ascii: "x")
    }
}
