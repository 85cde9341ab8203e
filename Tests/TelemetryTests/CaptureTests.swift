import Telemetry
import Testing

@Suite struct CaptureRingTests {
    func frame(_ length: Int, _ fill: UInt8) -> [UInt8] { [UInt8](repeating: fill, count: length) }

    @Test func framesComeOutInOrderWithTheirDetails() {
        let ring = CaptureRing(capacity: 1 << 16, snapLength: 100)
        frame(60, 1).withUnsafeBytes { ring.record($0, direction: .inbound, timestamp: 10) }
        frame(300, 2).withUnsafeBytes { ring.record($0, direction: .outbound, timestamp: 11, checksumPending: true) }
        var seen: [(Int, Int, UInt64, CaptureRing.Direction, Bool, UInt8)] = []
        #expect(
            ring.drain {
                seen.append(
                    ($0.bytes.count, $0.originalLength, $0.timestamp, $0.direction, $0.checksumPending, $0.bytes[0]))
            } == 2)
        #expect(seen.count == 2)
        #expect(seen[0] == (60, 60, 10, .inbound, false, 1))
        // Cut at the snap length, the original length kept.
        #expect(seen[1] == (100, 300, 11, .outbound, true, 2))
        #expect(ring.drain { _ in } == 0)
        #expect(ring.framesCaptured == 2)
    }

    @Test func aFullRingDropsAndCountsAndWrapsAroundAfterADrain() {
        let ring = CaptureRing(capacity: 1 << 16, snapLength: 2000)
        // 1,500-byte frames take 1,528 bytes each: 42 fit in 64 KiB.
        var recorded = 0
        for i in 0..<100 {
            frame(1500, UInt8(i)).withUnsafeBytes { ring.record($0, direction: .inbound, timestamp: UInt64(i)) }
            recorded += 1
        }
        #expect(ring.framesCaptured == 42)
        #expect(ring.framesDropped == 58)
        var stamps: [UInt64] = []
        ring.drain { stamps.append($0.timestamp) }
        #expect(stamps == Array(0..<42))
        // Many rounds across the end of the buffer: every frame intact, in order.
        var next: UInt64 = 1000
        var expected: UInt64 = 1000
        for _ in 0..<50 {
            for _ in 0..<7 {
                frame(900, UInt8(next & 0xFF)).withUnsafeBytes {
                    ring.record($0, direction: .outbound, timestamp: next)
                }
                next += 1
            }
            ring.drain { f in
                #expect(f.timestamp == expected)
                #expect(f.bytes.allSatisfy { $0 == UInt8(expected & 0xFF) })
                expected += 1
            }
        }
        #expect(expected == next)
        #expect(ring.framesDropped == 58)
    }
}

@Suite struct PcapngTests {
    func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }

    /// Walks the blocks: each total length repeated at its end, a multiple of 4.
    func blocks(_ bytes: [UInt8]) -> [(type: UInt32, body: ArraySlice<UInt8>)] {
        var out: [(UInt32, ArraySlice<UInt8>)] = []
        var at = 0
        while at < bytes.count {
            let length = Int(u32(bytes, at + 4))
            #expect(length % 4 == 0 && length >= 12)
            #expect(u32(bytes, at + length - 4) == UInt32(length))
            out.append((u32(bytes, at), bytes[(at + 8)..<(at + length - 4)]))
            at += length
        }
        #expect(at == bytes.count)
        return out
    }

    @Test func aFileIsASectionAnInterfaceAndPacketsWithDirections() {
        var bytes = Pcapng.fileHeader(
            interfaceName: "veth0", description: "preload pid 1 instance 0", snapLength: 65535)
        let frame: [UInt8] = Array(0..<61)
        frame.withUnsafeBytes {
            Pcapng.appendPacket($0, originalLength: 61, timestamp: 0x1_0000_0002, inbound: true, to: &bytes)
            Pcapng.appendPacket($0, originalLength: 1000, timestamp: 3, inbound: false, to: &bytes)
        }
        let found = blocks(bytes)
        #expect(found.map(\.type) == [0x0A0D_0D0A, 1, 6, 6])
        let shb = Array(found[0].body)
        #expect(u32(shb, 0) == 0x1A2B_3C4D)
        let idb = Array(found[1].body)
        #expect(idb[0] == 1 && idb[1] == 0)  // LINKTYPE_ETHERNET
        #expect(u32(idb, 4) == 65535)
        let epb = Array(found[2].body)
        #expect(u32(epb, 0) == 0)
        #expect(u32(epb, 4) == 1 && u32(epb, 8) == 2)  // timestamp high and low
        #expect(u32(epb, 12) == 61 && u32(epb, 16) == 61)
        #expect(Array(epb[20..<81]) == frame)
        // epb_flags after the padded data: code 2, length 4, inbound (1).
        #expect(epb[84] == 2 && epb[86] == 4 && u32(epb, 88) == 1)
        let second = Array(found[3].body)
        #expect(u32(second, 16) == 1000)
        #expect(u32(second, 88) == 2)
    }
}
