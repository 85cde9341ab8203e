import TCP
import Testing

/// Acknowledges one round trip's worth of a cwnd-limited flight in MSS-sized ACKs.
func acknowledgeRound<C: CongestionControl>(
    _ cc: inout C, mss: Int, now: Instant, smoothedRTT: Interval? = nil
) {
    let flight = cc.congestionWindow
    var acked = 0
    while acked + mss <= flight {
        cc.onAcknowledged(bytes: mss, flightSize: flight, now: now, smoothedRTT: smoothedRTT, minimumRTT: nil)
        acked += mss
    }
}

@Suite struct NewRenoTests {
    let mss = 1000

    @Test func startsWithInitialWindowAndInfiniteThreshold() {
        let cc = NewReno(mss: mss, initialWindow: 10 * mss)
        #expect(NewReno.name == "reno")
        #expect(cc.congestionWindow == 10 * mss)
        #expect(cc.slowStartThreshold == Int.max / 2)
        #expect(cc.inSlowStart)
    }

    @Test func slowStartDoublesEachRoundTrip() {
        var cc = NewReno(mss: mss, initialWindow: 10 * mss)
        for round in 1...5 {
            acknowledgeRound(&cc, mss: mss, now: .zero)
            #expect(cc.congestionWindow == 10 * mss << round)
        }
    }

    @Test func slowStartCountsAtMostOneMSSPerAck() {
        // Appropriate Byte Counting with L = 1 SMSS: a stretch ACK of 5 segments adds 1.
        var cc = NewReno(mss: mss, initialWindow: 10 * mss)
        cc.onAcknowledged(bytes: 5 * mss, flightSize: 10 * mss, now: .zero, smoothedRTT: nil, minimumRTT: nil)
        #expect(cc.congestionWindow == 11 * mss)
        cc.onAcknowledged(bytes: 300, flightSize: 10 * mss, now: .zero, smoothedRTT: nil, minimumRTT: nil)
        #expect(cc.congestionWindow == 11 * mss + 300)
    }

    @Test func congestionAvoidanceAddsOneMSSPerRoundTrip() {
        var cc = NewReno(mss: mss, initialWindow: 10 * mss)
        cc.slowStartThreshold = 20 * mss
        cc.congestionWindow = 20 * mss
        #expect(!cc.inSlowStart)
        for round in 1...10 {
            acknowledgeRound(&cc, mss: mss, now: .zero)
            #expect(cc.congestionWindow == (20 + round) * mss)
        }
    }

    @Test func slowStartHandsOverToAvoidanceAtThreshold() {
        var cc = NewReno(mss: mss, initialWindow: 10 * mss)
        cc.slowStartThreshold = 16 * mss
        acknowledgeRound(&cc, mss: mss, now: .zero)
        // 10 ACKs: the first six take cwnd to 16 segments, the rest count bytes (16 000 not reached).
        #expect(cc.congestionWindow == 16 * mss)
        acknowledgeRound(&cc, mss: mss, now: .zero)
        #expect(cc.congestionWindow == 17 * mss)
    }

    @Test func applicationLimitedSenderDoesNotGrow() {
        var cc = NewReno(mss: mss, initialWindow: 10 * mss)
        // Only 4 segments in flight out of a 10-segment window: less than half in use.
        for _ in 0..<4 {
            cc.onAcknowledged(bytes: mss, flightSize: 4 * mss, now: .zero, smoothedRTT: nil, minimumRTT: nil)
        }
        #expect(cc.congestionWindow == 10 * mss)
        cc.onAcknowledged(bytes: mss, flightSize: 5 * mss, now: .zero, smoothedRTT: nil, minimumRTT: nil)
        #expect(cc.congestionWindow == 11 * mss)
    }

    @Test func congestionEventHalvesFlightSize() {
        var cc = NewReno(mss: mss, initialWindow: 10 * mss)
        cc.congestionWindow = 40 * mss
        cc.onCongestionEvent(flightSize: 30 * mss, now: .zero)
        #expect(cc.slowStartThreshold == 15 * mss)
        #expect(cc.congestionWindow == 15 * mss)
        cc.onCongestionEvent(flightSize: 3 * mss, now: .zero)
        #expect(cc.slowStartThreshold == 2 * mss)
        #expect(cc.congestionWindow == 2 * mss)
    }

    @Test func recoveryExitDeflatesToThreshold() {
        var cc = NewReno(mss: mss, initialWindow: 10 * mss)
        cc.onCongestionEvent(flightSize: 20 * mss, now: .zero)
        // The state machine inflates cwnd by 3 segments plus one per duplicate ACK.
        cc.congestionWindow += 7 * mss
        cc.onRecoveryExit(now: .zero)
        #expect(cc.congestionWindow == 10 * mss)
        #expect(!cc.inSlowStart)
    }

    @Test func timeoutFallsBackToLossWindow() {
        var cc = NewReno(mss: mss, initialWindow: 10 * mss)
        cc.congestionWindow = 40 * mss
        cc.onRetransmissionTimeout(flightSize: 40 * mss, now: .zero)
        #expect(cc.congestionWindow == mss)
        #expect(cc.slowStartThreshold == 20 * mss)
        // Slow start again up to ssthresh.
        acknowledgeRound(&cc, mss: mss, now: .zero)
        #expect(cc.congestionWindow == 2 * mss)
    }

    @Test func idleRestartCapsAtInitialWindow() {
        var cc = NewReno(mss: mss, initialWindow: 10 * mss)
        cc.congestionWindow = 40 * mss
        cc.onIdleRestart(now: .zero, rto: .seconds(1))
        #expect(cc.congestionWindow == 10 * mss)
        cc.congestionWindow = 4 * mss
        cc.onIdleRestart(now: .zero, rto: .seconds(1))
        #expect(cc.congestionWindow == 4 * mss)
    }

    @Test func controllerForwardsToTheChosenAlgorithm() {
        #expect(CongestionAlgorithm.allCases == [.reno, .cubic])
        #expect(CongestionAlgorithm(rawValue: "cubic") == .cubic)
        for algorithm in CongestionAlgorithm.allCases {
            var cc = CongestionController(algorithm: algorithm, mss: mss, initialWindow: 10 * mss)
            #expect(cc.algorithm == algorithm)
            #expect(cc.name == algorithm.rawValue)
            #expect(cc.congestionWindow == 10 * mss)
            #expect(cc.slowStartThreshold == CongestionController.infiniteSlowStartThreshold)
            cc.onAcknowledged(bytes: mss, flightSize: 10 * mss, now: .zero, smoothedRTT: nil, minimumRTT: nil)
            #expect(cc.congestionWindow == 11 * mss)
            cc.onCongestionEvent(flightSize: 20 * mss, now: .zero)
            #expect(cc.slowStartThreshold == (algorithm == .reno ? 10 : 14) * mss)
            #expect(cc.congestionWindow == cc.slowStartThreshold)
            cc.congestionWindow = 30 * mss
            #expect(cc.congestionWindow == 30 * mss)
            cc.onRecoveryExit(now: .zero)
            #expect(cc.congestionWindow == cc.slowStartThreshold)
            cc.onRetransmissionTimeout(flightSize: 20 * mss, now: .zero)
            #expect(cc.congestionWindow == mss)
            cc.slowStartThreshold = 5 * mss
            #expect(cc.slowStartThreshold == 5 * mss)
            cc.congestionWindow = 50 * mss
            cc.onIdleRestart(now: .zero, rto: .seconds(1))
            #expect(cc.congestionWindow == 10 * mss)
        }
    }
}
