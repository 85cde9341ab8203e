/// The format of a process's statistics region, a file in shared memory (/dev/shm by default)
/// that the process writes and `mtcp-stat` reads while it runs and after it died:
///
///     header (512 bytes)   magic, version, pid, start time, heartbeat, state, sizes, and the
///                          process's command, interface, backend, host kind and address as text
///     counter names        `counterCount` names of 32 bytes, the order of every value array
///     fallbacks            `fallbackCapacity` rows of 64 bytes: sockets that went to the kernel
///     instance blocks      `instanceCount` blocks, page-aligned, one per stack instance:
///                            a sequence lock and publication time for the counters,
///                            a sequence lock, count and time for the socket rows,
///                            counter values, the reset baseline, socket rows of 128 bytes
///
/// Every number is native-endian and naturally aligned. Each instance block has one writer
/// (its stack's owner); readers copy under the sequence lock and retry when it moved.
public enum StatsLayout {
    /// "MTCPSTAT" read as a little-endian 64-bit number.
    public static let magic: UInt64 = 0x5441_5453_5043_544d
    public static let version: UInt32 = 1

    // Header.
    static let magicOffset = 0
    static let versionOffset = 8
    static let pidOffset = 12
    static let instanceCountOffset = 16
    static let counterCountOffset = 20
    static let socketCapacityOffset = 24
    static let fallbackCapacityOffset = 28
    static let startTimeOffset = 32
    static let heartbeatOffset = 40
    static let stateOffset = 48
    static let bootTicksOffset = 56
    static let instanceBlockLengthOffset = 64
    static let instanceBlocksOffset = 72
    static let fallbacksOffset = 80
    static let namesOffset = 88
    /// A sequence lock over the fallback rows.
    static let fallbackSequenceOffset = 96
    static let commandOffset = 128
    static let commandLength = 64
    static let interfaceOffset = 192
    static let interfaceLength = 32
    static let backendOffset = 224
    static let backendLength = 16
    static let hostOffset = 240
    static let hostLength = 16
    static let addressOffset = 256
    static let addressLength = 48
    static let headerLength = 512

    static let nameLength = 32
    static let fallbackRowLength = 64
    static let fallbackReasonOffset = 16
    static let fallbackReasonLength = 48

    // Instance block.
    static let counterSequenceOffset = 0
    static let countersPublishedOffset = 8
    static let socketSequenceOffset = 16
    static let socketRowsOffset = 24
    static let socketTotalOffset = 28
    static let socketsPublishedOffset = 32
    static let valuesOffset = 64

    static let pageLength = 4096

    /// Where each part lies for the given sizes.
    struct Geometry: Equatable {
        var counterCount: Int
        var instanceCount: Int
        var socketCapacity: Int
        var fallbackCapacity: Int

        var names: Int { StatsLayout.headerLength }
        var fallbacks: Int { names + counterCount * StatsLayout.nameLength }
        var instanceBlocks: Int { roundUp(fallbacks + fallbackCapacity * StatsLayout.fallbackRowLength) }
        var baselineOffset: Int { StatsLayout.valuesOffset + counterCount * 8 }
        var socketRowsStart: Int { (baselineOffset + counterCount * 8 + 63) & ~63 }
        var instanceBlockLength: Int { roundUp(socketRowsStart + socketCapacity * SocketRow.length) }
        var totalLength: Int { instanceBlocks + instanceCount * instanceBlockLength }

        func roundUp(_ n: Int) -> Int {
            (n + StatsLayout.pageLength - 1) / StatsLayout.pageLength * StatsLayout.pageLength
        }
    }
}

/// Whether the process behind a region runs.
public enum StatsProcessState: UInt32, Sendable {
    case starting = 0
    case running = 1
    /// It exited normally (its last counters are final).
    case exited = 2
}

extension UnsafeMutableRawPointer {
    /// Writes `text` as at most `length - 1` UTF-8 bytes and a NUL.
    func storeText(_ text: String, at offset: Int, length: Int) {
        var bytes = Array(text.utf8.prefix(length - 1))
        bytes.append(0)
        bytes.withUnsafeBytes { (self + offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }
}

extension UnsafeRawPointer {
    /// The NUL-terminated text of at most `length` bytes at `offset`.
    func loadText(at offset: Int, length: Int) -> String {
        let bytes = UnsafeRawBufferPointer(start: self + offset, count: length)
        let end = bytes.firstIndex(of: 0) ?? length
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}
