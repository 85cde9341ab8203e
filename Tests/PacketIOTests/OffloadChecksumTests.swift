import PacketIO
import Testing
import Wire

@Suite struct OffloadChecksumTests {
    /// An Ethernet + IPv4 + UDP/TCP frame with a garbage L4 checksum.
    func frame(protocol proto: UInt8, payload: Int) -> [UInt8] {
        let l4Header = proto == 6 ? 20 : 8
        var bytes = [UInt8](repeating: 0, count: 14 + 20 + l4Header + payload)
        bytes[12] = 0x08
        bytes[14] = 0x45
        let total = 20 + l4Header + payload
        bytes[16] = UInt8(total >> 8)
        bytes[17] = UInt8(total & 0xFF)
        bytes[23] = proto
        bytes[26...29] = [10, 0, 0, 1]
        bytes[30...33] = [10, 0, 0, 2]
        if proto == 17 {
            bytes[38] = UInt8((8 + payload) >> 8)
            bytes[39] = UInt8((8 + payload) & 0xFF)
            bytes[40] = 0xAB
        } else if proto == 6 {
            bytes[46] = 0x50
            bytes[50] = 0xAB
        }
        for i in 0..<payload { bytes[14 + 20 + l4Header + i] = UInt8(truncatingIfNeeded: i &* 7 &+ 1) }
        return bytes
    }

    func verifies(_ bytes: [UInt8], proto: UInt8) -> Bool {
        bytes.withUnsafeBytes { raw in
            var sum = InternetChecksum.pseudoHeader(
                source: IPv4Address(10, 0, 0, 1), destination: IPv4Address(10, 0, 0, 2), protocol: proto,
                length: raw.count - 34)
            sum.add(UnsafeRawBufferPointer(rebasing: raw[34...]))
            return sum.isValid
        }
    }

    @Test(arguments: [UInt8(6), 17], [0, 1, 33, 1000])
    func completesTCPAndUDP(proto: UInt8, payload: Int) {
        var bytes = frame(protocol: proto, payload: payload)
        #expect(!verifies(bytes, proto: proto))
        let done = bytes.withUnsafeMutableBytes { OffloadChecksum.completeIPv4(frame: $0) }
        #expect(done)
        #expect(verifies(bytes, proto: proto))
    }

    @Test func leavesOtherFramesAlone() {
        var icmp = frame(protocol: 1, payload: 8)
        let before = icmp
        #expect(!icmp.withUnsafeMutableBytes { OffloadChecksum.completeIPv4(frame: $0) })
        #expect(icmp == before)
        var truncated = Array(frame(protocol: 17, payload: 100).prefix(60))
        #expect(!truncated.withUnsafeMutableBytes { OffloadChecksum.completeIPv4(frame: $0) })
        var fragment = frame(protocol: 17, payload: 10)
        fragment[20] = 0x20  // more fragments
        #expect(!fragment.withUnsafeMutableBytes { OffloadChecksum.completeIPv4(frame: $0) })
        var tiny: [UInt8] = [1, 2, 3]
        #expect(!tiny.withUnsafeMutableBytes { OffloadChecksum.completeIPv4(frame: $0) })
    }
}
