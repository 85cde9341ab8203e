import TCP
import Testing

@Suite struct CubicTests {
    let mss = 1000

    /// Segments in cwnd, as a Double.
    func segments(_ cc: Cubic) -> Double { Double(cc.congestionWindow) / Double(mss) }

    /// A CUBIC sender that lost a packet at `windowMax` segments and has just left recovery at time zero.
    func afterLoss(at windowMax: Int) -> Cubic {
        var cc = Cubic(mss: mss, initialWindow: 10 * mss)
        cc.congestionWindow = windowMax * mss
        cc.onCongestionEvent(flightSize: windowMax * mss, now: .zero)
        cc.onRecoveryExit(now: .zero)
        return cc
    }

    /// Runs cwnd-limited rounds of one RTT each; returns cwnd in segments after each round.
    func run(_ cc: inout Cubic, rounds: Int, rtt: Interval, from start: Instant = .zero) -> [Double] {
        var now = start
        var trace: [Double] = []
        for _ in 0..<rounds {
            now = now + rtt
            acknowledgeRound(&cc, mss: mss, now: now, smoothedRTT: rtt)
            trace.append(segments(cc))
        }
        return trace
    }

    @Test func cubeRootIsAccurate() {
        #expect(Cubic.cubeRoot(27) == 3)
        #expect(Cubic.cubeRoot(0) == 0)
        #expect(Cubic.cubeRoot(-8) == -2)
        #expect(abs(Cubic.cubeRoot(75) - 4.217_163_326_508_746) < 1e-12)
        #expect(abs(Cubic.cubeRoot(1e12) - 1e4) < 1e-8)
        #expect(abs(Cubic.cubeRoot(1e-9) - 1e-3) < 1e-15)
        for x in [0.001, 0.5, 1, 2, 7.5, 123.456, 98765.4321] {
            let y = Cubic.cubeRoot(x)
            #expect(abs(y * y * y - x) <= x * 1e-14)
        }
    }

    @Test func slowStartDoublesEachRoundTrip() {
        var cc = Cubic(mss: mss, initialWindow: 10 * mss)
        #expect(Cubic.name == "cubic")
        #expect(cc.slowStartThreshold == Int.max / 2)
        for round in 1...4 {
            acknowledgeRound(&cc, mss: mss, now: .zero)
            #expect(cc.congestionWindow == 10 * mss << round)
        }
    }

    @Test func lossReducesToSeventyPercent() {
        var cc = Cubic(mss: mss, initialWindow: 10 * mss)
        cc.congestionWindow = 100 * mss
        cc.onCongestionEvent(flightSize: 100 * mss, now: .zero)
        #expect(cc.slowStartThreshold == 70 * mss)
        #expect(cc.congestionWindow == 70 * mss)
        #expect(cc.maximumWindow == 100 * mss)
        // Never below two segments.
        cc.onCongestionEvent(flightSize: 2 * mss, now: .zero)
        #expect(cc.slowStartThreshold == 2 * mss)
        #expect(cc.congestionWindow == 2 * mss)
    }

    @Test func fastConvergenceLowersTheRememberedMaximum() {
        var cc = afterLoss(at: 100)
        #expect(cc.maximumWindow == 100 * mss)
        // The next loss comes before reaching W_max again: W_max = 80 * (1 + 0.7) / 2 = 68.
        cc.congestionWindow = 80 * mss
        cc.onCongestionEvent(flightSize: 80 * mss, now: Instant.zero + .seconds(1))
        #expect(cc.maximumWindow == 68 * mss)
        #expect(cc.congestionWindow == 56 * mss)
        // A loss above the old maximum keeps the window as the new maximum.
        cc.congestionWindow = 90 * mss
        cc.onCongestionEvent(flightSize: 90 * mss, now: Instant.zero + .seconds(2))
        #expect(cc.maximumWindow == 90 * mss)
    }

    @Test func growthIsConcaveThenConvexAroundTheOldMaximum() {
        // W_max = 100 segments, cwnd = 70: K = cbrt(100 * 0.3 / 0.4) = cbrt(75) = 4.217 s.
        var cc = afterLoss(at: 100)
        #expect(cc.timeToOrigin.map { abs(Double($0.nanoseconds) / 1e9 - 4.217_163) < 1e-4 } == true)
        let rtt = Interval.milliseconds(100)
        let trace = run(&cc, rounds: 80, rtt: rtt)  // 8 seconds.
        // Rounds end at t = 0.1 s * (i + 1); growth aims at W_cubic(t + RTT).
        func growth(_ from: Int, _ to: Int) -> Double { trace[to] - trace[from] }
        // Concave: fast at first, slowing down while approaching W_max.
        #expect(growth(0, 10) > 3 * growth(30, 40))
        // Plateau near W_max around t = K.
        #expect(abs(trace[41] - 100) < 2)
        #expect(trace[41] <= 100.5)
        // Convex: accelerating beyond W_max.
        #expect(growth(50, 60) > 0)
        #expect(growth(70, 79) > 2 * growth(50, 60))
        #expect(trace[79] > 115)
        // Never more than 1.5x per ACK-round and never shrinking.
        for i in 1..<trace.count {
            #expect(trace[i] >= trace[i - 1])
            #expect(trace[i] <= 1.5 * trace[i - 1] + 0.01)
        }
        // Close to the curve itself: W(8 s + RTT) = 0.4 * (8.1 - 4.217)^3 + 100 = 123.4.
        #expect(abs(trace[79] - 123.4) < 3)
    }

    @Test func renoFriendlyRegionFollowsTheRenoEstimate() {
        // Small W_max and a short RTT: standard TCP would grow faster than the cubic curve.
        var cc = afterLoss(at: 10)
        let rtt = Interval.milliseconds(10)
        let trace = run(&cc, rounds: 20, rtt: rtt)
        // W_cubic(0.21 s) = 10 - 0.4 * (1.957 - 0.21)^3 = 7.9 segments; Reno's estimate grows
        // 0.53 segment per RTT up to the previous window (10) and 1 per RTT after that.
        #expect(trace[19] > 15)
        #expect(trace[19] < 25)
        // In the region cwnd grows about linearly, one segment per RTT in the end.
        let lastStep = trace[19] - trace[14]
        #expect(lastStep > 4 && lastStep < 6)
    }

    @Test func timeoutUsesBetaAndLossWindowThenAConvexEpoch() {
        var cc = Cubic(mss: mss, initialWindow: 10 * mss)
        cc.congestionWindow = 100 * mss
        cc.onRetransmissionTimeout(flightSize: 100 * mss, now: .zero)
        #expect(cc.congestionWindow == mss)
        #expect(cc.slowStartThreshold == 70 * mss)
        // Slow start back up to ssthresh.
        var now = Instant.zero
        while cc.inSlowStart {
            now = now + .milliseconds(100)
            acknowledgeRound(&cc, mss: mss, now: now, smoothedRTT: .milliseconds(100))
        }
        #expect(cc.congestionWindow >= 70 * mss && cc.congestionWindow < 80 * mss)
        // The first epoch after an RTO starts at its plateau (K = 0): convex growth only.
        let start = segments(cc)
        let trace = run(&cc, rounds: 60, rtt: .milliseconds(100), from: now)
        #expect(cc.timeToOrigin == .zero)
        // At first the Reno-friendly estimate leads (about 0.5 segment per RTT); by t = 5 s
        // the cubic curve, 0.4 * t^3 above the start, grows several segments per RTT.
        #expect(trace[9] - start < 7)
        #expect(trace[59] - trace[49] > 3 * (trace[9] - start))
        #expect(abs(trace[59] - (start + 0.4 * 6.1 * 6.1 * 6.1)) < 5)
    }

    @Test func applicationLimitedSenderDoesNotGrow() {
        var cc = afterLoss(at: 100)
        let before = cc.congestionWindow
        for i in 1...100 {
            cc.onAcknowledged(
                bytes: mss, flightSize: 10 * mss, now: Instant.zero + .milliseconds(UInt64(i * 100)),
                smoothedRTT: .milliseconds(100), minimumRTT: nil)
        }
        #expect(cc.congestionWindow == before)
    }

    @Test func idleRestartCapsAtInitialWindow() {
        var cc = afterLoss(at: 100)
        cc.onIdleRestart(now: Instant.zero + .seconds(10), rto: .seconds(1))
        #expect(cc.congestionWindow == 10 * mss)
        #expect(cc.inSlowStart)
    }

    @Test func deterministic() {
        var a = afterLoss(at: 57)
        var b = afterLoss(at: 57)
        #expect(run(&a, rounds: 50, rtt: .milliseconds(37)) == run(&b, rounds: 50, rtt: .milliseconds(37)))
    }
}
