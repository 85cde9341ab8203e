import Glibc
import TCP

/// How blocking calls wait: they drive loop rounds and, while not ready, sleep in poll(2) on
/// the link's wake-up descriptor until the next TCP/ARP timer or the call's own timeout.
extension NetworkStack {
    func deadline(after timeout: Interval?) -> Instant {
        guard let timeout else { return .never }
        return clock() + timeout
    }

    /// Runs loop rounds until `ready()` holds (true) or `deadline` passes (false).
    /// A signal interrupting the sleep gives EINTR.
    func block(until deadline: Instant, _ ready: () -> Bool) throws(Errno) -> Bool {
        while true {
            poll()
            if ready() { return true }
            let current = clock()
            if current >= deadline { return false }
            let wake = min(deadline, nextDeadline)
            if wake <= current { continue }
            if let waitHook {
                waitHook(wake)
                continue
            }
            try sleep(from: current, until: wake)
        }
    }

    func sleep(from current: Instant, until wake: Instant) throws(Errno) {
        var milliseconds: Int32 = -1
        if wake != .never {
            let delta = (wake - current).nanoseconds
            milliseconds = Int32(clamping: (delta + 999_999) / 1_000_000)
        }
        let descriptor = io.waitDescriptor
        let result: Int32
        if descriptor >= 0 {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            result = Glibc.poll(&entry, 1, milliseconds)
        } else {
            // Links without a descriptor (in-memory) can only be polled: nap briefly.
            let nap: Int32 = milliseconds < 0 ? 1 : min(milliseconds, 1)
            result = Glibc.poll(nil, 0, nap)
        }
        if result < 0 && errno == EINTR { throw .EINTR }
    }
}
