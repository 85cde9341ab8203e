import Testing
import Wire

@Suite struct IPv4AddressTests {
    @Test func parsesDottedQuad() {
        #expect(IPv4Address("10.0.0.1") == IPv4Address(10, 0, 0, 1))
        #expect(IPv4Address("255.255.255.255") == .broadcast)
        #expect(IPv4Address("10.0.0.1").map(\.description) == "10.0.0.1")
    }
    @Test func rejectsMalformedText() {
        for text in ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1..2.3", "a.b.c.d", "1.2.3.4 ", "1234.1.1.1"] {
            #expect(IPv4Address(text) == nil, "accepted \(text)")
        }
    }
}
