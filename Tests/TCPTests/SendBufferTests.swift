import TCP
import Testing

/// Concatenates the two pieces of a ring view.
func joined(_ pieces: (UnsafeRawBufferPointer, UnsafeRawBufferPointer)) -> [UInt8] {
    Array(pieces.0) + Array(pieces.1)
}

@Suite struct SendBufferTests {
    @Test func appendPeekRemove() {
        var buffer = SendBuffer(capacity: 16)
        defer { buffer.deallocate() }
        #expect(buffer.capacity == 16)
        #expect(buffer.count == 0)
        #expect(buffer.freeSpace == 16)
        let data: [UInt8] = Array(0..<10)
        #expect(data.withUnsafeBytes { buffer.append($0) } == 10)
        #expect(buffer.count == 10)
        #expect(buffer.freeSpace == 6)
        #expect(joined(buffer.peek(offset: 0, length: 10)) == data)
        #expect(joined(buffer.peek(offset: 3, length: 4)) == [3, 4, 5, 6])
        #expect(buffer.peek(offset: 0, length: 10).1.count == 0)
        buffer.removeFirst(4)
        #expect(buffer.count == 6)
        #expect(joined(buffer.peek(offset: 0, length: 100)) == [4, 5, 6, 7, 8, 9])
    }

    @Test func appendStopsWhenFull() {
        var buffer = SendBuffer(capacity: 8)
        defer { buffer.deallocate() }
        let data: [UInt8] = Array(0..<12)
        #expect(data.withUnsafeBytes { buffer.append($0) } == 8)
        #expect(buffer.freeSpace == 0)
        #expect(data.withUnsafeBytes { buffer.append($0) } == 0)
        #expect(joined(buffer.peek(offset: 0, length: 8)) == Array(0..<8))
    }

    @Test func wrapsAroundTheEnd() {
        var buffer = SendBuffer(capacity: 8)
        defer { buffer.deallocate() }
        _ = [UInt8](0..<6).withUnsafeBytes { buffer.append($0) }
        buffer.removeFirst(5)
        // Head at index 5: appending 7 bytes fills indices 6, 7, then 0..4.
        #expect([UInt8](10..<17).withUnsafeBytes { buffer.append($0) } == 7)
        #expect(buffer.count == 8)
        let view = buffer.peek(offset: 0, length: 8)
        #expect(view.0.count == 3)
        #expect(view.1.count == 5)
        #expect(joined(view) == [5, 10, 11, 12, 13, 14, 15, 16])
        #expect(joined(buffer.peek(offset: 2, length: 3)) == [11, 12, 13])
        #expect(joined(buffer.peek(offset: 4, length: 2)) == [13, 14])
        #expect(buffer.peek(offset: 4, length: 2).1.count == 0)
    }

    @Test func clampsOutOfRangeRequests() {
        var buffer = SendBuffer(capacity: 8)
        defer { buffer.deallocate() }
        _ = [UInt8](0..<4).withUnsafeBytes { buffer.append($0) }
        #expect(joined(buffer.peek(offset: 2, length: 10)) == [2, 3])
        #expect(joined(buffer.peek(offset: 4, length: 1)).isEmpty)
        #expect(joined(buffer.peek(offset: 9, length: 1)).isEmpty)
        #expect(joined(buffer.peek(offset: -3, length: 2)) == [0, 1])
        buffer.removeFirst(100)
        #expect(buffer.count == 0)
        buffer.removeFirst(-1)
        #expect(buffer.count == 0)
    }

    @Test func resizeKeepsContent() {
        var buffer = SendBuffer(capacity: 8)
        defer { buffer.deallocate() }
        _ = [UInt8](0..<7).withUnsafeBytes { buffer.append($0) }
        buffer.removeFirst(5)
        _ = [UInt8](20..<25).withUnsafeBytes { buffer.append($0) }  // wraps
        #expect(buffer.resize(capacity: 6) == false)
        #expect(buffer.capacity == 8)
        #expect(buffer.resize(capacity: 32) == true)
        #expect(buffer.capacity == 32)
        #expect(joined(buffer.peek(offset: 0, length: 32)) == [5, 6, 20, 21, 22, 23, 24])
        #expect([UInt8](30..<40).withUnsafeBytes { buffer.append($0) } == 10)
        #expect(buffer.resize(capacity: 17) == true)
        #expect(joined(buffer.peek(offset: 0, length: 32)) == [5, 6, 20, 21, 22, 23, 24] + Array(30..<40))
        #expect(buffer.freeSpace == 0)
    }

    @Test func zeroCapacity() {
        var buffer = SendBuffer(capacity: 0)
        defer { buffer.deallocate() }
        #expect([UInt8](0..<4).withUnsafeBytes { buffer.append($0) } == 0)
        #expect(joined(buffer.peek(offset: 0, length: 4)).isEmpty)
        #expect(buffer.resize(capacity: 4) == true)
        #expect([UInt8](0..<4).withUnsafeBytes { buffer.append($0) } == 4)
    }

    /// Streams 200 KB through a small ring with random write and acknowledgment sizes.
    @Test func randomizedStreamThroughRing() {
        var rng = SplitMix64(seed: 7)
        var buffer = SendBuffer(capacity: 1_000)
        defer { buffer.deallocate() }
        let input = (0..<200_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        var written = 0
        var acknowledged = 0
        var wrapped = false
        while acknowledged < input.count {
            let chunk = Int(rng.next() % 700)
            let end = min(input.count, written + chunk)
            written += input[written..<end].withUnsafeBytes { buffer.append($0) }
            // Check a random window against the source, then acknowledge a random prefix.
            let offset = Int(rng.next() % UInt64(buffer.count + 1))
            let length = Int(rng.next() % 600)
            let view = buffer.peek(offset: offset, length: length)
            if view.1.count > 0 { wrapped = true }
            let start = acknowledged + offset
            #expect(joined(view)[...] == input[start..<min(start + length, written)])
            buffer.removeFirst(Int(rng.next() % UInt64(buffer.count + 1)))
            acknowledged = written - buffer.count
        }
        #expect(wrapped)
    }
}
