import CShim

/// Frames on their way to a capture file: the stack's owner copies each frame it receives or
/// sends into this ring (no system call, no allocation), and the capture writer's thread
/// drains it to the file. One producer and one consumer; a full ring drops the frame and
/// counts it.
///
/// Records are 8-byte aligned: a 24-byte header (record length, original length, timestamp,
/// captured length, direction, flags) and the bytes. A record that would cross the end is
/// preceded by a skip marker and starts again at offset 0.
public final class CaptureRing: @unchecked Sendable {
    public enum Direction: UInt8, Sendable {
        case inbound = 1
        case outbound = 2
    }

    /// One drained frame; `bytes` is valid only during the drain's call.
    public struct Frame {
        public var bytes: UnsafeRawBufferPointer
        public var originalLength: Int
        /// CLOCK_REALTIME nanoseconds.
        public var timestamp: UInt64
        public var direction: Direction
        /// The TCP checksum was left to the device (transmit offload): the copy has none yet.
        public var checksumPending: Bool
    }

    static let headerLength = 24
    static let skipMarker: UInt32 = 0xFFFF_FFFF

    let storage: UnsafeMutableRawPointer
    let capacity: Int
    let mask: Int
    /// Producer and consumer positions (bytes written and read, never wrapped), each on its
    /// own cache line.
    let positions: UnsafeMutableRawPointer
    /// Bytes of each frame kept.
    public let snapLength: Int
    /// Producer-side counts.
    public private(set) var framesCaptured = 0
    public private(set) var framesDropped = 0

    /// A ring of `capacity` bytes (rounded up to a power of two, at least 64 KiB).
    public init(capacity: Int = 4 << 20, snapLength: Int = 65535) {
        var size = 1 << 16
        while size < capacity { size <<= 1 }
        self.capacity = size
        mask = size - 1
        self.snapLength = max(snapLength, 64)
        storage = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        positions = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 64)
        positions.initializeMemory(as: UInt8.self, repeating: 0, count: 128)
    }

    deinit {
        storage.deallocate()
        positions.deallocate()
    }

    var head: UnsafeMutableRawPointer { positions }
    var tail: UnsafeMutableRawPointer { positions + 64 }

    /// Copies one frame in (producer).
    @inline(__always)
    public func record(
        _ frame: UnsafeRawBufferPointer, direction: Direction, timestamp: UInt64, checksumPending: Bool = false
    ) {
        let captured = min(frame.count, snapLength)
        let length = (Self.headerLength + captured + 7) & ~7
        var position = Int(head.load(as: UInt64.self))
        let read = Int(mtcp_shim_load_acquire_u64(tail))
        let offset = position & mask
        let toEnd = capacity - offset
        let skip = toEnd < length ? toEnd : 0
        guard capacity - (position - read) >= length + skip else {
            framesDropped += 1
            return
        }
        if skip > 0 {
            storage.storeBytes(of: Self.skipMarker, toByteOffset: offset, as: UInt32.self)
            position += skip
        }
        let record = storage + (position & mask)
        record.storeBytes(of: UInt32(length), toByteOffset: 0, as: UInt32.self)
        record.storeBytes(of: UInt32(frame.count), toByteOffset: 4, as: UInt32.self)
        record.storeBytes(of: timestamp, toByteOffset: 8, as: UInt64.self)
        record.storeBytes(of: UInt32(captured), toByteOffset: 16, as: UInt32.self)
        record.storeBytes(of: direction.rawValue, toByteOffset: 20, as: UInt8.self)
        record.storeBytes(of: checksumPending ? 1 : 0, toByteOffset: 21, as: UInt8.self)
        if captured > 0 { (record + Self.headerLength).copyMemory(from: frame.baseAddress!, byteCount: captured) }
        framesCaptured += 1
        mtcp_shim_store_release_u64(head, UInt64(position + length))
    }

    /// Hands every frame recorded so far to `body`, oldest first, and frees their space
    /// (consumer). Returns how many.
    @discardableResult
    public func drain(_ body: (Frame) -> Void) -> Int {
        let written = Int(mtcp_shim_load_acquire_u64(head))
        var position = Int(tail.load(as: UInt64.self))
        var count = 0
        while position < written {
            let offset = position & mask
            let record = UnsafeRawPointer(storage + offset)
            let length = record.load(as: UInt32.self)
            if length == Self.skipMarker {
                position += capacity - offset
                continue
            }
            let captured = Int(record.load(fromByteOffset: 16, as: UInt32.self))
            body(
                Frame(
                    bytes: UnsafeRawBufferPointer(start: record + Self.headerLength, count: captured),
                    originalLength: Int(record.load(fromByteOffset: 4, as: UInt32.self)),
                    timestamp: record.load(fromByteOffset: 8, as: UInt64.self),
                    direction: Direction(rawValue: record.load(fromByteOffset: 20, as: UInt8.self)) ?? .inbound,
                    checksumPending: record.load(fromByteOffset: 21, as: UInt8.self) != 0))
            position += Int(length)
            count += 1
        }
        mtcp_shim_store_release_u64(tail, UInt64(position))
        return count
    }
}
