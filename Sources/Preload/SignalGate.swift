import Glibc

/// Keeps the program's signals pending while a blocking call is between its sleeps, so that
/// one arriving while the call runs a loop round (in user space) is delivered inside the next
/// sleep and ends the call with EINTR, as the kernel's blocking call would. The gate closes at
/// the call's first sleep (a call that never sleeps changes no mask: no system call) and opens
/// again when the call returns; the sleeps take the program's own mask (or ppoll's and
/// epoll_pwait's, when the program gave one).
struct SignalGate {
    let saved: UnsafeMutablePointer<sigset_t>
    private(set) var closed = false

    /// Runs `body` with a gate over memory of its own, opened again at the end.
    static func around<R>(_ body: (inout SignalGate) -> R) -> R {
        withUnsafeTemporaryAllocation(of: sigset_t.self, capacity: 1) { memory in
            var gate = SignalGate(saved: memory.baseAddress!)
            defer { gate.open() }
            return body(&gate)
        }
    }

    /// Blocks every signal (once) and gives the mask a sleep must take: the program's own,
    /// or `requested` (ppoll's, epoll_pwait's).
    mutating func closeForSleep(_ requested: UnsafePointer<sigset_t>?) -> UnsafePointer<sigset_t> {
        if !closed {
            var all = sigset_t()
            sigfillset(&all)
            pthread_sigmask(SIG_BLOCK, &all, saved)
            closed = true
        }
        return requested ?? UnsafePointer(saved)
    }

    /// The program's mask again: a signal held meanwhile is delivered now (its handler runs).
    mutating func open() {
        guard closed else { return }
        closed = false
        pthread_sigmask(SIG_SETMASK, saved, nil)
    }
}
