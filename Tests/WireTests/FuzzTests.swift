import Testing
import Wire

/// Random bytes into every parser: nothing may trap, and whatever parses must describe
/// itself consistently (payload inside the input, lengths within their bounds).
@Suite struct FuzzTests {
    /// Checks one buffer against every parser; returns how many parses succeeded.
    func feed(_ raw: UnsafeRawBufferPointer) -> Int {
        var accepted = 0
        let end = raw.baseAddress.map { $0 + raw.count }

        func inside(_ payload: UnsafeRawBufferPointer) -> Bool {
            guard payload.count > 0 else { return true }
            guard let start = raw.baseAddress, let base = payload.baseAddress, let end else { return false }
            return base >= start && base + payload.count <= end
        }

        if let (_, payload) = outcome({ () throws(WireError) in try EthernetHeader.parse(raw) }).success {
            #expect(inside(payload) && payload.count == raw.count - 14)
            accepted += 1
        }
        if outcome({ () throws(WireError) in try ARPPacket.parse(raw) }).success != nil { accepted += 1 }
        for verify in [true, false] {
            if let (header, payload) = outcome({ () throws(WireError) in
                try IPv4Header.parse(raw, verifyChecksum: verify)
            })
            .success {
                #expect(inside(payload))
                #expect(header.headerLength >= 20 && header.headerLength <= 60)
                #expect(header.headerLength + payload.count == Int(header.totalLength))
                #expect(!header.moreFragments && header.fragmentOffset == 0)
                accepted += 1
            }
            if let (header, payload) = outcome({ () throws(WireError) in
                try TCPHeader.parse(raw, source: clientIP, destination: serverIP, verifyChecksum: verify)
            }).success {
                #expect(inside(payload))
                #expect(header.headerLength >= 20 && header.headerLength <= 60)
                #expect(header.headerLength + payload.count == raw.count)
                #expect(header.options.sackBlocks.count <= 4)
                #expect((header.options.windowScale ?? 0) <= 14)
                accepted += 1
            }
            if outcome({ () throws(WireError) in try ICMPHeader.parse(raw, verifyChecksum: verify) }).success != nil {
                accepted += 1
            }
            if let (_, payload) = outcome({ () throws(WireError) in try ICMPEcho.parse(raw, verifyChecksum: verify) })
                .success
            {
                #expect(inside(payload) && payload.count == raw.count - 8)
                accepted += 1
            }
        }
        let optionBytes = UnsafeRawBufferPointer(rebasing: raw[0..<min(raw.count, 40)])
        if let options = outcome({ () throws(WireError) in try TCPOptions.parse(optionBytes) }).success {
            // Whatever parsed must re-encode and parse back the same (minus dropped blocks).
            var buffer = [UInt8](repeating: 0, count: 40)
            let length = buffer.withUnsafeMutableBytes { options.encode(to: $0) }
            let again = buffer.withUnsafeBytes { out in
                outcome { () throws(WireError) in
                    try TCPOptions.parse(UnsafeRawBufferPointer(rebasing: out[0..<length]))
                }
            }
            var expected = options
            expected.sackBlocks = blocks(0)
            for index in 0..<options.encodedSACKBlockCount { expected.sackBlocks.append(options.sackBlocks[index]) }
            #expect(again.success == expected)
            accepted += 1
        }
        return accepted
    }

    /// Bends random bytes toward plausible headers so the deeper checks get exercised.
    func shape(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        guard !bytes.isEmpty else { return }
        switch random.next() % 4 {
        case 0:  // IPv4: version 4, some IHL, total length near the buffer length
            bytes[0] = 0x40 | UInt8(5 + random.next() % 11)
            if bytes.count >= 4 { put16(&bytes, UInt16(bytes.count - Int(random.next() % 4)), at: 2) }
            if bytes.count >= 8 && random.next() % 2 == 0 { put16(&bytes, 0x4000, at: 6) }
        case 1:  // TCP: data offset 5...15, options made of plausible kinds
            if bytes.count >= 13 { bytes[12] = UInt8(5 + random.next() % 11) << 4 }
            let kinds: [UInt8] = [0, 1, 2, 3, 4, 5, 8, 99]
            var index = 20
            while index + 1 < bytes.count {
                bytes[index] = kinds[Int(random.next() % UInt64(kinds.count))]
                bytes[index + 1] = UInt8(random.next() % 20)
                index += 2 + Int(random.next() % 10)
            }
        case 2:  // ARP-like
            let prefix: [UInt8] = [0, 1, 8, 0, 6, 4, 0, UInt8(random.next() % 3)]
            for index in 0..<min(prefix.count, bytes.count) { bytes[index] = prefix[index] }
        default:  // ICMP echo-ish: fix up the checksum half the time
            bytes[0] = random.next() % 2 == 0 ? 8 : 0
            if bytes.count >= 4 && random.next() % 2 == 0 {
                bytes[2] = 0
                bytes[3] = 0
                put16(&bytes, referenceChecksum(bytes), at: 2)
            }
        }
    }

    @Test func randomBuffersNeverTrap() {
        var random = SplitMix64(seed: 0x5EED)
        var accepted = 0
        for round in 0..<100_000 {
            var bytes = random.bytes(Int(random.next() % 201))
            if round % 2 == 1 { shape(&bytes, &random) }
            accepted += bytes.withUnsafeBytes { feed($0) }
        }
        // The shaped half must reach past the first checks, or the fuzzing is shallow.
        #expect(accepted > 10_000)
    }

    @Test func emptyAndNilBuffersAreTruncated() {
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        #expect(outcome { () throws(WireError) in try EthernetHeader.parse(empty).header }.failure == .truncated)
        #expect(outcome { () throws(WireError) in try ARPPacket.parse(empty) }.failure == .truncated)
        #expect(outcome { () throws(WireError) in try IPv4Header.parse(empty).header }.failure == .truncated)
        #expect(outcome { () throws(WireError) in try ICMPHeader.parse(empty) }.failure == .truncated)
        #expect(outcome { () throws(WireError) in try ICMPEcho.parse(empty).header }.failure == .truncated)
        #expect(
            outcome { () throws(WireError) in
                try TCPHeader.parse(empty, source: clientIP, destination: serverIP).header
            }.failure == .truncated)
        #expect(outcome { () throws(WireError) in try TCPOptions.parse(empty) }.success == TCPOptions())
    }
}
