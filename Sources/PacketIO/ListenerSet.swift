/// One listening port's entry in the shared listener map: the instances that accept on it
/// (members, which new flows are spread over) and the instances that listen on it at all
/// (holders: an nginx master that listens but never accepts holds without being a member).
///
/// Laid out as the steering program reads it: member count, holder count, then the member
/// tokens, then the holder tokens, all little-endian UInt32.
public struct ListenerSet: Equatable, Sendable {
    public static let capacity = 64
    static let membersOffset = 8
    static let byteCount = 8 + 2 * 4 * capacity

    public var members: [UInt32] = []
    public var holders: [UInt32] = []

    public init(members: [UInt32] = [], holders: [UInt32] = []) {
        self.members = members
        self.holders = holders
    }

    public var isEmpty: Bool { members.isEmpty && holders.isEmpty }

    /// Adds `token` as a holder, and as a member when `accepting`; false when the set is full.
    public mutating func add(_ token: UInt32, accepting: Bool) -> Bool {
        if !holders.contains(token) {
            guard holders.count < Self.capacity else { return false }
            holders.append(token)
        }
        if accepting && !members.contains(token) {
            guard members.count < Self.capacity else { return false }
            members.append(token)
        }
        return true
    }

    /// Takes `token` out of both lists.
    public mutating func remove(_ token: UInt32) {
        members.removeAll { $0 == token }
        holders.removeAll { $0 == token }
    }

    /// Takes out every token `keep` refuses; true when something changed.
    public mutating func removeAll(where drop: (UInt32) -> Bool) -> Bool {
        let before = (members.count, holders.count)
        members.removeAll(where: drop)
        holders.removeAll(where: drop)
        return before != (members.count, holders.count)
    }

    /// The map value's bytes.
    public func encoded() -> [UInt32] {
        var words = [UInt32](repeating: 0, count: Self.byteCount / 4)
        words[0] = UInt32(members.count)
        words[1] = UInt32(holders.count)
        for (k, token) in members.enumerated() { words[2 + k] = token }
        for (k, token) in holders.enumerated() { words[2 + Self.capacity + k] = token }
        return words
    }

    /// A set read back from a map value (counts beyond the capacity are clamped).
    public init(encoded words: [UInt32]) {
        let members = min(Int(words[0]), Self.capacity)
        let holders = min(Int(words[1]), Self.capacity)
        self.members = Array(words[2..<(2 + members)])
        self.holders = Array(words[(2 + Self.capacity)..<(2 + Self.capacity + holders)])
    }
}
