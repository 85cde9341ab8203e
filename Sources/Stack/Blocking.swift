import Glibc
import TCP

/// The one waiter: how every host's blocking call waits for the stack (the stack's own
/// blocking calls, and the mTCP C API's, which drops its context lock while it sleeps).
///
/// A turn checks readiness; while not ready and before the deadline, the caller sleeps until
/// the deadline or the stack's next TCP/ARP timer, whichever is first, and a loop round
/// follows. The preload's poll and epoll_wait fold kernel descriptors into the same sleep and
/// take its length from `WaitTimeout`.
extension NetworkStack {
    func deadline(after timeout: Interval?) -> Instant {
        guard let timeout else { return .never }
        return clock() + timeout
    }

    /// Waits until `ready()` holds (true) or `deadline` passes (false), sleeping on the link
    /// (or in `waitHook`, for tests that run the peer instead). EINTR on a signal.
    func block(until deadline: Instant, _ ready: () -> Bool) throws(Errno) -> Bool {
        try block(until: deadline, ready: ready, round: { poll() }) { (now, wake) throws(Errno) in
            if let waitHook {
                waitHook(wake)
            } else {
                try sleepOnLink(from: now, until: wake)
            }
        }
    }

    /// The waiter's turns: `ready()`, then (not ready, deadline not passed) `sleep(now, wake)`
    /// when the next timer is not due yet, then `round()`. True when ready, false at the
    /// deadline; errors from `sleep` (EINTR) end the wait.
    public func block(
        until deadline: Instant, ready: () -> Bool, round: () -> Void,
        sleep: (_ now: Instant, _ wake: Instant) throws(Errno) -> Void
    ) throws(Errno) -> Bool {
        while true {
            if ready() { return true }
            let now = clock()
            if now >= deadline { return false }
            let wake = min(deadline, nextDeadline)
            if wake > now { try sleep(now, wake) }
            round()
        }
    }

    /// Sleeps in poll(2) on the link's wake-up descriptor until `wake`.
    func sleepOnLink(from now: Instant, until wake: Instant) throws(Errno) {
        let descriptor = io.waitDescriptor
        let result: Int32
        if descriptor >= 0 {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            result = Glibc.poll(&entry, 1, WaitTimeout.milliseconds(from: now, until: wake))
        } else {
            result = Glibc.poll(nil, 0, WaitTimeout.milliseconds(from: now, until: wake, linkIsPolled: true))
        }
        if result < 0 && errno == EINTR { throw .EINTR }
    }
}

/// How long a waiter sleeps, for every host: until its wake instant, rounded up to whole
/// milliseconds for poll(2) (a sleep that ends early only costs a round); a link without a
/// descriptor to wake the sleeper (in-memory, DPDK) is looked at again soon.
public enum WaitTimeout {
    /// How soon a sleeper looks at a link without a descriptor again.
    public static let polledLinkNanoseconds: Int64 = 200_000

    /// poll(2)'s timeout from `now` until `wake` (-1: never).
    public static func milliseconds(from now: Instant, until wake: Instant, linkIsPolled: Bool = false) -> Int32 {
        let remaining: Int64 = wake == .never ? -1 : Int64(clamping: (wake - now).nanoseconds)
        return milliseconds(
            nanoseconds: nanoseconds(remaining: remaining, timer: .max, now: 0, linkIsPolled: linkIsPolled))
    }

    /// Nanoseconds (negative: no limit) as poll(2)'s milliseconds, rounded up.
    public static func milliseconds(nanoseconds: Int64) -> Int32 {
        nanoseconds < 0 ? -1 : Int32(clamping: (nanoseconds + 999_999) / 1_000_000)
    }

    /// Nanoseconds to sleep when `remaining` nanoseconds are left of the caller's own timeout
    /// (negative: none) and the earliest timer of the stacks involved is at `timer` (UInt64.max:
    /// none), all CLOCK_MONOTONIC. Negative: sleep until woken.
    public static func nanoseconds(remaining: Int64, timer: UInt64, now: UInt64, linkIsPolled: Bool) -> Int64 {
        if linkIsPolled { return remaining < 0 ? polledLinkNanoseconds : min(remaining, polledLinkNanoseconds) }
        if timer == UInt64.max { return remaining }
        let untilTimer = timer > now ? Int64(clamping: timer - now) : 0
        return remaining < 0 ? untilTimer : min(untilTimer, remaining)
    }
}
