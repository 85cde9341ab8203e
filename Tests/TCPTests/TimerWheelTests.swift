import TCP
import Testing

@Suite struct TimerWheelTests {
    @Test func firesAtItsDeadlineAndNotBefore() {
        var wheel = TimerWheel(tick: .milliseconds(1), buckets: 16)
        wheel.schedule(3, at: .zero + .milliseconds(5))
        var fired: [Int32] = []
        wheel.expire(now: .zero + .microseconds(4999)) { fired.append($0) }
        #expect(fired.isEmpty)
        #expect(wheel.nextDeadline() == .zero + .milliseconds(5))
        wheel.expire(now: .zero + .milliseconds(5)) { fired.append($0) }
        #expect(fired == [3])
        #expect(wheel.count == 0)
        #expect(wheel.nextDeadline() == .never)
    }

    @Test func deadlinesBeyondOneRotationWaitForTheirRound() {
        var wheel = TimerWheel(tick: .milliseconds(1), buckets: 16)
        wheel.schedule(1, at: .zero + .milliseconds(40))
        wheel.schedule(2, at: .zero + .milliseconds(8))
        #expect(wheel.nextDeadline() == .zero + .milliseconds(8))
        var fired: [Int32] = []
        wheel.expire(now: .zero + .milliseconds(24)) { fired.append($0) }
        #expect(fired == [2])
        #expect(wheel.nextDeadline() == .zero + .milliseconds(40))
        wheel.expire(now: .zero + .milliseconds(39)) { fired.append($0) }
        #expect(fired == [2])
        wheel.expire(now: .zero + .seconds(10)) { fired.append($0) }
        #expect(fired == [2, 1])
    }

    @Test func rescheduleAndCancelReplaceTheTimer() {
        var wheel = TimerWheel()
        wheel.schedule(7, at: .zero + .milliseconds(10))
        wheel.schedule(7, at: .zero + .milliseconds(50))
        #expect(wheel.count == 1)
        #expect(wheel.deadline(of: 7) == .zero + .milliseconds(50))
        wheel.cancel(7)
        #expect(!wheel.isScheduled(7))
        var fired = 0
        wheel.expire(now: .zero + .seconds(1)) { _ in fired += 1 }
        #expect(fired == 0)
        // A fired timer can be armed again.
        wheel.schedule(9, at: .zero + .seconds(2))
        var due: [Int32] = []
        wheel.expire(now: .zero + .seconds(2)) { due.append($0) }
        for id in due { wheel.schedule(id, at: .zero + .seconds(3)) }
        #expect(wheel.deadline(of: 9) == .zero + .seconds(3))
    }

    /// Random schedules, cancels and expiries against a plain dictionary: every timer fires
    /// exactly once, at the first expiry at or after its deadline, and nextDeadline is exact.
    @Test(arguments: [UInt64(1), 2, 3])
    func matchesAReferenceModel(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var wheel = TimerWheel(tick: .milliseconds(1), buckets: 64)
        var model: [Int32: UInt64] = [:]
        var now: UInt64 = 0
        for _ in 0..<20_000 {
            let action = random.next() % 10
            let id = Int32(random.next() % 300)
            if action < 5 {
                // Mostly near deadlines, some past the rotation, some already due.
                let span: UInt64 = random.next() % 4 == 0 ? 500_000_000 : 80_000_000
                let deadline = now &+ random.next() % span
                wheel.schedule(id, at: Instant(nanoseconds: deadline))
                model[id] = deadline
            } else if action < 6 {
                wheel.cancel(id)
                model[id] = nil
            } else {
                now += random.next() % 20_000_000
                var fired: Set<Int32> = []
                wheel.expire(now: Instant(nanoseconds: now)) { fired.insert($0) }
                let expected = Set(model.filter { $0.value <= now }.keys)
                #expect(fired == expected)
                for id in expected { model[id] = nil }
            }
            let earliest = model.values.min().map { Instant(nanoseconds: $0) } ?? .never
            #expect(wheel.nextDeadline() == earliest)
            #expect(wheel.count == model.count)
        }
    }
}
