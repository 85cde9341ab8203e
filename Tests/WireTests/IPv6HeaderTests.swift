import Testing
import Wire

let v6Client = IPAddress(0x2001, 0xDB8, 0, 0, 0, 0, 0, 1)
let v6Server = IPAddress(0x2001, 0xDB8, 0, 0, 0, 0, 0, 2)

func v6Bytes(_ address: IPAddress) -> [UInt8] {
    (0..<8).flatMap { [UInt8(address.group($0) >> 8), UInt8(truncatingIfNeeded: address.group($0))] }
}

/// An IPv6 packet built by hand: fixed header, `extensions` (already chained by the
/// caller), `payload`, then `padding` bytes the payload length does not cover.
func rawIPv6Packet(
    nextHeader: UInt8, extensions: [UInt8] = [], payload: [UInt8], padding: Int = 0,
    source: IPAddress = v6Client, destination: IPAddress = v6Server, payloadLength: Int? = nil
) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 40)
    put32(&bytes, 0x6B81_2345, at: 0)  // version 6, traffic class 0xb8, flow label 0x12345
    put16(&bytes, UInt16(payloadLength ?? (extensions.count + payload.count)), at: 4)
    bytes[6] = nextHeader
    bytes[7] = 63
    bytes.replaceSubrange(8..<24, with: v6Bytes(source))
    bytes.replaceSubrange(24..<40, with: v6Bytes(destination))
    return bytes + extensions + payload + [UInt8](repeating: 0xEE, count: padding)
}

/// An 8-byte Hop-by-Hop or Destination Options header holding one PadN.
func paddingOptionsHeader(next: UInt8) -> [UInt8] {
    [next, 0, 1, 4, 0, 0, 0, 0]
}

/// An 8-byte Routing header (type 4, segment routing) with `segmentsLeft`.
func routingHeader(next: UInt8, segmentsLeft: UInt8) -> [UInt8] {
    [next, 0, 4, segmentsLeft, 0, 0, 0, 0]
}

func parseIPv6(_ bytes: [UInt8]) -> Result<(header: IPv6Header, payload: [UInt8]), WireError> {
    bytes.withUnsafeBytes { raw in
        outcome { () throws(WireError) in
            let (header, payload) = try IPv6Header.parse(raw)
            return (header, Array(payload))
        }
    }
}

@Suite struct IPv6HeaderTests {
    let payload: [UInt8] = (0..<29).map { UInt8($0 * 11 & 0xFF) }

    @Test func writeThenParse() throws {
        var bytes = [UInt8](repeating: 0xAA, count: 40)
        let written = bytes.withUnsafeMutableBytes { out in
            IPv6Header.write(
                to: out, source: v6Client, destination: v6Server, nextHeader: IPProtocol.tcp,
                payloadLength: payload.count, hopLimit: 63, trafficClass: 0xB8, flowLabel: 0xFFF1_2345)
        }
        #expect(written == 40)
        // The flow label is cut to its 20 bits, so this is byte for byte the hand-built one.
        #expect(bytes == Array(rawIPv6Packet(nextHeader: IPProtocol.tcp, payload: payload)[0..<40]))
        let (header, body) = try #require(parseIPv6(bytes + payload).success)
        #expect(header.trafficClass == 0xB8)
        #expect(header.flowLabel == 0x12345)
        #expect(header.payloadLength == UInt16(payload.count))
        #expect(header.nextHeader == IPProtocol.tcp)
        #expect(header.upperProtocol == IPProtocol.tcp)
        #expect(header.extensionHeaderLength == 0)
        #expect(header.hopLimit == 63)
        #expect(header.source == v6Client)
        #expect(header.destination == v6Server)
        #expect(body == payload)
        #expect(
            header
                == IPv6Header(
                    trafficClass: 0xB8, flowLabel: 0x12345, payloadLength: 29, nextHeader: 6, hopLimit: 63,
                    source: v6Client, destination: v6Server))
    }

    @Test func writeRefusesImpossibleRequests() {
        var small = [UInt8](repeating: 0, count: 39)
        var big = [UInt8](repeating: 0, count: 40)
        func write(_ buffer: inout [UInt8], _ length: Int) -> Int {
            buffer.withUnsafeMutableBytes { out in
                IPv6Header.write(to: out, source: v6Client, destination: v6Server, nextHeader: 6, payloadLength: length)
            }
        }
        #expect(write(&small, 0) == 0)
        #expect(write(&big, -1) == 0)
        #expect(write(&big, 65536) == 0)
        #expect(write(&big, 65535) == 40)
        #expect(get16(big, at: 4) == 65535)
        #expect(big[0] == 0x60 && big[1] == 0 && big[7] == 64)
    }

    @Test func paddingIsCut() throws {
        let (header, body) = try #require(
            parseIPv6(rawIPv6Packet(nextHeader: IPProtocol.udp, payload: payload, padding: 17)).success)
        #expect(header.upperProtocol == IPProtocol.udp)
        #expect(body == payload)
    }

    @Test func truncationAndVersion() {
        let bytes = rawIPv6Packet(nextHeader: IPProtocol.tcp, payload: payload)
        for length in 0..<bytes.count {
            #expect(parseIPv6(Array(bytes[0..<length])).failure == .truncated, "length \(length)")
        }
        for version: UInt8 in [0, 4, 5, 7, 15] {
            var wrong = bytes
            wrong[0] = version << 4 | (wrong[0] & 0x0F)
            #expect(parseIPv6(wrong).failure == .badVersion)
        }
    }

    @Test func jumbogramIsUnsupported() {
        let bytes = rawIPv6Packet(nextHeader: IPProtocol.hopByHop, payload: payload, payloadLength: 0)
        #expect(parseIPv6(bytes).failure == .unsupported)
    }

    @Test func v4MappedAddressesAreRefused() {
        let mapped = IPAddress(IPv4Address(10, 0, 0, 1))
        #expect(parseIPv6(rawIPv6Packet(nextHeader: 6, payload: payload, source: mapped)).failure == .unsupported)
        #expect(parseIPv6(rawIPv6Packet(nextHeader: 6, payload: payload, destination: mapped)).failure == .unsupported)
        // A multicast source is the stack's to refuse, not the parser's.
        let multicast = rawIPv6Packet(nextHeader: 6, payload: payload, source: .allNodes)
        #expect(parseIPv6(multicast).success?.header.source == .allNodes)
    }

    @Test func hopByHopIsSkippedOnlyFirst() throws {
        let first = rawIPv6Packet(
            nextHeader: IPProtocol.hopByHop, extensions: paddingOptionsHeader(next: IPProtocol.tcp), payload: payload)
        let (header, body) = try #require(parseIPv6(first).success)
        #expect(header.nextHeader == IPProtocol.hopByHop)
        #expect(header.upperProtocol == IPProtocol.tcp)
        #expect(header.extensionHeaderLength == 8)
        #expect(body == payload)

        let second = rawIPv6Packet(
            nextHeader: IPProtocol.destinationOptions,
            extensions: paddingOptionsHeader(next: IPProtocol.hopByHop) + paddingOptionsHeader(next: IPProtocol.tcp),
            payload: payload)
        #expect(parseIPv6(second).failure == .badOption)
    }

    @Test func routingHeaderNeedsNoSegmentsLeft() throws {
        let done = rawIPv6Packet(
            nextHeader: IPProtocol.routing, extensions: routingHeader(next: IPProtocol.udp, segmentsLeft: 0),
            payload: payload)
        let (header, body) = try #require(parseIPv6(done).success)
        #expect(header.upperProtocol == IPProtocol.udp)
        #expect(header.extensionHeaderLength == 8)
        #expect(body == payload)
        let transit = rawIPv6Packet(
            nextHeader: IPProtocol.routing, extensions: routingHeader(next: IPProtocol.udp, segmentsLeft: 1),
            payload: payload)
        #expect(parseIPv6(transit).failure == .unsupported)
    }

    @Test func destinationOptionsOfAnyLengthAreSkipped() throws {
        // Header extension length 2: 24 bytes, options Pad1, Pad1, PadN(18), and an unknown
        // type 0x1e whose high bits 00 say "skip me".
        var options: [UInt8] = [IPProtocol.tcp, 2, 0, 0, 1, 14] + [UInt8](repeating: 0, count: 14)
        options += [0x1E, 2, 0xAB, 0xCD]
        #expect(options.count == 24)
        let bytes = rawIPv6Packet(nextHeader: IPProtocol.destinationOptions, extensions: options, payload: payload)
        let (header, body) = try #require(parseIPv6(bytes).success)
        #expect(header.upperProtocol == IPProtocol.tcp)
        #expect(header.extensionHeaderLength == 24)
        #expect(body == payload)
    }

    @Test func optionsThatMustBeDiscardedAreRefused() {
        for type: UInt8 in [0x40, 0x80, 0xC2, 0xFF] {
            let options: [UInt8] = [IPProtocol.tcp, 0, type, 4, 0, 0, 0, 0]
            let bytes = rawIPv6Packet(nextHeader: IPProtocol.destinationOptions, extensions: options, payload: payload)
            #expect(parseIPv6(bytes).failure == .badOption, "type \(type)")
        }
        // PadN claiming 5 bytes where 4 remain; a lone length-less byte at the end.
        for options: [UInt8] in [[6, 0, 1, 5, 0, 0, 0, 0], [6, 0, 0, 0, 0, 0, 0, 1]] {
            let bytes = rawIPv6Packet(nextHeader: IPProtocol.hopByHop, extensions: options, payload: payload)
            #expect(parseIPv6(bytes).failure == .badOption)
        }
        // Router Alert (type 5, used by MLD) is fine.
        let alert: [UInt8] = [IPProtocol.icmpv6, 0, 5, 2, 0, 0, 1, 0]
        let bytes = rawIPv6Packet(nextHeader: IPProtocol.hopByHop, extensions: alert, payload: payload)
        #expect(parseIPv6(bytes).success?.header.upperProtocol == IPProtocol.icmpv6)
    }

    @Test func extensionHeadersMustFit() {
        // Claims 16 bytes; only 8 are in the payload.
        let long = rawIPv6Packet(
            nextHeader: IPProtocol.destinationOptions, extensions: [6, 1, 1, 4, 0, 0, 0, 0], payload: [])
        #expect(parseIPv6(long).failure == .truncated)
        // A payload too short for even the first 8 bytes of an extension header.
        let short = rawIPv6Packet(nextHeader: IPProtocol.hopByHop, extensions: [6, 0, 1, 2], payload: [])
        #expect(parseIPv6(short).failure == .truncated)
        // The bytes are in the buffer, but past the payload length.
        let cut = rawIPv6Packet(
            nextHeader: IPProtocol.hopByHop, extensions: paddingOptionsHeader(next: 6), payload: [], padding: 8,
            payloadLength: 4)
        #expect(parseIPv6(cut).failure == .truncated)
    }

    @Test func chainIsCapped() throws {
        func chain(_ count: Int) -> [UInt8] {
            var extensions: [UInt8] = []
            for index in 0..<count {
                extensions += paddingOptionsHeader(next: index == count - 1 ? IPProtocol.tcp : 60)
            }
            return rawIPv6Packet(nextHeader: IPProtocol.destinationOptions, extensions: extensions, payload: payload)
        }
        let (header, body) = try #require(parseIPv6(chain(IPv6Header.maximumExtensionHeaders)).success)
        #expect(header.extensionHeaderLength == 8 * IPv6Header.maximumExtensionHeaders)
        #expect(body == payload)
        #expect(parseIPv6(chain(IPv6Header.maximumExtensionHeaders + 1)).failure == .unsupported)
    }

    @Test func fragmentsAreNotReassembled() {
        let fragment: [UInt8] = [IPProtocol.tcp, 0, 0, 0, 0, 0, 0, 1]
        #expect(parseIPv6(rawIPv6Packet(nextHeader: 44, extensions: fragment, payload: payload)).failure == .fragmented)
        let afterOptions = rawIPv6Packet(
            nextHeader: IPProtocol.hopByHop, extensions: paddingOptionsHeader(next: IPProtocol.fragment) + fragment,
            payload: payload)
        #expect(parseIPv6(afterOptions).failure == .fragmented)
    }

    @Test func noNextHeaderHasNoPayload() throws {
        let bytes = rawIPv6Packet(
            nextHeader: IPProtocol.destinationOptions, extensions: paddingOptionsHeader(next: IPProtocol.noNextHeader),
            payload: payload)
        let (header, body) = try #require(parseIPv6(bytes).success)
        #expect(header.upperProtocol == IPProtocol.noNextHeader)
        #expect(header.extensionHeaderLength == 8)
        #expect(body.isEmpty)
        let bare = try #require(parseIPv6(rawIPv6Packet(nextHeader: 59, payload: payload)).success)
        #expect(bare.header.upperProtocol == 59 && bare.payload.isEmpty)
    }

    @Test func otherProtocolsAreReturned() throws {
        for proto: UInt8 in [50, 51, 17, 58, 253] {
            let (header, body) = try #require(parseIPv6(rawIPv6Packet(nextHeader: proto, payload: payload)).success)
            #expect(header.upperProtocol == proto)
            #expect(body == payload)
        }
    }

    /// A packet using every skippable extension header.
    var chained: [UInt8] {
        rawIPv6Packet(
            nextHeader: IPProtocol.hopByHop,
            extensions: paddingOptionsHeader(next: IPProtocol.routing)
                + routingHeader(next: IPProtocol.destinationOptions, segmentsLeft: 0)
                + paddingOptionsHeader(next: IPProtocol.tcp),
            payload: payload)
    }

    @Test func everyTruncationThrows() throws {
        let bytes = chained
        let (header, body) = try #require(parseIPv6(bytes).success)
        #expect(header.extensionHeaderLength == 24 && body == payload)
        for length in 0..<bytes.count {
            #expect(parseIPv6(Array(bytes[0..<length])).failure == .truncated, "length \(length)")
        }
    }

    @Test func everyPayloadLengthIsSafe() {
        // The length field alone shrinking: the walk must stay inside it.
        var bytes = chained
        for length in 1..<(bytes.count - 40) {
            put16(&bytes, UInt16(length), at: 4)
            switch parseIPv6(bytes) {
            case .success(let (header, body)):
                #expect(length >= 24)
                #expect(header.extensionHeaderLength + body.count == length)
            case .failure(let error):
                #expect(error == .truncated, "length \(length)")
            }
        }
    }

    @Test func mutationsNeverTrap() {
        var random = SplitMix64(seed: 0x6666)
        let good = chained
        for _ in 0..<20000 {
            var bytes = good
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                // Mostly hit the header and extension bytes, where the lengths are.
                let index = Int.random(in: 0..<min(bytes.count, 72), using: &random)
                bytes[index] = UInt8.random(in: 0...255, using: &random)
            }
            if Bool.random(using: &random) { bytes.removeLast(Int.random(in: 0..<bytes.count, using: &random)) }
            guard let (header, body) = parseIPv6(bytes).success else { continue }
            #expect(40 + header.extensionHeaderLength + body.count <= bytes.count)
            #expect(header.extensionHeaderLength + body.count <= Int(header.payloadLength))
            #expect(header.extensionHeaderLength <= 8 * 2048)
        }
    }
}
