// What every fuzz target shares: the invariant check and the reader of the fuzzer's bytes.
// Compiled into each target (tests/fuzz/run.sh).

@inline(never)
func require(_ condition: Bool, _ what: StaticString) {
    if !condition { fatalError("invariant broken: \(what)") }
}

/// The fuzzer's bytes, read field by field (zeros once they run out).
struct Reader {
    let bytes: UnsafeRawBufferPointer
    var at = 0
    var done: Bool { at >= bytes.count }
    mutating func byte() -> UInt8 {
        guard at < bytes.count else { return 0 }
        defer { at += 1 }
        return bytes[at]
    }
    mutating func word() -> UInt16 { UInt16(byte()) << 8 | UInt16(byte()) }
    mutating func long() -> UInt32 { UInt32(word()) << 16 | UInt32(word()) }
    mutating func quad() -> UInt64 { UInt64(long()) << 32 | UInt64(long()) }
    mutating func flag() -> Bool { byte() & 1 == 1 }
    /// Up to `count` bytes, copied (fewer once they run out).
    mutating func take(_ count: Int) -> [UInt8] {
        let n = max(0, min(count, bytes.count - at))
        defer { at += n }
        return Array(bytes[at..<(at + n)])
    }
}
