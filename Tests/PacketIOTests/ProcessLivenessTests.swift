import Glibc
import PacketIO
import Testing

/// The sweep of dead instances must see a SIGKILLed process as dead before anyone reaps it.
@Suite struct ProcessLivenessTests {
    @Test func statLineStates() {
        func dead(_ line: String) -> Bool {
            Array(line.utf8).withUnsafeBytes { ProcessLiveness.isDead(statLine: $0) }
        }
        #expect(!dead("42 (nginx) S 1 42 42 0 -1"))
        #expect(!dead("42 (nginx) R 1 42 42 0 -1"))
        #expect(dead("42 (nginx) Z 1 42 42 0 -1"))
        #expect(dead("42 (nginx) X 1 42 42 0 -1"))
        // A command name with spaces and parentheses: the state follows the last ')'.
        #expect(dead("42 (a) S (b)) Z 1 42"))
        #expect(!dead("42 (a) Z (b)) S 1 42"))
        #expect(!dead("42 (truncated"))
        #expect(!dead(""))
    }

    @Test func aZombieIsNotRunning() throws {
        #expect(ProcessLiveness.isRunning(pid: getpid()))
        var pid: pid_t = 0
        let arguments: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
        defer { free(arguments[0]) }
        try #require(posix_spawn(&pid, "/bin/true", nil, nil, arguments, environ) == 0)
        // Not reaped yet: kill(pid, 0) still succeeds, but the process is gone.
        var state = siginfo_t()
        try #require(waitid(P_PID, id_t(pid), &state, WEXITED | WNOWAIT) == 0)
        #expect(kill(pid, 0) == 0)
        #expect(!ProcessLiveness.isRunning(pid: pid))
        var status: Int32 = 0
        #expect(waitpid(pid, &status, 0) == pid)
        #expect(!ProcessLiveness.isRunning(pid: pid))
    }
}
