// Big-endian field access for wire formats. Callers check bounds first; these helpers
// only translate byte order, so they stay branch-free on the hot path.

extension UnsafeRawBufferPointer {
    /// The byte at `offset`.
    @inline(__always)
    func load8(at offset: Int) -> UInt8 {
        loadUnaligned(fromByteOffset: offset, as: UInt8.self)
    }

    /// The big-endian 16-bit field at `offset`, in host order.
    @inline(__always)
    func load16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// The big-endian 32-bit field at `offset`, in host order.
    @inline(__always)
    func load32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// The bytes from `offset` to the end (an empty view when `offset == count`).
    @inline(__always)
    func suffix(from offset: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[offset...])
    }

    /// The bytes in `range`.
    @inline(__always)
    func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[range])
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Stores one byte at `offset`.
    @inline(__always)
    func store8(_ value: UInt8, at offset: Int) {
        storeBytes(of: value, toByteOffset: offset, as: UInt8.self)
    }

    /// Stores `value` big-endian at `offset`.
    @inline(__always)
    func store16(_ value: UInt16, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// Stores `value` big-endian at `offset`.
    @inline(__always)
    func store32(_ value: UInt32, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }

    /// Copies `source` to `offset` (regions may overlap, so an in-place reply works).
    @inline(__always)
    func copy(_ source: UnsafeRawBufferPointer, at offset: Int) {
        guard let from = source.baseAddress, source.count > 0, let to = baseAddress else { return }
        (to + offset).copyMemory(from: from, byteCount: source.count)
    }

    /// A read-only view of the bytes in `range`.
    @inline(__always)
    func readOnly(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(self)[range])
    }
}
