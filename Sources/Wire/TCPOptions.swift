/// One SACK block (RFC 2018): the sequence space [left, right) that the receiver holds.
public struct SACKBlock: Hashable, Sendable {
    public var left: UInt32
    public var right: UInt32
    public init(left: UInt32, right: UInt32) {
        self.left = left
        self.right = right
    }
}

/// Up to four SACK blocks, stored inline so that parsing never allocates.
/// (40 option bytes hold at most 4 blocks; 3 when timestamps are present.)
public struct SACKBlockList: Hashable, Sendable, RandomAccessCollection {
    public static let capacity = 4
    private var b0 = SACKBlock(left: 0, right: 0)
    private var b1 = SACKBlock(left: 0, right: 0)
    private var b2 = SACKBlock(left: 0, right: 0)
    private var b3 = SACKBlock(left: 0, right: 0)
    public private(set) var count: Int = 0

    public init() {}

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(index: Int) -> SACKBlock {
        get {
            precondition(index >= 0 && index < count, "SACK block index out of range")
            switch index {
            case 0: return b0
            case 1: return b1
            case 2: return b2
            default: return b3
            }
        }
        set {
            precondition(index >= 0 && index < count, "SACK block index out of range")
            switch index {
            case 0: b0 = newValue
            case 1: b1 = newValue
            case 2: b2 = newValue
            default: b3 = newValue
            }
        }
    }

    /// Appends a block; returns false (and keeps the list) when all four slots are used.
    @discardableResult
    public mutating func append(_ block: SACKBlock) -> Bool {
        guard count < Self.capacity else { return false }
        count += 1
        self[count - 1] = block
        return true
    }

    public mutating func removeAll() { count = 0 }

    public static func == (lhs: SACKBlockList, rhs: SACKBlockList) -> Bool {
        lhs.elementsEqual(rhs)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for block in self { hasher.combine(block) }
    }
}

/// The TCP options this stack understands (RFC 9293 MSS, RFC 7323 window scale and
/// timestamps, RFC 2018 SACK-permitted and SACK). Unknown options are skipped when
/// parsing and never produced.
public struct TCPOptions: Hashable, Sendable {
    public var maximumSegmentSize: UInt16?
    public var windowScale: UInt8?
    public var sackPermitted: Bool = false
    /// (TSval, TSecr) of the timestamps option.
    public var timestamp: TCPTimestampOption?
    public var sackBlocks = SACKBlockList()

    public init() {}

    public init(
        maximumSegmentSize: UInt16? = nil, windowScale: UInt8? = nil, sackPermitted: Bool = false,
        timestamp: TCPTimestampOption? = nil, sackBlocks: SACKBlockList = SACKBlockList()
    ) {
        self.maximumSegmentSize = maximumSegmentSize
        self.windowScale = windowScale
        self.sackPermitted = sackPermitted
        self.timestamp = timestamp
        self.sackBlocks = sackBlocks
    }

    public var isEmpty: Bool {
        maximumSegmentSize == nil && windowScale == nil && !sackPermitted && timestamp == nil
            && sackBlocks.isEmpty
    }
}

/// The RFC 7323 timestamps option.
public struct TCPTimestampOption: Hashable, Sendable {
    public var value: UInt32
    public var echoReply: UInt32
    public init(value: UInt32, echoReply: UInt32) {
        self.value = value
        self.echoReply = echoReply
    }
}
