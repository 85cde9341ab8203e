/// A point on the injected monotonic clock, in nanoseconds since an arbitrary origin.
/// The TCP core never reads a clock itself: every entry point takes `now`.
public struct Instant: Comparable, Hashable, Sendable {
    public var nanoseconds: UInt64
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static let zero = Instant(nanoseconds: 0)
    /// Later than any real deadline; used for "no timer armed".
    public static let never = Instant(nanoseconds: .max)

    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public static func + (lhs: Instant, rhs: Interval) -> Instant {
        let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(rhs.nanoseconds)
        return Instant(nanoseconds: overflow ? .max : sum)
    }

    /// Elapsed time from `rhs` to `lhs`, zero if `rhs` is later.
    public static func - (lhs: Instant, rhs: Instant) -> Interval {
        Interval(nanoseconds: lhs.nanoseconds > rhs.nanoseconds ? lhs.nanoseconds - rhs.nanoseconds : 0)
    }

    /// Milliseconds since the origin, truncated to 32 bits: the RFC 7323 timestamp clock.
    public var milliseconds32: UInt32 { UInt32(truncatingIfNeeded: nanoseconds / 1_000_000) }
}

/// A non-negative span of time in nanoseconds.
public struct Interval: Comparable, Hashable, Sendable {
    public var nanoseconds: UInt64
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static let zero = Interval(nanoseconds: 0)
    public static func microseconds(_ n: UInt64) -> Interval { Interval(nanoseconds: n * 1_000) }
    public static func milliseconds(_ n: UInt64) -> Interval { Interval(nanoseconds: n * 1_000_000) }
    public static func seconds(_ n: UInt64) -> Interval { Interval(nanoseconds: n * 1_000_000_000) }

    public static func < (lhs: Interval, rhs: Interval) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
    public static func + (lhs: Interval, rhs: Interval) -> Interval {
        let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(rhs.nanoseconds)
        return Interval(nanoseconds: overflow ? .max : sum)
    }
    public static func - (lhs: Interval, rhs: Interval) -> Interval {
        Interval(nanoseconds: lhs.nanoseconds > rhs.nanoseconds ? lhs.nanoseconds - rhs.nanoseconds : 0)
    }
    public static func * (lhs: Interval, rhs: UInt64) -> Interval {
        let (product, overflow) = lhs.nanoseconds.multipliedReportingOverflow(by: rhs)
        return Interval(nanoseconds: overflow ? .max : product)
    }
    public static func / (lhs: Interval, rhs: UInt64) -> Interval { Interval(nanoseconds: lhs.nanoseconds / rhs) }

    public var milliseconds: UInt64 { nanoseconds / 1_000_000 }
    public var microseconds: UInt64 { nanoseconds / 1_000 }
}

extension Interval: CustomStringConvertible {
    public var description: String {
        if nanoseconds >= 1_000_000_000 { return "\(Double(nanoseconds) / 1e9)s" }
        if nanoseconds >= 1_000_000 { return "\(Double(nanoseconds) / 1e6)ms" }
        return "\(Double(nanoseconds) / 1e3)us"
    }
}
