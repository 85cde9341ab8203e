import Testing
@Suite struct SimulationPlaceholderTests { @Test func builds() { #expect(Bool(true)) } }
