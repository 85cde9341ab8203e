/// Parsing and encoding of TCP options (RFC 9293 MSS, RFC 7323 window scale and
/// timestamps, RFC 2018 SACK-permitted and SACK).
extension TCPOptions {
    /// Most option bytes a header can carry (data offset 15).
    public static let maximumLength = 40
    /// Largest window shift RFC 7323 allows; larger values are clamped to it.
    public static let maximumWindowScale: UInt8 = 14

    /// Option kinds.
    enum Kind {
        static let end: UInt8 = 0
        static let noOperation: UInt8 = 1
        static let maximumSegmentSize: UInt8 = 2
        static let windowScale: UInt8 = 3
        static let sackPermitted: UInt8 = 4
        static let sack: UInt8 = 5
        static let timestamp: UInt8 = 8
    }

    /// Parses the option bytes of a header (everything after the fixed 20 bytes).
    ///
    /// EOL ends the list, NOP is skipped, unknown kinds are skipped by their length.
    /// Throws `.badOption` for a length byte below 2 or past the end, a known option
    /// with the wrong length, or a SACK option without 1...4 whole blocks.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> TCPOptions {
        var options = TCPOptions()
        var offset = 0
        let end = bytes.count
        while offset < end {
            let kind = bytes.load8(at: offset)
            if kind == Kind.end { break }
            if kind == Kind.noOperation {
                offset += 1
                continue
            }
            guard offset + 1 < end else { throw .badOption }
            let length = Int(bytes.load8(at: offset + 1))
            guard length >= 2, offset + length <= end else { throw .badOption }
            switch kind {
            case Kind.maximumSegmentSize:
                guard length == 4 else { throw .badOption }
                options.maximumSegmentSize = bytes.load16(at: offset + 2)
            case Kind.windowScale:
                guard length == 3 else { throw .badOption }
                options.windowScale = min(bytes.load8(at: offset + 2), maximumWindowScale)
            case Kind.sackPermitted:
                guard length == 2 else { throw .badOption }
                options.sackPermitted = true
            case Kind.sack:
                let blocks = (length - 2) / 8
                guard (length - 2) % 8 == 0, blocks >= 1, blocks <= SACKBlockList.capacity else {
                    throw .badOption
                }
                options.sackBlocks.removeAll()
                for index in 0..<blocks {
                    let at = offset + 2 + index * 8
                    options.sackBlocks.append(SACKBlock(left: bytes.load32(at: at), right: bytes.load32(at: at + 4)))
                }
            case Kind.timestamp:
                guard length == 10 else { throw .badOption }
                options.timestamp = TCPTimestampOption(
                    value: bytes.load32(at: offset + 2), echoReply: bytes.load32(at: offset + 6))
            default:
                break
            }
            offset += length
        }
        return options
    }

    /// Bytes of the fixed-layout options before any SACK blocks (always a multiple of 4).
    private var fixedEncodedLength: Int {
        var length = 0
        if maximumSegmentSize != nil { length += 4 }
        if timestamp != nil {
            length += 12  // "SACKOK TS" or "NOP NOP TS"
        } else if sackPermitted {
            length += 4  // "NOP NOP SACKOK"
        }
        if windowScale != nil { length += 4 }  // "NOP WS"
        return length
    }

    /// How many SACK blocks `encode` writes: as many as fit in 40 bytes, at most 4.
    public var encodedSACKBlockCount: Int {
        guard !sackBlocks.isEmpty else { return 0 }
        let room = Self.maximumLength - fixedEncodedLength - 4  // "NOP NOP SACK len"
        return room < 8 ? 0 : min(sackBlocks.count, room / 8)
    }

    /// Bytes `encode` writes: a multiple of 4, at most 40.
    public var encodedLength: Int {
        let blocks = encodedSACKBlockCount
        return fixedEncodedLength + (blocks > 0 ? 4 + 8 * blocks : 0)
    }

    /// Writes the options in Linux's layout, padded to 4 bytes with NOPs: MSS;
    /// SACK-permitted folded into the timestamps' padding ("SACKOK TS", "NOP NOP TS",
    /// or "NOP NOP SACKOK"); "NOP WS"; "NOP NOP SACK blocks". SACK blocks that do not
    /// fit in 40 bytes are dropped (the first ones are kept). Window scale is clamped to
    /// 14. Returns the bytes written, or 0 if `buffer` is shorter than `encodedLength`.
    @discardableResult
    public func encode(to buffer: UnsafeMutableRawBufferPointer) -> Int {
        let total = encodedLength
        guard buffer.count >= total else { return 0 }
        var offset = 0
        if let mss = maximumSegmentSize {
            buffer.store8(Kind.maximumSegmentSize, at: offset)
            buffer.store8(4, at: offset + 1)
            buffer.store16(mss, at: offset + 2)
            offset += 4
        }
        if let stamp = timestamp {
            if sackPermitted {
                buffer.store8(Kind.sackPermitted, at: offset)
                buffer.store8(2, at: offset + 1)
            } else {
                buffer.store8(Kind.noOperation, at: offset)
                buffer.store8(Kind.noOperation, at: offset + 1)
            }
            buffer.store8(Kind.timestamp, at: offset + 2)
            buffer.store8(10, at: offset + 3)
            buffer.store32(stamp.value, at: offset + 4)
            buffer.store32(stamp.echoReply, at: offset + 8)
            offset += 12
        } else if sackPermitted {
            buffer.store8(Kind.noOperation, at: offset)
            buffer.store8(Kind.noOperation, at: offset + 1)
            buffer.store8(Kind.sackPermitted, at: offset + 2)
            buffer.store8(2, at: offset + 3)
            offset += 4
        }
        if let scale = windowScale {
            buffer.store8(Kind.noOperation, at: offset)
            buffer.store8(Kind.windowScale, at: offset + 1)
            buffer.store8(3, at: offset + 2)
            buffer.store8(min(scale, Self.maximumWindowScale), at: offset + 3)
            offset += 4
        }
        let blocks = encodedSACKBlockCount
        if blocks > 0 {
            buffer.store8(Kind.noOperation, at: offset)
            buffer.store8(Kind.noOperation, at: offset + 1)
            buffer.store8(Kind.sack, at: offset + 2)
            buffer.store8(UInt8(2 + 8 * blocks), at: offset + 3)
            offset += 4
            for index in 0..<blocks {
                let block = sackBlocks[index]
                buffer.store32(block.left, at: offset)
                buffer.store32(block.right, at: offset + 4)
                offset += 8
            }
        }
        return offset
    }
}
