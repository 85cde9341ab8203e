import Glibc
import TCP

/// CLOCK_MONOTONIC as an `Instant`, the stack's default clock.
public enum MonotonicClock {
    /// The current monotonic time.
    public static func now() -> Instant {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Instant(nanoseconds: UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec))
    }
}
