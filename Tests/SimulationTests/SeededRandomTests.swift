import Simulation
import Testing

@Suite struct SeededRandomTests {
    @Test func sameSeedGivesSameStream() {
        var a = SeededRandom(seed: 42)
        var b = SeededRandom(seed: 42)
        for _ in 0..<1000 { #expect(a.next() == b.next()) }
    }

    @Test func differentSeedsDiffer() {
        var a = SeededRandom(seed: 1)
        var b = SeededRandom(seed: 2)
        let first = (0..<16).map { _ in a.next() }
        let second = (0..<16).map { _ in b.next() }
        #expect(first != second)
    }

    @Test func zeroSeedIsUsable() {
        var random = SeededRandom(seed: 0)
        let values = Set((0..<100).map { _ in random.next() })
        #expect(values.count == 100)
    }

    @Test func chanceFrequencyIsWithinBounds() {
        var random = SeededRandom(seed: 7)
        var hits = 0
        for _ in 0..<100_000 where random.chance(0.05) { hits += 1 }
        // Expected 5000, standard deviation about 69: allow ±7σ.
        #expect(hits > 4500 && hits < 5500)
    }

    @Test func chanceExtremesAreExact() {
        var random = SeededRandom(seed: 9)
        let before = random
        for _ in 0..<1000 {
            let never = random.chance(0)
            let always = random.chance(1)
            #expect(!never && always)
        }
        // The extremes consume no randomness.
        var copy = before
        #expect(random.next() == copy.next())
    }

    @Test func uniformStaysInRangeAndCoversIt() {
        var random = SeededRandom(seed: 3)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 {
            let value = random.uniform(10..<17)
            #expect(value >= 10 && value < 17)
            counts[Int(value - 10)] += 1
        }
        for count in counts { #expect(count > 9000 && count < 11000) }
        #expect(random.uniform(5..<6) == 5)
        #expect(random.uniform(5..<5) == 5)
    }

    @Test func worksAsSystemRandomReplacement() {
        var a = SeededRandom(seed: 11)
        var b = SeededRandom(seed: 11)
        #expect((0..<20).shuffled(using: &a) == (0..<20).shuffled(using: &b))
    }
}
