import Testing
import Wire

func parseOptions(_ bytes: [UInt8]) -> Result<TCPOptions, WireError> {
    bytes.withUnsafeBytes { raw in outcome { () throws(WireError) in try TCPOptions.parse(raw) } }
}

func encodeOptions(_ options: TCPOptions) -> [UInt8] {
    var buffer = [UInt8](repeating: 0xEE, count: 40)
    let written = buffer.withUnsafeMutableBytes { options.encode(to: $0) }
    return Array(buffer[0..<written])
}

func blocks(_ count: Int) -> SACKBlockList {
    var list = SACKBlockList()
    for index in 0..<count {
        list.append(SACKBlock(left: UInt32(1000 * index + 100), right: UInt32(1000 * index + 600)))
    }
    return list
}

@Suite struct TCPOptionCodecTests {
    @Test func synLayoutMatchesLinux() {
        let options = TCPOptions(
            maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true,
            timestamp: TCPTimestampOption(value: 0x0102_0304, echoReply: 0))
        #expect(
            encodeOptions(options) == [
                2, 4, 0x05, 0xB4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7,
            ])
        #expect(TCPHeader.encodedOptionsLength(options) == 20)
        let noTimestamps = TCPOptions(maximumSegmentSize: 536, windowScale: 0, sackPermitted: true)
        #expect(encodeOptions(noTimestamps) == [2, 4, 0x02, 0x18, 1, 1, 4, 2, 1, 3, 3, 0])
    }

    @Test func dataLayoutMatchesLinux() {
        let options = TCPOptions(
            timestamp: TCPTimestampOption(value: 5, echoReply: 6),
            sackBlocks: blocks(1))
        #expect(
            encodeOptions(options) == [
                1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6, 1, 1, 5, 10, 0, 0, 0, 100, 0, 0, 2, 0x58,
            ])
    }

    @Test func emptyOptionsEncodeToNothing() {
        #expect(encodeOptions(TCPOptions()) == [])
        #expect(TCPHeader.encodedOptionsLength(TCPOptions()) == 0)
    }

    @Test func sackBlocksBeyondFortyBytesAreDropped() {
        let timestamp = TCPTimestampOption(value: 1, echoReply: 2)
        for (fixed, expected) in [
            (TCPOptions(), 4), (TCPOptions(timestamp: timestamp), 3),
            (TCPOptions(maximumSegmentSize: 1460, timestamp: timestamp), 2),
            (TCPOptions(maximumSegmentSize: 1460, windowScale: 2, timestamp: timestamp), 2),
        ] {
            var options = fixed
            options.sackBlocks = blocks(4)
            #expect(options.encodedSACKBlockCount == expected)
            #expect(options.encodedLength <= 40)
            let parsed = parseOptions(encodeOptions(options)).success
            #expect(parsed?.sackBlocks == blocks(expected))
        }
    }

    @Test func roundTripsEveryCombination() throws {
        let timestamps: [TCPTimestampOption?] = [nil, TCPTimestampOption(value: 0xFFFF_FFFF, echoReply: 0x8000_0001)]
        for mss: UInt16? in [nil, 1460, 0xFFFF] {
            for scale: UInt8? in [nil, 0, 7, 14] {
                for sackPermitted in [false, true] {
                    for timestamp in timestamps {
                        for count in 0...4 {
                            let options = TCPOptions(
                                maximumSegmentSize: mss, windowScale: scale, sackPermitted: sackPermitted,
                                timestamp: timestamp, sackBlocks: blocks(count))
                            let bytes = encodeOptions(options)
                            #expect(bytes.count == options.encodedLength)
                            #expect(bytes.count % 4 == 0 && bytes.count <= 40)
                            var expected = options
                            expected.sackBlocks = blocks(options.encodedSACKBlockCount)
                            #expect(parseOptions(bytes).success == expected, "\(options)")
                        }
                    }
                }
            }
        }
    }

    @Test func encodeRefusesSmallBuffer() {
        let options = TCPOptions(maximumSegmentSize: 1460, sackPermitted: true)
        var buffer = [UInt8](repeating: 0, count: 7)
        #expect(buffer.withUnsafeMutableBytes { options.encode(to: $0) } == 0)
    }

    @Test func windowScaleIsClamped() {
        #expect(parseOptions([1, 3, 3, 15]).success?.windowScale == 14)
        #expect(parseOptions([1, 3, 3, 255]).success?.windowScale == 14)
        #expect(encodeOptions(TCPOptions(windowScale: 20)) == [1, 3, 3, 14])
    }

    @Test func parsesListEndsPaddingAndUnknownKinds() {
        // EOL stops parsing: the bytes after it are not looked at.
        #expect(parseOptions([2, 4, 1, 0, 0, 99, 99, 99]).success == TCPOptions(maximumSegmentSize: 256))
        #expect(parseOptions([1, 1, 1, 1]).success == TCPOptions())
        #expect(parseOptions([]).success == TCPOptions())
        // Unknown kinds (TCP-AO 29, MPTCP 30, experimental 254) are skipped by length.
        #expect(
            parseOptions([30, 4, 0xAB, 0xCD, 254, 2, 4, 2, 29, 3, 0, 1]).success == TCPOptions(sackPermitted: true))
    }

    @Test func refusesImpossibleLengths() {
        let cases: [[UInt8]] = [
            [2],  // kind without a length byte
            [1, 1, 1, 8],  // ditto after padding
            [99, 0, 0, 0],  // length 0
            [99, 1, 0, 0],  // length 1
            [99, 5, 0, 0],  // runs past the end
            [2, 3, 5, 0],  // MSS length 3
            [2, 5, 5, 0, 0, 0, 0, 0],  // MSS length 5
            [1, 3, 2, 7],  // window scale length 2
            [3, 4, 7, 0],  // window scale length 4
            [4, 3, 0, 0],  // SACK-permitted length 3
            [8, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  // timestamps length 9
            [8, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  // timestamps length 11
            [8, 10, 0, 0, 0, 0, 0, 0],  // timestamps past the end
            [5, 2, 0, 0],  // SACK with no blocks
            [5, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  // SACK with a partial block
            [5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  // SACK, 9 bytes of blocks
            [5, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  // SACK, 2 blocks in 10 bytes
        ]
        for bytes in cases {
            #expect(parseOptions(bytes).failure == .badOption, "\(bytes)")
        }
        // Five SACK blocks need 42 bytes: more than any header can carry.
        var five: [UInt8] = [5, 42]
        five += [UInt8](repeating: 0, count: 40)
        #expect(parseOptions(five).failure == .badOption)
    }
}
