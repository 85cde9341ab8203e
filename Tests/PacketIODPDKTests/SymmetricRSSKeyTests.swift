import PacketIODPDK
import Testing

/// A minimal Toeplitz hash for these tests only: the project's shared one lives in Wire
/// (ToeplitzHash.swift, issue 5) and replaces this once merged.
private func toeplitz(key: [UInt8], input: [UInt8]) -> UInt32 {
    var result: UInt32 = 0
    for (byteIndex, byte) in input.enumerated() {
        for bit in 0..<8 where byte & (0x80 >> UInt8(bit)) != 0 {
            // The 32-bit window of the key starting at this input bit.
            let start = byteIndex * 8 + bit
            var window: UInt32 = 0
            for k in 0..<32 {
                let position = start + k
                let keyBit = position / 8 < key.count ? (key[position / 8] >> (7 - UInt8(position % 8))) & 1 : 0
                window = window << 1 | UInt32(keyBit)
            }
            result ^= window
        }
    }
    return result
}

private func tuple(_ source: [UInt8], _ destination: [UInt8], _ sourcePort: UInt16, _ destinationPort: UInt16)
    -> [UInt8]
{
    source + destination + [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF)]
        + [UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF)]
}

@Suite struct SymmetricRSSKeyTests {
    @Test func keyIsTheRepeatedPatternOfTheRequestedLength() {
        #expect(SymmetricRSSKey.bytes().count == 40)
        #expect(SymmetricRSSKey.bytes(length: 52).count == 52)
        #expect(SymmetricRSSKey.bytes(length: 4) == [0x6D, 0x5A, 0x6D, 0x5A])
    }

    @Test func minimalHashMatchesAPublishedVector() {
        // Microsoft's RSS verification suite, IPv4 with TCP ports: 66.9.149.187:2794 ->
        // 161.142.100.80:1766 hashes to 0x51ccc178 with the standard key.
        let standardKey: [UInt8] = [
            0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
            0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
            0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
        ]
        #expect(
            toeplitz(key: standardKey, input: tuple([66, 9, 149, 187], [161, 142, 100, 80], 2794, 1766)) == 0x51cc_c178)
    }

    @Test func bothDirectionsOfAFlowHashAlike() {
        let key = SymmetricRSSKey.bytes()
        var seed: UInt64 = 0x1234_5678
        func next() -> UInt64 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return seed >> 16
        }
        for _ in 0..<500 {
            let a = (0..<4).map { _ in UInt8(truncatingIfNeeded: next()) }
            let b = (0..<4).map { _ in UInt8(truncatingIfNeeded: next()) }
            let p = UInt16(truncatingIfNeeded: next())
            let q = UInt16(truncatingIfNeeded: next())
            #expect(toeplitz(key: key, input: tuple(a, b, p, q)) == toeplitz(key: key, input: tuple(b, a, q, p)))
            #expect(toeplitz(key: key, input: a + b) == toeplitz(key: key, input: b + a))
        }
    }

    @Test func theStandardKeyIsNotSymmetric() {
        // The property above comes from the key: Microsoft's default key separates directions.
        let standardKey: [UInt8] = [0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43]
        let forward = toeplitz(key: standardKey, input: tuple([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80))
        let backward = toeplitz(key: standardKey, input: tuple([10, 0, 0, 2], [10, 0, 0, 1], 80, 40000))
        #expect(forward != backward)
    }
}
