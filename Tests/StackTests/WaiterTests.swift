import Stack
import TCP
import Testing

/// The one waiter's rules: how long a sleep lasts, and the order of a wait's turns.
@Suite struct WaiterTests {
    @Test func sleepsAreRoundedUpToWholeMilliseconds() {
        let now = Instant(nanoseconds: 5_000_000_000)
        #expect(WaitTimeout.milliseconds(from: now, until: .never) == -1)
        #expect(WaitTimeout.milliseconds(from: now, until: now + Interval(nanoseconds: 1)) == 1)
        #expect(WaitTimeout.milliseconds(from: now, until: now + .milliseconds(3)) == 3)
        #expect(WaitTimeout.milliseconds(from: now, until: now + Interval(nanoseconds: 3_000_001)) == 4)
        #expect(WaitTimeout.milliseconds(nanoseconds: -5) == -1)
        #expect(WaitTimeout.milliseconds(nanoseconds: 0) == 0)
    }

    @Test func aLinkWithoutDescriptorIsLookedAtAgainSoon() {
        let now = Instant(nanoseconds: 1_000_000)
        #expect(WaitTimeout.milliseconds(from: now, until: .never, linkIsPolled: true) == 1)
        #expect(WaitTimeout.milliseconds(from: now, until: now + .milliseconds(40), linkIsPolled: true) == 1)
        #expect(WaitTimeout.nanoseconds(remaining: -1, timer: .max, now: 0, linkIsPolled: true) == 200_000)
        #expect(WaitTimeout.nanoseconds(remaining: 50_000, timer: .max, now: 0, linkIsPolled: true) == 50_000)
    }

    @Test func theCallersTimeoutIsCutAtTheNextTimer() {
        #expect(WaitTimeout.nanoseconds(remaining: -1, timer: .max, now: 10, linkIsPolled: false) == -1)
        #expect(WaitTimeout.nanoseconds(remaining: 900, timer: .max, now: 10, linkIsPolled: false) == 900)
        #expect(WaitTimeout.nanoseconds(remaining: -1, timer: 110, now: 10, linkIsPolled: false) == 100)
        #expect(WaitTimeout.nanoseconds(remaining: 50, timer: 110, now: 10, linkIsPolled: false) == 50)
        // A timer already due: no sleep at all.
        #expect(WaitTimeout.nanoseconds(remaining: -1, timer: 5, now: 10, linkIsPolled: false) == 0)
    }

    @Test func eachSleepIsFollowedByARoundUntilReady() throws {
        let hosts = TwoHosts()
        let stack = hosts.a
        var sleeps: [Instant] = []
        var rounds = 0
        // An idle stack has no timer: without a deadline each sleep is unbounded.
        let ready = try stack.block(
            until: .never, ready: { rounds >= 3 }, round: { rounds += 1 },
            sleep: { now, wake in
                sleeps.append(wake)
                hosts.clock.now = now + .milliseconds(1)
            })
        #expect(ready)
        #expect(rounds == 3)
        #expect(sleeps == [.never, .never, .never])
    }

    @Test func aSleepEndsAtTheDeadline() throws {
        let hosts = TwoHosts()
        let stack = hosts.a
        let deadline = stack.clock() + .milliseconds(30)
        var wakes: [Instant] = []
        let ready = try stack.block(
            until: deadline, ready: { false }, round: {},
            sleep: { _, wake in
                wakes.append(wake)
                hosts.clock.now = wake
            })
        #expect(!ready)
        #expect(wakes == [deadline])
    }

    @Test func aWaitEndsAtItsDeadlineWithoutReady() throws {
        let pair = TwoHosts()
        let stack = pair.a
        let deadline = stack.clock() + .milliseconds(5)
        var sleeps = 0
        let ready = try stack.block(
            until: deadline, ready: { false }, round: {},
            sleep: { _, wake in
                sleeps += 1
                pair.clock.now = wake
            })
        #expect(!ready)
        #expect(sleeps >= 1)
        #expect(stack.clock() >= deadline)
    }

    @Test func anInterruptedSleepEndsTheWait() {
        let pair = TwoHosts()
        let stack = pair.a
        #expect(throws: Errno.EINTR) {
            _ = try stack.block(
                until: .never, ready: { false }, round: {}, sleep: { (_, _) throws(Errno) in throw .EINTR })
        }
    }
}
