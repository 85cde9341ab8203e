import Testing
import Wire

let linkLocalA = IPAddress(0xFE80, 0, 0, 0, 0, 0, 0, 1)
let linkLocalB = IPAddress(0xFE80, 0, 0, 0, 0, 0, 0, 2)
let testMAC = MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56)

/// The ICMPv6 checksum the slow way: RFC 8200 8.1's pseudo-header bytes, then the message.
func referenceICMPv6Checksum(_ message: [UInt8], source: IPAddress, destination: IPAddress) -> UInt16 {
    var pseudo = v6Bytes(source) + v6Bytes(destination) + [0, 0, 0, 0, 0, 0, 0, 58]
    put32(&pseudo, UInt32(message.count), at: 32)
    return referenceChecksum(pseudo + message)
}

/// `message` with a correct checksum stored.
func withICMPv6Checksum(_ message: [UInt8], source: IPAddress, destination: IPAddress) -> [UInt8] {
    var bytes = message
    put16(&bytes, 0, at: 2)
    put16(&bytes, referenceICMPv6Checksum(bytes, source: source, destination: destination), at: 2)
    return bytes
}

func parseICMPv6Header(
    _ bytes: [UInt8], source: IPAddress, destination: IPAddress
) -> Result<ICMPv6Header, WireError> {
    bytes.withUnsafeBytes { raw in
        outcome { () throws(WireError) in try ICMPv6Header.parse(raw, source: source, destination: destination) }
    }
}

func parseEcho6(
    _ bytes: [UInt8], source: IPAddress = linkLocalA, destination: IPAddress = linkLocalB, verifyChecksum: Bool = true
) -> Result<(header: ICMPv6Echo, payload: [UInt8]), WireError> {
    bytes.withUnsafeBytes { raw in
        outcome { () throws(WireError) in
            let (echo, payload) = try ICMPv6Echo.parse(
                raw, source: source, destination: destination, verifyChecksum: verifyChecksum)
            return (echo, Array(payload))
        }
    }
}

/// Runs a writer into a fresh buffer of `capacity` bytes and keeps what it wrote.
func written(capacity: Int = 256, _ body: (UnsafeMutableRawBufferPointer) -> Int) -> [UInt8] {
    var buffer = [UInt8](repeating: 0xEE, count: capacity)
    let count = buffer.withUnsafeMutableBytes(body)
    return Array(buffer[0..<count])
}

@Suite struct ICMPv6EchoTests {
    let data: [UInt8] = (0..<56).map { UInt8(truncatingIfNeeded: $0 &* 29) }

    func request() -> [UInt8] {
        written { out in
            data.withUnsafeBytes { payload in
                ICMPv6Echo.write(
                    to: out, type: ICMPv6Type.echoRequest, identifier: 0xBEEF, sequence: 7, payload: payload,
                    source: linkLocalA, destination: linkLocalB)
            }
        }
    }

    @Test func requestRoundTrips() throws {
        let bytes = request()
        #expect(bytes.count == 8 + data.count)
        #expect(bytes[0] == 128 && bytes[1] == 0)
        #expect(referenceICMPv6Checksum(bytes, source: linkLocalA, destination: linkLocalB) == 0)
        let header = try #require(parseICMPv6Header(bytes, source: linkLocalA, destination: linkLocalB).success)
        #expect(header == ICMPv6Header(type: 128, code: 0, checksum: get16(bytes, at: 2)))
        let (echo, payload) = try #require(parseEcho6(bytes).success)
        #expect(echo == ICMPv6Echo(type: 128, identifier: 0xBEEF, sequence: 7))
        #expect(payload == data)
    }

    @Test func checksumCoversTheAddresses() {
        let bytes = request()
        #expect(parseEcho6(bytes, source: v6Client).failure == .badChecksum)
        #expect(parseEcho6(bytes, destination: .allNodes).failure == .badChecksum)
        #expect(parseEcho6(bytes, destination: .allNodes, verifyChecksum: false).success != nil)
    }

    @Test func knownChecksums() throws {
        // Echo request fe80::1 -> fe80::2, id 0x1234, seq 1, data "abcd". The checksum was
        // computed apart from this code, in python3: the 40-byte pseudo-header (addresses,
        // 32-bit length 12, next header 58) and the message summed as big-endian 16-bit
        // words, carries folded, complemented: 0xabb8.
        let vector: [UInt8] = [128, 0, 0xAB, 0xB8, 0x12, 0x34, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64]
        #expect(parseICMPv6Header(vector, source: linkLocalA, destination: linkLocalB).success != nil)
        let built = written { out in
            Array("abcd".utf8).withUnsafeBytes { payload in
                ICMPv6Echo.write(
                    to: out, type: 128, identifier: 0x1234, sequence: 1, payload: payload, source: linkLocalA,
                    destination: linkLocalB)
            }
        }
        #expect(built == vector)

        // The same with data "abcde" (odd length), 2001:db8::1 -> 2001:db8::2: 0xe846 (python3).
        let odd = written { out in
            Array("abcde".utf8).withUnsafeBytes { payload in
                ICMPv6Echo.write(
                    to: out, type: 128, identifier: 0x1234, sequence: 1, payload: payload, source: v6Client,
                    destination: v6Server)
            }
        }
        #expect(get16(odd, at: 2) == 0xE846)

        // NS fe80::5054:ff:fe12:3456 -> ff02::1:ff00:2 for fe80::2 with source link-layer
        // 52:54:00:12:34:56: 0x7220 (python3, as above with length 32).
        let source = IPAddress.linkLocal(for: testMAC)
        let ns = written { out in
            NeighborSolicitation.write(
                to: out, target: linkLocalB, sourceLinkLayer: testMAC, source: source,
                destination: linkLocalB.solicitedNode)
        }
        #expect(get16(ns, at: 2) == 0x7220)
    }

    @Test func replyIsBuiltInPlace() throws {
        var bytes = request()
        let echo = try #require(parseEcho6(bytes).success?.header)
        let count = bytes.withUnsafeMutableBytes { buffer in
            let payload = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[8...])
            return ICMPv6Echo.writeReply(
                to: buffer, for: echo, payload: payload, source: linkLocalB, destination: linkLocalA)
        }
        #expect(count == bytes.count)
        let (reply, payload) = try #require(parseEcho6(bytes, source: linkLocalB, destination: linkLocalA).success)
        #expect(reply == ICMPv6Echo(type: ICMPv6Type.echoReply, identifier: 0xBEEF, sequence: 7))
        #expect(payload == data)
    }

    @Test func shortBuffersAndMessages() {
        let reply = ICMPv6Echo(type: 128, identifier: 1, sequence: 2)
        #expect(
            written(capacity: 8 + data.count - 1) { out in
                data.withUnsafeBytes {
                    ICMPv6Echo.writeReply(to: out, for: reply, payload: $0, source: linkLocalA, destination: linkLocalB)
                }
            }.isEmpty)
        let bytes = request()
        for length in 0..<4 {
            #expect(
                parseICMPv6Header(Array(bytes[0..<length]), source: linkLocalA, destination: linkLocalB).failure
                    == .truncated)
        }
        for length in 4..<8 {
            #expect(parseEcho6(Array(bytes[0..<length]), verifyChecksum: false).failure == .truncated)
        }
        let unreachable = withICMPv6Checksum(
            [1, 4, 0, 0, 0, 0, 0, 0], source: linkLocalA, destination: linkLocalB)
        #expect(parseEcho6(unreachable).failure == .unsupported)
        #expect(
            parseICMPv6Header(unreachable, source: linkLocalA, destination: linkLocalB).success
                == ICMPv6Header(type: 1, code: 4, checksum: get16(unreachable, at: 2)))
    }

    @Test func corruptionIsCaught() {
        let good = request()
        for bit in 0..<(good.count * 8) {
            var bytes = good
            bytes[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(parseEcho6(bytes).failure == .badChecksum, "bit \(bit)")
        }
    }
}

func parseNS(
    _ bytes: [UInt8], hopLimit: UInt8 = 255, source: IPAddress = linkLocalA,
    destination: IPAddress = linkLocalB.solicitedNode
) -> Result<NeighborSolicitation, WireError> {
    bytes.withUnsafeBytes { raw in
        outcome { () throws(WireError) in
            try NeighborSolicitation.parse(raw, hopLimit: hopLimit, source: source, destination: destination)
        }
    }
}

func parseNA(
    _ bytes: [UInt8], hopLimit: UInt8 = 255, source: IPAddress = linkLocalB, destination: IPAddress = linkLocalA
) -> Result<NeighborAdvertisement, WireError> {
    bytes.withUnsafeBytes { raw in
        outcome { () throws(WireError) in
            try NeighborAdvertisement.parse(raw, hopLimit: hopLimit, source: source, destination: destination)
        }
    }
}

func parseRA(
    _ bytes: [UInt8], hopLimit: UInt8 = 255, source: IPAddress = linkLocalB, destination: IPAddress = .allNodes
) -> Result<RouterAdvertisement, WireError> {
    bytes.withUnsafeBytes { raw in
        outcome { () throws(WireError) in
            try RouterAdvertisement.parse(raw, hopLimit: hopLimit, source: source, destination: destination)
        }
    }
}

@Suite struct NeighborDiscoveryTests {
    func solicitation(
        target: IPAddress = linkLocalB, mac: MACAddress? = testMAC, source: IPAddress = linkLocalA,
        destination: IPAddress = linkLocalB.solicitedNode
    ) -> [UInt8] {
        written { out in
            NeighborSolicitation.write(
                to: out, target: target, sourceLinkLayer: mac, source: source, destination: destination)
        }
    }

    func advertisement(
        router: Bool = false, solicited: Bool = true, override: Bool = true, target: IPAddress = linkLocalB,
        mac: MACAddress? = testMAC, destination: IPAddress = linkLocalA
    ) -> [UInt8] {
        written { out in
            NeighborAdvertisement.write(
                to: out, router: router, solicited: solicited, override: override, target: target,
                targetLinkLayer: mac, source: linkLocalB, destination: destination)
        }
    }

    @Test func solicitationRoundTrips() throws {
        let bytes = solicitation()
        #expect(bytes.count == 32)
        #expect(Array(bytes[0..<2]) == [135, 0] && Array(bytes[4..<8]) == [0, 0, 0, 0])
        #expect(Array(bytes[24..<32]) == [1, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
        #expect(
            referenceICMPv6Checksum(bytes, source: linkLocalA, destination: linkLocalB.solicitedNode) == 0)
        #expect(
            parseICMPv6Header(bytes, source: linkLocalA, destination: linkLocalB.solicitedNode).success?.type
                == ICMPv6Type.neighborSolicitation)
        #expect(parseNS(bytes).success == NeighborSolicitation(target: linkLocalB, sourceLinkLayer: testMAC))
        // Unicast (reachability confirmation) is fine too.
        #expect(parseNS(solicitation(destination: linkLocalB), destination: linkLocalB).success != nil)
    }

    @Test func duplicateAddressDetection() throws {
        let dad = solicitation(mac: nil, source: .unspecified)
        #expect(dad.count == 24)
        #expect(
            referenceICMPv6Checksum(dad, source: .unspecified, destination: linkLocalB.solicitedNode) == 0)
        #expect(
            parseNS(dad, source: .unspecified).success
                == NeighborSolicitation(target: linkLocalB, sourceLinkLayer: nil))
        // From ::, only to a solicited-node group.
        #expect(parseNS(dad, source: .unspecified, destination: .allNodes).failure == .unsupported)
        #expect(parseNS(dad, source: .unspecified, destination: linkLocalB).failure == .unsupported)
        // From :: with a source link-layer option: refused, whatever its size.
        let withOption = solicitation(source: .unspecified)
        #expect(parseNS(withOption, source: .unspecified).failure == .unsupported)
        let longOption = dad + [1, 2] + [UInt8](repeating: 0, count: 14)
        #expect(parseNS(longOption, source: .unspecified).failure == .unsupported)
    }

    @Test func solicitationValidity() {
        let bytes = solicitation()
        #expect(parseNS(bytes, hopLimit: 254).failure == .unsupported)
        #expect(parseNS(bytes, hopLimit: 64).failure == .unsupported)
        var code = bytes
        code[1] = 1
        #expect(parseNS(code).failure == .unsupported)
        var type = bytes
        type[0] = 136
        #expect(parseNS(type).failure == .unsupported)
        #expect(parseNS(Array(bytes[0..<23])).failure == .truncated)
        #expect(parseNS(solicitation(target: .allNodes)).failure == .unsupported)
        // Option length 0 would loop forever; one past the end reads past the message.
        var zero = bytes
        zero[25] = 0
        #expect(parseNS(zero).failure == .badOption)
        var long = bytes
        long[25] = 2
        #expect(parseNS(long).failure == .badOption)
        #expect(parseNS(bytes + [3]).failure == .badOption)
        #expect(parseNS(Array(bytes[0..<31])).failure == .badOption)
    }

    @Test func solicitationOptionsSkippedOrIgnored() throws {
        let base = solicitation(mac: nil)
        // An unknown option, then a link-layer option of another link's size: both skipped.
        let odd = base + [200, 1, 9, 9, 9, 9, 9, 9] + [1, 2] + [UInt8](repeating: 7, count: 14)
        #expect(parseNS(odd).success == NeighborSolicitation(target: linkLocalB, sourceLinkLayer: nil))
        // With an Ethernet one after them, that one is kept.
        let later = odd + [1, 1, 2, 0, 0, 0, 0, 9]
        #expect(parseNS(later).success?.sourceLinkLayer == MACAddress(2, 0, 0, 0, 0, 9))
    }

    @Test func advertisementRoundTrips() throws {
        for flags in 0..<8 {
            let router = flags & 4 != 0
            let solicited = flags & 2 != 0
            let override = flags & 1 != 0
            let bytes = advertisement(router: router, solicited: solicited, override: override)
            #expect(bytes.count == 32)
            #expect(bytes[4] == UInt8(flags) << 5)
            #expect(Array(bytes[24..<26]) == [2, 1])
            #expect(referenceICMPv6Checksum(bytes, source: linkLocalB, destination: linkLocalA) == 0)
            #expect(
                parseNA(bytes).success
                    == NeighborAdvertisement(
                        router: router, solicited: solicited, override: override, target: linkLocalB,
                        targetLinkLayer: testMAC))
        }
        let bare = advertisement(mac: nil)
        #expect(bare.count == 24)
        #expect(parseNA(bare).success?.targetLinkLayer == nil)
    }

    @Test func advertisementValidity() {
        let bytes = advertisement()
        #expect(parseNA(bytes, hopLimit: 1).failure == .unsupported)
        var code = bytes
        code[1] = 3
        #expect(parseNA(code).failure == .unsupported)
        #expect(parseNA(Array(bytes[0..<20])).failure == .truncated)
        #expect(parseNA(advertisement(target: .allRouters)).failure == .unsupported)
        // Solicited to a multicast group: invalid; unsolicited (an announcement) is fine.
        let solicitedToAll = advertisement(solicited: true, destination: .allNodes)
        #expect(parseNA(solicitedToAll, destination: .allNodes).failure == .unsupported)
        let unsolicited = advertisement(solicited: false, destination: .allNodes)
        #expect(parseNA(unsolicited, destination: .allNodes).success?.solicited == false)
        var zero = bytes
        zero[25] = 0
        #expect(parseNA(zero).failure == .badOption)
        // A source link-layer option is not the target's.
        var wrongKind = bytes
        wrongKind[24] = 1
        #expect(parseNA(wrongKind).success?.targetLinkLayer == nil)
    }

    /// An RA from a router with two prefixes, the first of them link-local (to be ignored).
    func routerAdvertisement() -> [UInt8] {
        var bytes: [UInt8] = [134, 0, 0, 0, 64, 0xC0, 0x07, 0x08, 0, 0, 0x75, 0x30, 0, 0, 0x03, 0xE8]
        bytes += [1, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
        bytes += [5, 1, 0, 0, 0, 0, 0x05, 0xDC]
        func prefixOption(_ prefix: IPAddress, length: UInt8, flags: UInt8, valid: UInt32, preferred: UInt32) -> [UInt8]
        {
            var option: [UInt8] = [3, 4, length, flags] + [UInt8](repeating: 0, count: 12) + v6Bytes(prefix)
            put32(&option, valid, at: 4)
            put32(&option, preferred, at: 8)
            return option
        }
        bytes += prefixOption(IPAddress(0xFE80, 0, 0, 0, 0, 0, 0, 0), length: 64, flags: 0xC0, valid: 1, preferred: 1)
        bytes += prefixOption(
            IPAddress(0x2001, 0xDB8, 1, 0, 0, 0, 0, 0), length: 64, flags: 0xC0, valid: 2_592_000,
            preferred: 604_800)
        bytes += prefixOption(
            IPAddress(0x2001, 0xDB8, 2, 0, 0, 0, 0, 0), length: 64, flags: 0x40, valid: 9, preferred: 9)
        return withICMPv6Checksum(bytes, source: linkLocalB, destination: .allNodes)
    }

    @Test func routerAdvertisementParses() throws {
        let bytes = routerAdvertisement()
        #expect(
            parseICMPv6Header(bytes, source: linkLocalB, destination: .allNodes).success?.type
                == ICMPv6Type.routerAdvertisement)
        let ra = try #require(parseRA(bytes).success)
        #expect(
            ra
                == RouterAdvertisement(
                    currentHopLimit: 64, managed: true, other: true, routerLifetime: 0x0708, reachableTime: 30000,
                    retransmitTimer: 1000, sourceLinkLayer: testMAC, mtu: 1500,
                    prefix: IPAddress(0x2001, 0xDB8, 1, 0, 0, 0, 0, 0), prefixLength: 64, prefixOnLink: true,
                    prefixAutonomous: true, validLifetime: 2_592_000, preferredLifetime: 604_800, prefixCount: 3))
        // The bare fixed part.
        let bare = try #require(parseRA(Array(bytes[0..<16])).success)
        #expect(bare.sourceLinkLayer == nil && bare.mtu == nil && bare.prefix == nil && bare.prefixCount == 0)
        #expect(bare.routerLifetime == 0x0708)
    }

    @Test func routerAdvertisementValidity() {
        let bytes = routerAdvertisement()
        #expect(parseRA(bytes, source: v6Server).failure == .unsupported)
        #expect(parseRA(bytes, source: .unspecified).failure == .unsupported)
        #expect(parseRA(bytes, hopLimit: 254).failure == .unsupported)
        var code = bytes
        code[1] = 1
        #expect(parseRA(code).failure == .unsupported)
        #expect(parseRA(Array(bytes[0..<15])).failure == .truncated)
        var zero = bytes
        zero[17] = 0
        #expect(parseRA(zero).failure == .badOption)
        // The last prefix option's length, stretched past the end.
        var long = bytes
        long[bytes.count - 31] = 5
        #expect(parseRA(long).failure == .badOption)
        #expect(parseRA(Array(bytes[0..<(bytes.count - 1)])).failure == .badOption)
    }

    @Test func routerAdvertisementOddOptions() throws {
        var bytes: [UInt8] = [134, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        // MTU option with the wrong size, unknown option 25 (RDNSS), a prefix option of the
        // wrong size (counted but not kept), a prefix length over 128, one with neither flag.
        bytes += [5, 2] + [UInt8](repeating: 0xFF, count: 14)
        bytes += [25, 1, 0, 0, 0, 0, 0, 0]
        bytes += [3, 3] + [UInt8](repeating: 0, count: 22)
        bytes += [3, 4, 129, 0xC0] + [UInt8](repeating: 0, count: 12) + v6Bytes(v6Client)
        bytes += [3, 4, 64, 0x00] + [UInt8](repeating: 0, count: 12) + v6Bytes(v6Client)
        let ra = try #require(parseRA(bytes).success)
        #expect(ra.mtu == nil)
        #expect(ra.prefix == nil)
        #expect(ra.prefixCount == 3)
        #expect(ra.routerLifetime == 0)
    }

    @Test func routerSolicitation() {
        let bytes = written { out in
            RouterSolicitation.write(
                to: out, sourceLinkLayer: testMAC, source: linkLocalA, destination: .allRouters)
        }
        #expect(
            bytes
                == withICMPv6Checksum(
                    [133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56], source: linkLocalA,
                    destination: .allRouters))
        let bare = written { out in
            RouterSolicitation.write(to: out, sourceLinkLayer: nil, source: .unspecified, destination: .allRouters)
        }
        #expect(bare == withICMPv6Checksum([133, 0, 0, 0, 0, 0, 0, 0], source: .unspecified, destination: .allRouters))
    }

    @Test func writersRefuseShortBuffers() {
        #expect(
            written(capacity: 31) { out in
                NeighborSolicitation.write(
                    to: out, target: linkLocalB, sourceLinkLayer: testMAC, source: linkLocalA, destination: linkLocalB)
            }.isEmpty)
        #expect(
            written(capacity: 24) { out in
                NeighborSolicitation.write(
                    to: out, target: linkLocalB, sourceLinkLayer: nil, source: .unspecified, destination: linkLocalB)
            }.count == 24)
        #expect(
            written(capacity: 23) { out in
                NeighborAdvertisement.write(
                    to: out, router: false, solicited: false, override: false, target: linkLocalB,
                    targetLinkLayer: nil, source: linkLocalA, destination: linkLocalB)
            }.isEmpty)
        #expect(
            written(capacity: 15) { out in
                RouterSolicitation.write(
                    to: out, sourceLinkLayer: testMAC, source: linkLocalA, destination: .allRouters)
            }.isEmpty)
    }

    @Test func randomMessagesNeverTrap() {
        var random = SplitMix64(seed: 0x4861)
        for _ in 0..<20000 {
            var bytes = random.bytes(Int.random(in: 0..<80, using: &random))
            if bytes.count >= 2 {
                bytes[0] = [133, 134, 135, 136][Int.random(in: 0..<4, using: &random)]
                bytes[1] = 0
            }
            // Plausible option lengths so the option walk gets exercised.
            var offset = 16
            while offset + 1 < bytes.count {
                bytes[offset + 1] = UInt8.random(in: 0...3, using: &random)
                offset += max(8, Int(bytes[offset + 1]) * 8)
            }
            let source = Bool.random(using: &random) ? IPAddress.unspecified : linkLocalA
            _ = parseNS(bytes, source: source)
            _ = parseNA(bytes, destination: source == .unspecified ? .allNodes : linkLocalA)
            if let ra = parseRA(bytes).success {
                #expect(ra.prefixLength <= 128)
                #expect(ra.prefixCount <= bytes.count / 8)
            }
        }
    }
}
