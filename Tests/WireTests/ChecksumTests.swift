import Testing
import Wire

@Suite struct InternetChecksumTests {
    @Test func matchesRFC1071Example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let bytes: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        bytes.withUnsafeBytes { raw in
            var sum = InternetChecksum()
            sum.add(raw)
            #expect(sum.folded == 0xDDF2)
            #expect(sum.value == 0x220D)
        }
    }

    @Test func verifiesKnownIPv4Header() {
        let header: [UInt8] = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xB8, 0x61, 0xC0, 0xA8, 0x00, 0x01, 0xC0, 0xA8,
            0x00, 0xC7,
        ]
        header.withUnsafeBytes { #expect(InternetChecksum.verify($0)) }
        var zeroed = header
        zeroed[10] = 0
        zeroed[11] = 0
        zeroed.withUnsafeBytes { #expect(InternetChecksum.compute($0) == 0xB861) }
        var corrupted = header
        corrupted[3] ^= 0x04
        corrupted.withUnsafeBytes { #expect(!InternetChecksum.verify($0)) }
    }

    @Test func emptyInputSumsToAllOnes() {
        #expect(InternetChecksum().value == 0xFFFF)
        var sum = InternetChecksum()
        sum.add(UnsafeRawBufferPointer(start: nil, count: 0))
        #expect(sum.value == 0xFFFF)
    }

    @Test func matchesReferenceForEveryLength() {
        var random = SplitMix64(seed: 1)
        for length in 0...300 {
            let bytes = random.bytes(length)
            bytes.withUnsafeBytes { raw in
                #expect(InternetChecksum.compute(raw) == referenceChecksum(bytes), "length \(length)")
            }
        }
    }

    @Test func allOnesBufferDoesNotOverflow() {
        let bytes = [UInt8](repeating: 0xFF, count: 65535)
        bytes.withUnsafeBytes { raw in
            #expect(InternetChecksum.compute(raw) == referenceChecksum(bytes))
        }
        let big = [UInt8](repeating: 0xFE, count: 70001)
        big.withUnsafeBytes { raw in
            #expect(InternetChecksum.compute(raw) == referenceChecksum(big))
        }
    }

    @Test func piecesOfAnyLengthSumLikeTheWhole() {
        var random = SplitMix64(seed: 2)
        for round in 0..<2000 {
            let length = Int(random.next() % 200)
            let bytes = random.bytes(length)
            // Up to four cut points, anywhere (odd lengths included).
            var cuts = (0..<Int(random.next() % 4)).map { _ in length == 0 ? 0 : Int(random.next() % UInt64(length + 1))
            }
            cuts.append(0)
            cuts.append(length)
            cuts.sort()
            bytes.withUnsafeBytes { raw in
                var sum = InternetChecksum()
                for index in 0..<(cuts.count - 1) {
                    sum.add(UnsafeRawBufferPointer(rebasing: raw[cuts[index]..<cuts[index + 1]]))
                }
                #expect(sum.value == referenceChecksum(bytes), "round \(round) cuts \(cuts)")
            }
        }
    }

    @Test func wordsAfterAnOddPieceLandInStreamOrder() {
        let bytes: [UInt8] = [0x12, 0x34, 0x56, 0xAB, 0xCD, 0x01, 0x02, 0x03, 0x04]
        bytes.withUnsafeBytes { raw in
            var sum = InternetChecksum()
            sum.add(UnsafeRawBufferPointer(rebasing: raw[0..<3]))
            sum.add(UInt16(0xABCD))
            sum.add(UInt32(0x0102_0304))
            #expect(sum.value == referenceChecksum(bytes))
        }
    }

    @Test func pseudoHeaderMatchesItsBytes() {
        let source = IPv4Address(192, 168, 1, 17)
        let destination = IPv4Address(172, 16, 254, 3)
        var bytes = [UInt8](repeating: 0, count: 12)
        put32(&bytes, source.rawValue, at: 0)
        put32(&bytes, destination.rawValue, at: 4)
        bytes[9] = IPProtocol.tcp
        put16(&bytes, 1234, at: 10)
        let sum = InternetChecksum.pseudoHeader(
            source: source, destination: destination, protocol: IPProtocol.tcp, length: 1234)
        #expect(sum.value == referenceChecksum(bytes))
    }

    @Test func bufferWithItsChecksumVerifies() {
        var random = SplitMix64(seed: 3)
        for length in stride(from: 2, through: 101, by: 1) {
            var bytes = random.bytes(length)
            bytes[0] = 0
            bytes[1] = 0
            let value = referenceChecksum(bytes)
            put16(&bytes, value, at: 0)
            bytes.withUnsafeBytes { #expect(InternetChecksum.verify($0)) }
        }
    }
}
