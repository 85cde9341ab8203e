import Testing
import Wire

/// An IPv4 packet with `optionWords` 32-bit words of options, the given payload,
/// optional trailing padding, and a correct header checksum.
func rawIPv4Packet(
    optionWords: Int = 0, payload: [UInt8], padding: Int = 0, flagsOffset: UInt16 = 0x4000, proto: UInt8 = 6
) -> [UInt8] {
    let headerLength = 20 + optionWords * 4
    var bytes = [UInt8](repeating: 0, count: headerLength)
    bytes[0] = 0x40 | UInt8(headerLength / 4)
    bytes[1] = 0x10
    put16(&bytes, UInt16(headerLength + payload.count), at: 2)
    put16(&bytes, 0x1234, at: 4)
    put16(&bytes, flagsOffset, at: 6)
    bytes[8] = 63
    bytes[9] = proto
    put32(&bytes, clientIP.rawValue, at: 12)
    put32(&bytes, serverIP.rawValue, at: 16)
    if optionWords > 0 {
        // Record-route-like option filler: NOPs ended by EOL, contents do not matter.
        for index in 20..<headerLength { bytes[index] = 1 }
        bytes[headerLength - 1] = 0
    }
    put16(&bytes, referenceChecksum(bytes), at: 10)
    return bytes + payload + [UInt8](repeating: 0, count: padding)
}

func parseIPv4(
    _ bytes: [UInt8], verifyChecksum: Bool = true
) -> Result<(header: IPv4Header, payload: [UInt8]), WireError> {
    bytes.withUnsafeBytes { raw in
        outcome { () throws(WireError) in
            let (header, payload) = try IPv4Header.parse(raw, verifyChecksum: verifyChecksum)
            return (header, Array(payload))
        }
    }
}

@Suite struct IPv4HeaderTests {
    let payload: [UInt8] = (0..<37).map { UInt8($0 * 7 & 0xFF) }

    @Test func parsesFieldsAndCutsPadding() throws {
        let bytes = rawIPv4Packet(payload: payload, padding: 9)
        let (header, body) = try #require(parseIPv4(bytes).success)
        #expect(header.version == 4)
        #expect(header.headerLength == 20)
        #expect(header.dscpECN == 0x10)
        #expect(header.totalLength == 57)
        #expect(header.identification == 0x1234)
        #expect(header.dontFragment)
        #expect(!header.moreFragments)
        #expect(header.fragmentOffset == 0)
        #expect(header.ttl == 63)
        #expect(header.protocol == IPProtocol.tcp)
        #expect(header.checksum == get16(bytes, at: 10))
        #expect(header.source == clientIP)
        #expect(header.destination == serverIP)
        #expect(body == payload)
    }

    @Test func skipsOptionsForEveryIHL() throws {
        for words in 1...10 {
            let bytes = rawIPv4Packet(optionWords: words, payload: payload, padding: 3)
            let (header, body) = try #require(parseIPv4(bytes).success, "IHL \(5 + words)")
            #expect(header.headerLength == 20 + 4 * words)
            #expect(body == payload)
        }
    }

    @Test func refusesFragments() {
        for flagsOffset: UInt16 in [0x2000, 0x0001, 0x1FFF, 0x2000 | 0x00B9, 0x4000 | 0x0010] {
            let bytes = rawIPv4Packet(payload: payload, flagsOffset: flagsOffset)
            #expect(parseIPv4(bytes).failure == .fragmented, "flags/offset \(flagsOffset)")
        }
        #expect(parseIPv4(rawIPv4Packet(payload: payload, flagsOffset: 0)).success != nil)
    }

    @Test func refusesBadHeaders() {
        let good = rawIPv4Packet(payload: payload)
        var bytes = good
        bytes[0] = 0x65
        #expect(parseIPv4(bytes).failure == .badVersion)
        for ihl: UInt8 in 0..<5 {
            bytes = good
            bytes[0] = 0x40 | ihl
            #expect(parseIPv4(bytes, verifyChecksum: false).failure == .badLength)
        }
        bytes = good
        put16(&bytes, 19, at: 2)  // total length shorter than the header
        #expect(parseIPv4(bytes, verifyChecksum: false).failure == .badLength)
        bytes = good
        put16(&bytes, UInt16(good.count + 1), at: 2)
        #expect(parseIPv4(bytes, verifyChecksum: false).failure == .truncated)
        bytes = good
        bytes[0] = 0x4F  // 60-byte header in a 57-byte packet
        #expect(parseIPv4(bytes, verifyChecksum: false).failure == .truncated)
        bytes = good
        bytes[8] ^= 0x01
        #expect(parseIPv4(bytes).failure == .badChecksum)
        #expect(parseIPv4(bytes, verifyChecksum: false).success != nil)
    }

    @Test func everyTruncationThrows() {
        let good = rawIPv4Packet(optionWords: 2, payload: payload)
        for length in 0..<good.count {
            let result = parseIPv4(Array(good[0..<length]))
            #expect(result.failure == .truncated, "length \(length)")
        }
    }

    @Test func everySingleBitFlipInTheHeaderIsCaught() {
        let good = rawIPv4Packet(payload: payload)
        for bit in 0..<(20 * 8) {
            var bytes = good
            bytes[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(parseIPv4(bytes).success == nil, "bit \(bit)")
        }
    }

    @Test func builderWritesAValidHeader() throws {
        var buffer = [UInt8](repeating: 0xAA, count: 20 + payload.count)
        let written = buffer.withUnsafeMutableBytes { out in
            IPv4Header.write(
                to: out, source: clientIP, destination: serverIP, protocol: IPProtocol.icmp,
                payloadLength: payload.count, identification: 777, ttl: 5, dontFragment: false)
        }
        #expect(written == 20)
        buffer.replaceSubrange(20..., with: payload)
        #expect(referenceChecksum(Array(buffer[0..<20])) == 0)
        let (header, body) = try #require(parseIPv4(buffer).success)
        #expect(header.protocol == IPProtocol.icmp)
        #expect(header.identification == 777)
        #expect(header.ttl == 5)
        #expect(!header.dontFragment)
        #expect(header.totalLength == UInt16(20 + payload.count))
        #expect(body == payload)
        var defaults = [UInt8](repeating: 0, count: 20)
        _ = defaults.withUnsafeMutableBytes { out in
            IPv4Header.write(
                to: out, source: clientIP, destination: serverIP, protocol: IPProtocol.tcp, payloadLength: 0,
                identification: 1)
        }
        let header2 = try #require(parseIPv4(defaults).success?.header)
        #expect(header2.ttl == 64 && header2.dontFragment)
    }

    @Test func builderRefusesImpossibleRequests() {
        var small = [UInt8](repeating: 0, count: 19)
        #expect(
            small.withUnsafeMutableBytes { out in
                IPv4Header.write(
                    to: out, source: clientIP, destination: serverIP, protocol: 6, payloadLength: 0, identification: 0)
            } == 0)
        var buffer = [UInt8](repeating: 0, count: 20)
        for length in [-1, 65516] {
            #expect(
                buffer.withUnsafeMutableBytes { out in
                    IPv4Header.write(
                        to: out, source: clientIP, destination: serverIP, protocol: 6, payloadLength: length,
                        identification: 0)
                } == 0)
        }
    }
}
