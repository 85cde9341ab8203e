import Testing
import Wire

/// A small seeded generator (SplitMix64) so random tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var result = [UInt8]()
        result.reserveCapacity(count)
        while result.count < count {
            var word = next()
            for _ in 0..<min(8, count - result.count) {
                result.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return result
    }
}

/// Runs a typed-throwing parse and keeps its outcome as a value.
func outcome<T>(_ body: () throws(WireError) -> T) -> Result<T, WireError> {
    do {
        return .success(try body())
    } catch {
        return .failure(error)
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
    var success: Success? {
        if case .success(let value) = self { return value }
        return nil
    }
}

/// The Internet checksum the slow, obvious way: 16-bit big-endian words, fold at the end.
func referenceChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt64 = 0
    var index = 0
    while index < bytes.count {
        let high = UInt64(bytes[index]) << 8
        let low = index + 1 < bytes.count ? UInt64(bytes[index + 1]) : 0
        sum += high | low
        index += 2
    }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

func put16(_ bytes: inout [UInt8], _ value: UInt16, at offset: Int) {
    bytes[offset] = UInt8(value >> 8)
    bytes[offset + 1] = UInt8(truncatingIfNeeded: value)
}

func put32(_ bytes: inout [UInt8], _ value: UInt32, at offset: Int) {
    put16(&bytes, UInt16(value >> 16), at: offset)
    put16(&bytes, UInt16(truncatingIfNeeded: value), at: offset + 2)
}

func get16(_ bytes: [UInt8], at offset: Int) -> UInt16 {
    UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
}

let clientIP = IPv4Address(10, 0, 0, 1)
let serverIP = IPv4Address(10, 0, 0, 2)

/// Pseudo-header bytes for TCP checksums computed by `referenceChecksum`.
func pseudoHeaderBytes(source: IPv4Address, destination: IPv4Address, length: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 12)
    put32(&bytes, source.rawValue, at: 0)
    put32(&bytes, destination.rawValue, at: 4)
    bytes[9] = 6
    put16(&bytes, UInt16(length), at: 10)
    return bytes
}

/// A hand-built TCP segment with arbitrary option bytes (length a multiple of 4) and a
/// correct checksum, for feeding malformed options to the parser.
func rawSegment(
    options: [UInt8], payload: [UInt8] = [], flags: UInt8 = 0x10, source: IPv4Address = clientIP,
    destination: IPv4Address = serverIP
) -> [UInt8] {
    precondition(options.count % 4 == 0 && options.count <= 40)
    var bytes = [UInt8](repeating: 0, count: 20)
    put16(&bytes, 40000, at: 0)
    put16(&bytes, 80, at: 2)
    put32(&bytes, 1000, at: 4)
    put32(&bytes, 2000, at: 8)
    bytes[12] = UInt8((20 + options.count) / 4) << 4
    bytes[13] = flags
    put16(&bytes, 65535, at: 14)
    bytes += options + payload
    let sum = referenceChecksum(
        pseudoHeaderBytes(source: source, destination: destination, length: bytes.count) + bytes)
    put16(&bytes, sum, at: 16)
    return bytes
}

/// Builds a segment with the public builder into a fresh array.
func builtSegment(
    options: TCPOptions, payload: [UInt8] = [], split: Int? = nil, flags: TCPFlags = [.ack], capacity: Int = 2048
) -> [UInt8] {
    var buffer = [UInt8](repeating: 0xEE, count: capacity)
    let cut = split ?? payload.count
    let written = buffer.withUnsafeMutableBytes { out in
        payload.withUnsafeBytes { all in
            TCPHeader.write(
                to: out, sourcePort: 40000, destinationPort: 80, sequenceNumber: 0x0102_0304,
                acknowledgmentNumber: 0xA0B0_C0D0, flags: flags, window: 29200, urgentPointer: 0,
                options: options, payload: UnsafeRawBufferPointer(rebasing: all[0..<cut]),
                UnsafeRawBufferPointer(rebasing: all[cut...]), source: IPAddress(clientIP),
                destination: IPAddress(serverIP))
        }
    }
    return Array(buffer[0..<written])
}

/// Parses a TCP segment held in an array; payload copied out.
func parseSegment(
    _ bytes: [UInt8], verifyChecksum: Bool = true, source: IPv4Address = clientIP,
    destination: IPv4Address = serverIP
) -> Result<(header: TCPHeader, payload: [UInt8]), WireError> {
    bytes.withUnsafeBytes { raw in
        outcome { () throws(WireError) in
            let (header, payload) = try TCPHeader.parse(
                raw, source: source, destination: destination, verifyChecksum: verifyChecksum)
            return (header, Array(payload))
        }
    }
}
