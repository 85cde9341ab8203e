import TCP
import Testing

@Suite struct RTTEstimatorTests {
    @Test func initialState() {
        let estimator = RTTEstimator()
        #expect(estimator.rto == .seconds(1))
        #expect(estimator.smoothedRTT == nil)
        #expect(estimator.rttVariance == .zero)
        #expect(estimator.minimumObservedRTT == nil)
    }

    @Test func firstSample() {
        var estimator = RTTEstimator()
        estimator.addSample(.milliseconds(100))
        #expect(estimator.smoothedRTT == .milliseconds(100))
        #expect(estimator.rttVariance == .milliseconds(50))
        // 100 + 4 * 50 = 300 ms
        #expect(estimator.rto == .milliseconds(300))
        #expect(estimator.minimumObservedRTT == .milliseconds(100))
    }

    @Test func laterSamplesUseAlphaAndBeta() {
        var estimator = RTTEstimator()
        estimator.addSample(.milliseconds(100))
        estimator.addSample(.milliseconds(180))
        // RTTVAR = 3/4 * 50 + 1/4 * 80 = 57.5; SRTT = 7/8 * 100 + 1/8 * 180 = 110
        #expect(estimator.rttVariance == .microseconds(57_500))
        #expect(estimator.smoothedRTT == .milliseconds(110))
        #expect(estimator.rto == .milliseconds(340))
        estimator.addSample(.milliseconds(60))
        #expect(estimator.minimumObservedRTT == .milliseconds(60))
        // RTTVAR = 3/4 * 57.5 + 1/4 * 50 = 55.625; SRTT = 7/8 * 110 + 1/8 * 60 = 103.75
        #expect(estimator.rttVariance == .microseconds(55_625))
        #expect(estimator.smoothedRTT == .microseconds(103_750))
        #expect(estimator.rto == .microseconds(103_750 + 4 * 55_625))
    }

    @Test func clampsToMinimumAndUsesGranularity() {
        var estimator = RTTEstimator()
        estimator.addSample(.microseconds(100))
        #expect(estimator.rto == .milliseconds(200))
        // Steady samples drive RTTVAR toward zero; G then bounds the variance term.
        var fine = RTTEstimator(minimumRTO: .zero, clockGranularity: .milliseconds(10))
        for _ in 0..<200 { fine.addSample(.milliseconds(50)) }
        #expect(fine.rttVariance < .milliseconds(1))
        #expect(fine.rto == .milliseconds(60))
    }

    @Test func clampsToMaximum() {
        var estimator = RTTEstimator(maximumRTO: .seconds(60))
        estimator.addSample(.seconds(30))
        #expect(estimator.rto == .seconds(60))
        estimator.addSample(Interval(nanoseconds: .max))
        #expect(estimator.rto == .seconds(60))
    }

    @Test func backoffDoublesAndCaps() {
        var estimator = RTTEstimator()
        estimator.addSample(.milliseconds(100))
        #expect(estimator.backedOff(0) == .milliseconds(300))
        #expect(estimator.backedOff(1) == .milliseconds(600))
        #expect(estimator.backedOff(3) == .milliseconds(2_400))
        #expect(estimator.backedOff(9) == .seconds(120))
        #expect(estimator.backedOff(63) == .seconds(120))
        #expect(estimator.backedOff(64) == .seconds(120))
        #expect(estimator.backedOff(1_000) == .seconds(120))
        #expect(estimator.backedOff(-1) == .milliseconds(300))
    }
}
