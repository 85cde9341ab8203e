/// What the descriptor table's int32 says about an fd (0: not the library's): kind in the top
/// four bits, then the owning instance, the record's index + 1 in the low 24 bits.
public enum DescriptorEntry {
    public static let socketKind: Int32 = 1
    public static let epollKind: Int32 = 2
    /// Instances an entry can name.
    public static let instanceLimit = 16
    /// Records an instance can hold.
    public static let indexLimit = (1 << 24) - 1

    public static func make(kind: Int32, instance: Int = 0, index: Int32) -> Int32 {
        precondition(instance >= 0 && instance < instanceLimit && index >= 0 && Int(index) < indexLimit)
        return kind << 28 | Int32(instance) << 24 | (index + 1)
    }
    public static func kind(_ entry: Int32) -> Int32 { entry >> 28 }
    public static func instance(_ entry: Int32) -> Int { Int(entry >> 24 & 0xF) }
    public static func index(_ entry: Int32) -> Int { Int(entry & 0xFF_FFFF) - 1 }
}
