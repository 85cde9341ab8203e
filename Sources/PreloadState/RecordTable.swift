/// One instance's socket records, indexed by the descriptor table's entries; freed slots are
/// reused. Not thread-safe: its instance's lock guards it.
public struct RecordTable: RandomAccessCollection, MutableCollection {
    var slots: [SocketRecord?] = []
    var free: [Int32] = []
    var serials: UInt64 = 0
    /// The instance the table belongs to (entries naming another are not found here).
    public let instance: Int

    public init(instance: Int) { self.instance = instance }

    public var startIndex: Int { 0 }
    public var endIndex: Int { slots.count }

    /// Borrowed, not copied: a record holds arrays, and a copy per call would retain them.
    public subscript(position: Int) -> SocketRecord? {
        _read { yield slots[position] }
        _modify { yield &slots[position] }
    }

    /// The index of the live record `entry` names, if it names one of this table's.
    public func index(of entry: Int32) -> Int? {
        guard DescriptorEntry.kind(entry) == DescriptorEntry.socketKind, DescriptorEntry.instance(entry) == instance
        else { return nil }
        let r = DescriptorEntry.index(entry)
        guard r >= 0, r < slots.count, slots[r] != nil else { return nil }
        return r
    }

    /// Stores `record` under a new serial; its index (a freed one first).
    public mutating func add(_ record: SocketRecord) -> Int32 {
        var record = record
        serials += 1
        record.serial = serials
        if let reused = free.popLast() {
            slots[Int(reused)] = record
            return reused
        }
        slots.append(record)
        return Int32(slots.count - 1)
    }

    public mutating func release(_ r: Int) {
        slots[r] = nil
        free.append(Int32(r))
    }

    /// The entry that names record `r` of this table.
    public func entry(of r: Int32) -> Int32 {
        DescriptorEntry.make(kind: DescriptorEntry.socketKind, instance: instance, index: r)
    }

    /// The child side of fork: every socket is the parent's now.
    public mutating func markInherited() {
        for r in slots.indices where slots[r] != nil { slots[r]!.ownership = .inherited }
    }

    public var liveCount: Int { slots.count - free.count }
}
