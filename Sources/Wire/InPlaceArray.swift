/// A growable array whose elements are read and written where they lie.
///
/// `Array`'s subscript getter returns a copy of the element: reading one field of a large
/// struct (a connection's state, `slots[i].connection!.state`) copied the whole connection and
/// retained everything it references, once per access, on the hot path. This subscript is an
/// addressor, so a field read is one load and a mutation happens in place.
///
/// A class, so the storage is freed exactly once; elements never move except when the array
/// grows (callers keep indices, never pointers).
public final class InPlaceArray<Element> {
    @usableFromInline var base: UnsafeMutablePointer<Element>
    @usableFromInline var capacity: Int
    public private(set) var count = 0

    public init(capacity: Int = 16) {
        self.capacity = max(capacity, 1)
        base = .allocate(capacity: self.capacity)
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    @inlinable public var indices: Range<Int> { 0..<count }

    @inlinable public subscript(index: Int) -> Element {
        unsafeAddress {
            precondition(index >= 0 && index < count, "InPlaceArray index out of range")
            return UnsafePointer(base + index)
        }
        unsafeMutableAddress {
            precondition(index >= 0 && index < count, "InPlaceArray index out of range")
            return base + index
        }
    }

    public func append(_ element: Element) {
        if count == capacity {
            let grown = UnsafeMutablePointer<Element>.allocate(capacity: capacity * 2)
            grown.moveInitialize(from: base, count: count)
            base.deallocate()
            base = grown
            capacity *= 2
        }
        (base + count).initialize(to: element)
        count += 1
    }
}
