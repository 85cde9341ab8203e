import Testing
import Wire

@Suite struct TCPHeaderTests {
    let payload: [UInt8] = (0..<37).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 5) }
    let dataOptions = TCPOptions(timestamp: TCPTimestampOption(value: 77, echoReply: 66), sackBlocks: blocks(2))

    @Test func roundTripsFieldsAndPayload() throws {
        let bytes = builtSegment(options: dataOptions, payload: payload, flags: [.ack, .psh])
        #expect(bytes.count == 20 + 32 + payload.count)
        let (header, body) = try #require(parseSegment(bytes).success)
        #expect(header.sourcePort == 40000)
        #expect(header.destinationPort == 80)
        #expect(header.sequenceNumber == 0x0102_0304)
        #expect(header.acknowledgmentNumber == 0xA0B0_C0D0)
        #expect(header.headerLength == 52)
        #expect(header.flags == [.ack, .psh])
        #expect(header.window == 29200)
        #expect(header.urgentPointer == 0)
        #expect(header.checksum == get16(bytes, at: 16))
        #expect(header.options == dataOptions)
        #expect(body == payload)
        // The checksum agrees with the obvious computation.
        var zeroed = bytes
        zeroed[16] = 0
        zeroed[17] = 0
        #expect(
            referenceChecksum(pseudoHeaderBytes(source: clientIP, destination: serverIP, length: bytes.count) + zeroed)
                == header.checksum)
    }

    @Test func checksumLeftToTheNICIsZeroAndTheRestIdentical() {
        var offloaded = [UInt8](repeating: 0xEE, count: 2048)
        let written = offloaded.withUnsafeMutableBytes { out in
            payload.withUnsafeBytes { all in
                TCPHeader.write(
                    to: out, sourcePort: 40000, destinationPort: 80, sequenceNumber: 0x0102_0304,
                    acknowledgmentNumber: 0xA0B0_C0D0, flags: [.ack, .psh], window: 29200, options: dataOptions,
                    payload: all, source: IPAddress(clientIP), destination: IPAddress(serverIP), checksum: false)
            }
        }
        let full = builtSegment(options: dataOptions, payload: payload, flags: [.ack, .psh])
        #expect(written == full.count)
        #expect(offloaded[16] == 0 && offloaded[17] == 0)
        #expect(Array(offloaded[0..<16]) == Array(full[0..<16]))
        #expect(Array(offloaded[18..<written]) == Array(full[18...]))
    }

    @Test func payloadSplitAnywhereGivesTheSameSegment() {
        let whole = builtSegment(options: dataOptions, payload: payload)
        for cut in 0...payload.count {
            #expect(builtSegment(options: dataOptions, payload: payload, split: cut) == whole, "cut \(cut)")
        }
    }

    @Test func roundTripsOptionsWithPayload() throws {
        let timestamp = TCPTimestampOption(value: 123_456, echoReply: 654_321)
        for mss: UInt16? in [nil, 1448] {
            for scale: UInt8? in [nil, 9] {
                for sackPermitted in [false, true] {
                    for stamp in [nil, timestamp] {
                        for count in 0...4 {
                            let options = TCPOptions(
                                maximumSegmentSize: mss, windowScale: scale, sackPermitted: sackPermitted,
                                timestamp: stamp, sackBlocks: blocks(count))
                            let bytes = builtSegment(options: options, payload: payload, split: 11)
                            let (header, body) = try #require(parseSegment(bytes).success)
                            var expected = options
                            expected.sackBlocks = blocks(options.encodedSACKBlockCount)
                            #expect(header.options == expected)
                            #expect(header.headerLength == 20 + TCPHeader.encodedOptionsLength(options))
                            #expect(body == payload)
                        }
                    }
                }
            }
        }
    }

    @Test func everySingleBitFlipIsABadChecksum() {
        let good = builtSegment(options: dataOptions, payload: payload)
        for bit in 0..<(good.count * 8) {
            var bytes = good
            bytes[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(parseSegment(bytes).failure == .badChecksum, "bit \(bit)")
        }
    }

    @Test func checksumCoversThePseudoHeader() {
        let good = builtSegment(options: TCPOptions(), payload: payload)
        #expect(parseSegment(good, source: IPv4Address(10, 0, 0, 3)).failure == .badChecksum)
        #expect(parseSegment(good, destination: IPv4Address(10, 0, 1, 2)).failure == .badChecksum)
        #expect(parseSegment(good, source: serverIP, destination: clientIP).success != nil)  // sum is symmetric
    }

    @Test func everyTruncationThrows() {
        let good = builtSegment(options: dataOptions, payload: payload)
        for length in 0..<good.count {
            let prefix = Array(good[0..<length])
            #expect(parseSegment(prefix).failure != nil, "length \(length)")
            if length < 52 {
                #expect(parseSegment(prefix, verifyChecksum: false).failure == .truncated, "length \(length)")
            }
        }
    }

    @Test func refusesBadDataOffsetsAndOptions() {
        for offset: UInt8 in 0..<5 {
            var bytes = rawSegment(options: [])
            bytes[12] = offset << 4
            #expect(parseSegment(bytes, verifyChecksum: false).failure == .badLength)
        }
        var long = rawSegment(options: [1, 1, 1, 1])
        long[12] = 0xF0
        #expect(parseSegment(long, verifyChecksum: false).failure == .truncated)
        // Malformed options with a correct checksum reach the option parser.
        #expect(parseSegment(rawSegment(options: [2, 3, 0, 0])).failure == .badOption)
        #expect(parseSegment(rawSegment(options: [1, 1, 99, 3])).failure == .badOption)
        #expect(parseSegment(rawSegment(options: [1, 1, 1, 2])).failure == .badOption)
        let ok = parseSegment(rawSegment(options: [2, 4, 0x05, 0xB4], payload: [1, 2, 3], flags: 0x12))
        #expect(ok.success?.header.options == TCPOptions(maximumSegmentSize: 1460))
        #expect(ok.success?.header.flags == [.syn, .ack])
        #expect(ok.success?.payload == [1, 2, 3])
    }

    @Test func builderRefusesSmallBuffers() {
        let options = TCPOptions(maximumSegmentSize: 1460)
        let needed = 24 + payload.count
        for capacity in [0, 19, 23, needed - 1] {
            #expect(builtSegment(options: options, payload: payload, capacity: capacity).isEmpty, "\(capacity)")
        }
        #expect(builtSegment(options: options, payload: payload, capacity: needed).count == needed)
    }
}
