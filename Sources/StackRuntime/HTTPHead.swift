/// The heads of HTTP/1.1 messages read straight from bytes, for the example server and load
/// generator: no String and no allocation per message, so their per-request cost is the
/// stack's and not text processing (mTCP's experiment measures the stack).
public enum HTTPHead {
    /// Offset of the "\r\n\r\n" that ends a header block, if it has arrived.
    public static func end(in bytes: UnsafeRawBufferPointer) -> Int? {
        let count = bytes.count
        guard count >= 4 else { return nil }
        var i = 0
        while i <= count - 4 {
            // Step by the byte that must be "\n" after a "\r": most positions are skipped.
            let b = bytes[i + 3]
            if b == 10 {
                if bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 { return i }
                i += 1
            } else if b == 13 {
                i += 1
            } else {
                i += 4
            }
        }
        return nil
    }

    public enum Method: Equatable, Sendable {
        case get, head, other
    }

    /// A request line and the headers a static server needs.
    public struct Request: Equatable, Sendable {
        public var method: Method
        /// The target without its query, as offsets into the parsed bytes.
        public var path: Range<Int>
        /// HTTP/1.1 without "Connection: close", or "Connection: keep-alive".
        public var keepAlive: Bool
        /// False when the request line is not "METHOD TARGET HTTP/x.y".
        public var wellFormed: Bool
        /// Bytes of the head, the blank line included: where the next request starts.
        public var length: Int
    }

    /// A status line and the length of the body that follows.
    public struct Response: Equatable, Sendable {
        public var status: Int
        /// Content-Length, nil when absent or unreadable (the body then ends with the stream).
        public var contentLength: Int?
        public var length: Int
    }

    /// The request at the start of `bytes`; nil until its whole head has arrived.
    public static func request(_ bytes: UnsafeRawBufferPointer) -> Request? {
        guard let end = end(in: bytes) else { return nil }
        let lineEnd = lineEnd(bytes, from: 0, limit: end)
        var result = Request(method: .other, path: 0..<0, keepAlive: false, wellFormed: false, length: end + 4)
        // METHOD SP TARGET SP VERSION
        guard let space1 = index(of: 32, in: bytes, from: 0, limit: lineEnd),
            let space2 = index(of: 32, in: bytes, from: space1 + 1, limit: lineEnd), space2 > space1 + 1
        else { return result }
        if equals(bytes, 0..<space1, "GET") {
            result.method = .get
        } else if equals(bytes, 0..<space1, "HEAD") {
            result.method = .head
        }
        let query = index(of: UInt8(ascii: "?"), in: bytes, from: space1 + 1, limit: space2) ?? space2
        result.path = (space1 + 1)..<query
        let version = (space2 + 1)..<lineEnd
        result.wellFormed = version.count == 8 && startsWith(bytes, version.lowerBound, "HTTP/")
        result.keepAlive = equals(bytes, version, "HTTP/1.1")
        var line = lineEnd + 2
        while line < end {
            let next = Self.lineEnd(bytes, from: line, limit: end)
            if let value = headerValue(bytes, line..<next, named: "connection:") {
                if contains(bytes, value, "close") { result.keepAlive = false }
                if contains(bytes, value, "keep-alive") { result.keepAlive = true }
            }
            line = next + 2
        }
        return result
    }

    /// The response at the start of `bytes`; nil until its whole head has arrived.
    public static func response(_ bytes: UnsafeRawBufferPointer) -> Response? {
        guard let end = end(in: bytes) else { return nil }
        let lineEnd = lineEnd(bytes, from: 0, limit: end)
        var result = Response(status: 0, contentLength: nil, length: end + 4)
        // HTTP/x.y SP DDD SP reason
        if let space = index(of: 32, in: bytes, from: 0, limit: lineEnd), space + 4 <= lineEnd,
            let status = decimal(bytes, (space + 1)..<(space + 4))
        {
            result.status = status
        }
        var line = lineEnd + 2
        while line < end {
            let next = Self.lineEnd(bytes, from: line, limit: end)
            if let value = headerValue(bytes, line..<next, named: "content-length:") {
                result.contentLength = decimal(bytes, trimmed(bytes, value))
            }
            line = next + 2
        }
        return result
    }

    // MARK: Byte helpers

    /// The "\r\n" at or after `from`, or `limit`.
    static func lineEnd(_ bytes: UnsafeRawBufferPointer, from: Int, limit: Int) -> Int {
        var i = from
        while i < limit && !(bytes[i] == 13 && i + 1 < bytes.count && bytes[i + 1] == 10) { i += 1 }
        return i
    }

    static func index(of byte: UInt8, in bytes: UnsafeRawBufferPointer, from: Int, limit: Int) -> Int? {
        var i = from
        while i < limit {
            if bytes[i] == byte { return i }
            i += 1
        }
        return nil
    }

    static func lowercased(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b | 0x20 : b }

    static func equals(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ text: StaticString) -> Bool {
        range.count == text.utf8CodeUnitCount && startsWith(bytes, range.lowerBound, text)
    }

    static func startsWith(_ bytes: UnsafeRawBufferPointer, _ at: Int, _ text: StaticString) -> Bool {
        let n = text.utf8CodeUnitCount
        guard at + n <= bytes.count else { return false }
        let p = text.utf8Start
        for k in 0..<n where bytes[at + k] != p[k] { return false }
        return true
    }

    /// The value's range when the line is the header `name` (lower case, with the colon).
    static func headerValue(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>, named name: StaticString) -> Range<
        Int
    >? {
        let n = name.utf8CodeUnitCount
        guard line.count >= n else { return nil }
        let p = name.utf8Start
        for k in 0..<n where lowercased(bytes[line.lowerBound + k]) != p[k] { return nil }
        return (line.lowerBound + n)..<line.upperBound
    }

    /// Case-insensitive search for a lower-case token.
    static func contains(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ token: StaticString) -> Bool {
        let n = token.utf8CodeUnitCount
        guard range.count >= n else { return false }
        let p = token.utf8Start
        var start = range.lowerBound
        while start + n <= range.upperBound {
            var k = 0
            while k < n && lowercased(bytes[start + k]) == p[k] { k += 1 }
            if k == n { return true }
            start += 1
        }
        return false
    }

    static func trimmed(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Range<Int> {
        var low = range.lowerBound
        var high = range.upperBound
        while low < high && (bytes[low] == 32 || bytes[low] == 9) { low += 1 }
        while high > low && (bytes[high - 1] == 32 || bytes[high - 1] == 9) { high -= 1 }
        return low..<high
    }

    /// A non-negative decimal of at most 18 digits, nil for anything else.
    static func decimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var value = 0
        for i in range {
            let d = bytes[i] &- 48
            guard d < 10 else { return nil }
            value = value * 10 + Int(d)
        }
        return value
    }
}
