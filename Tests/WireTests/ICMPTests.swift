import Testing
import Wire

func parseEcho(_ bytes: [UInt8]) -> Result<(header: ICMPEcho, payload: [UInt8]), WireError> {
    bytes.withUnsafeBytes { raw in
        outcome { () throws(WireError) in
            let (echo, payload) = try ICMPEcho.parse(raw)
            return (echo, Array(payload))
        }
    }
}

@Suite struct ICMPTests {
    let data: [UInt8] = (0..<55).map { UInt8(truncatingIfNeeded: $0 &* 13) }

    func request() -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 8 + data.count)
        let written = buffer.withUnsafeMutableBytes { out in
            data.withUnsafeBytes { payload in
                ICMPEcho.write(
                    to: out, type: ICMPType.echoRequest, identifier: 0xBEEF, sequence: 42, payload: payload)
            }
        }
        #expect(written == 8 + data.count)
        return buffer
    }

    @Test func requestRoundTrips() throws {
        let bytes = request()
        #expect(bytes[0] == 8 && bytes[1] == 0)
        #expect(referenceChecksum(bytes) == 0)
        let (echo, payload) = try #require(parseEcho(bytes).success)
        #expect(echo == ICMPEcho(type: 8, code: 0, identifier: 0xBEEF, sequence: 42))
        #expect(payload == data)
    }

    @Test func replyIsBuiltInPlace() throws {
        var bytes = request()
        let echo = try #require(parseEcho(bytes).success?.header)
        let written = bytes.withUnsafeMutableBytes { buffer in
            // The request's data, still in the same buffer, becomes the reply's data.
            let payload = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[8...])
            return ICMPEcho.writeReply(to: buffer, for: echo, payload: payload)
        }
        #expect(written == bytes.count)
        let (reply, payload) = try #require(parseEcho(bytes).success)
        #expect(reply == ICMPEcho(type: 0, identifier: 0xBEEF, sequence: 42))
        #expect(payload == data)
    }

    @Test func replyIntoSeparateBuffer() throws {
        let bytes = request()
        var out = [UInt8](repeating: 0xFF, count: 200)
        let written = out.withUnsafeMutableBytes { buffer in
            data.withUnsafeBytes { payload in
                ICMPEcho.writeReply(
                    to: buffer, for: ICMPEcho(type: 8, identifier: 0xBEEF, sequence: 42), payload: payload)
            }
        }
        #expect(written == bytes.count)
        let (reply, payload) = try #require(parseEcho(Array(out[0..<written])).success)
        #expect(reply.type == ICMPType.echoReply && reply.sequence == 42)
        #expect(payload == data)
        var small = [UInt8](repeating: 0, count: 8 + data.count - 1)
        #expect(
            small.withUnsafeMutableBytes { buffer in
                data.withUnsafeBytes { ICMPEcho.writeReply(to: buffer, for: reply, payload: $0) }
            } == 0)
    }

    @Test func corruptionIsCaught() {
        let good = request()
        for bit in 0..<(good.count * 8) {
            var bytes = good
            bytes[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(parseEcho(bytes).failure == .badChecksum, "bit \(bit)")
        }
        for length in 0..<8 {
            #expect(parseEcho(Array(good[0..<length])).failure != nil, "length \(length)")
        }
    }

    @Test func otherTypesParseOnlyAsICMPHeader() {
        // Destination unreachable, port unreachable, with 8 bytes of quoted header.
        var bytes: [UInt8] = [3, 3, 0, 0, 0, 0, 0, 0, 0x45, 0, 0, 28, 0, 0, 0, 0]
        put16(&bytes, referenceChecksum(bytes), at: 2)
        #expect(parseEcho(bytes).failure == .unsupported)
        let header = bytes.withUnsafeBytes { raw in outcome { () throws(WireError) in try ICMPHeader.parse(raw) } }
        #expect(header.success?.type == ICMPType.destinationUnreachable)
        #expect(header.success?.code == 3)
        bytes[5] ^= 0x80
        let corrupted = bytes.withUnsafeBytes { raw in outcome { () throws(WireError) in try ICMPHeader.parse(raw) } }
        #expect(corrupted.failure == .badChecksum)
        let short: [UInt8] = [0, 0, 0xFF]
        let truncated = short.withUnsafeBytes { raw in outcome { () throws(WireError) in try ICMPHeader.parse(raw) } }
        #expect(truncated.failure == .truncated)
    }
}
