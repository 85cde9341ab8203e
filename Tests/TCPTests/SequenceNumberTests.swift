import TCP
import Testing

@Suite struct SequenceNumberTests {
    @Test func comparesAcrossWrap() {
        let a = SequenceNumber(0xFFFF_FFF0)
        let b = a + 0x20
        #expect(b.rawValue == 0x10)
        #expect(a < b)
        #expect(!(b < a))
        #expect(b - a == 0x20)
        #expect(a - b == -0x20)
    }
}
