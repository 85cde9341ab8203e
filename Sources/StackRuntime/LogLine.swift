import Glibc

/// The stack's log lines for every host: `PROGRAM[PID] instance K: message` (the instance
/// when one is known), on stderr or appended to MTCP_LOG_FILE. The file is opened for each
/// line (lines are rare), so no descriptor of ours stays open in the program.
public enum LogLine {
    public static func format(program: String, pid: Int32, instance: Int?, _ message: String) -> String {
        let place = instance.map { " instance \($0)" } ?? ""
        return "\(program)[\(pid)]\(place): \(message)\n"
    }

    /// Writes one line with `write` (the preload library passes its own, which bypasses its hooks).
    public static func emit(
        program: String, instance: Int?, _ message: String, file: String?,
        write: (Int32, UnsafeRawPointer?, Int) -> Int = { Glibc.write($0, $1, $2) },
        close: (Int32) -> Int32 = { Glibc.close($0) }
    ) {
        var line = format(program: program, pid: getpid(), instance: instance, message)
        var fd: Int32 = 2
        if let file {
            let opened = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            if opened >= 0 { fd = opened }
        }
        line.withUTF8 { bytes in _ = write(fd, bytes.baseAddress, bytes.count) }
        if fd != 2 { _ = close(fd) }
    }
}
