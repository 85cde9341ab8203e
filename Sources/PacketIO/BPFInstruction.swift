/// One eBPF instruction as the kernel reads it (`struct bpf_insn`: opcode, destination and
/// source registers in one byte, a 16-bit offset and a 32-bit immediate), and the few forms the
/// steering program uses. Built in Swift so that the preload library needs no libbpf and no
/// compiler at run time.
public struct BPFInstruction: Equatable, Sendable {
    public var opcode: UInt8
    public var registers: UInt8
    public var offset: Int16
    public var immediate: Int32

    public init(opcode: UInt8, destination: UInt8 = 0, source: UInt8 = 0, offset: Int16 = 0, immediate: Int32 = 0) {
        self.opcode = opcode
        registers = (destination & 0xF) | (source << 4)
        self.offset = offset
        self.immediate = immediate
    }

    public var destination: UInt8 { registers & 0xF }
    public var source: UInt8 { registers >> 4 }

    /// Registers: r0 return value and helper result, r1-r5 arguments (clobbered by calls and by
    /// packet loads), r6-r9 kept across calls, r10 the read-only frame pointer.
    public enum Register: UInt8 { case r0 = 0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10 }

    public enum Size: UInt8 {
        case word = 0x00, half = 0x08, byte = 0x10, double = 0x18
    }

    public enum ALU: UInt8 {
        case add = 0x00, sub = 0x10, mul = 0x20, div = 0x30, or = 0x40, and = 0x50, lsh = 0x60, rsh = 0x70
        case mod = 0x90, xor = 0xA0, mov = 0xB0
    }

    public enum Condition: UInt8 {
        case equal = 0x10, greater = 0x20, greaterOrEqual = 0x30, notEqual = 0x50
    }

    static let classLD: UInt8 = 0x00
    static let classLDX: UInt8 = 0x01
    static let classST: UInt8 = 0x02
    static let classSTX: UInt8 = 0x03
    static let classALU: UInt8 = 0x04
    static let classJMP: UInt8 = 0x05
    static let classJMP32: UInt8 = 0x06
    static let classALU64: UInt8 = 0x07
    static let modeABS: UInt8 = 0x20
    static let modeIND: UInt8 = 0x40
    static let modeMEM: UInt8 = 0x60
    static let sourceX: UInt8 = 0x08

    /// 64-bit `destination op= immediate`.
    public static func alu64(_ op: ALU, _ destination: Register, _ immediate: Int32) -> BPFInstruction {
        BPFInstruction(opcode: classALU64 | op.rawValue, destination: destination.rawValue, immediate: immediate)
    }

    /// 64-bit `destination op= source`.
    public static func alu64(_ op: ALU, _ destination: Register, _ source: Register) -> BPFInstruction {
        BPFInstruction(
            opcode: classALU64 | op.rawValue | sourceX, destination: destination.rawValue, source: source.rawValue)
    }

    /// 32-bit `destination op= immediate` (the upper half is zeroed).
    public static func alu32(_ op: ALU, _ destination: Register, _ immediate: Int32) -> BPFInstruction {
        BPFInstruction(opcode: classALU | op.rawValue, destination: destination.rawValue, immediate: immediate)
    }

    /// 32-bit `destination op= source`.
    public static func alu32(_ op: ALU, _ destination: Register, _ source: Register) -> BPFInstruction {
        BPFInstruction(
            opcode: classALU | op.rawValue | sourceX, destination: destination.rawValue, source: source.rawValue)
    }

    /// `destination = *(size *)(source + offset)`.
    public static func load(_ size: Size, _ destination: Register, _ source: Register, _ offset: Int16)
        -> BPFInstruction
    {
        BPFInstruction(
            opcode: classLDX | modeMEM | size.rawValue, destination: destination.rawValue, source: source.rawValue,
            offset: offset)
    }

    /// `*(size *)(destination + offset) = source`.
    public static func store(_ size: Size, _ destination: Register, _ offset: Int16, _ source: Register)
        -> BPFInstruction
    {
        BPFInstruction(
            opcode: classSTX | modeMEM | size.rawValue, destination: destination.rawValue, source: source.rawValue,
            offset: offset)
    }

    /// `*(size *)(destination + offset) = immediate`.
    public static func store(_ size: Size, _ destination: Register, _ offset: Int16, immediate: Int32)
        -> BPFInstruction
    {
        BPFInstruction(
            opcode: classST | modeMEM | size.rawValue, destination: destination.rawValue, offset: offset,
            immediate: immediate)
    }

    /// r0 = the packet's bytes at `offset`, big-endian to host order (r6 must hold the context;
    /// a load past the end ends the program with 0, dropping the frame).
    public static func loadPacket(_ size: Size, at offset: Int32) -> BPFInstruction {
        BPFInstruction(opcode: classLD | modeABS | size.rawValue, immediate: offset)
    }

    /// r0 = the packet's bytes at `index + offset` (see `loadPacket(_:at:)`).
    public static func loadPacket(_ size: Size, index: Register, plus offset: Int32) -> BPFInstruction {
        BPFInstruction(opcode: classLD | modeIND | size.rawValue, source: index.rawValue, immediate: offset)
    }

    /// The two instructions that load map `fd` into `destination` (BPF_PSEUDO_MAP_FD).
    public static func loadMap(_ destination: Register, fd: Int32) -> [BPFInstruction] {
        [
            BPFInstruction(
                opcode: classLD | Size.double.rawValue, destination: destination.rawValue, source: 1, immediate: fd),
            BPFInstruction(opcode: 0),
        ]
    }

    /// `if destination condition immediate: skip `offset` instructions`.
    public static func jump(_ condition: Condition, _ destination: Register, _ immediate: Int32, skip offset: Int16)
        -> BPFInstruction
    {
        BPFInstruction(
            opcode: classJMP | condition.rawValue, destination: destination.rawValue, offset: offset,
            immediate: immediate)
    }

    /// `jump` on the low 32 bits of `destination` (BPF_JMP32): the 64-bit form compares with
    /// the immediate sign-extended, which no zero-extended word loaded above 2^31 equals.
    public static func jump32(_ condition: Condition, _ destination: Register, _ immediate: Int32, skip offset: Int16)
        -> BPFInstruction
    {
        BPFInstruction(
            opcode: classJMP32 | condition.rawValue, destination: destination.rawValue, offset: offset,
            immediate: immediate)
    }

    /// `if destination condition source: skip `offset` instructions`.
    public static func jump(_ condition: Condition, _ destination: Register, _ source: Register, skip offset: Int16)
        -> BPFInstruction
    {
        BPFInstruction(
            opcode: classJMP | condition.rawValue | sourceX, destination: destination.rawValue, source: source.rawValue,
            offset: offset)
    }

    public static func jump(skip offset: Int16) -> BPFInstruction { BPFInstruction(opcode: classJMP, offset: offset) }

    public static func call(_ helper: Int32) -> BPFInstruction {
        BPFInstruction(opcode: classJMP | 0x80, immediate: helper)
    }

    public static let exit = BPFInstruction(opcode: classJMP | 0x90)

    /// bpf_map_lookup_elem(map, key): a pointer to the value or NULL.
    public static let mapLookupHelper: Int32 = 1

    /// The eight bytes the kernel reads, little-endian as on every host this runs on.
    public var bytes: (UInt64) {
        UInt64(opcode) | UInt64(registers) << 8 | UInt64(UInt16(bitPattern: offset)) << 16
            | UInt64(UInt32(bitPattern: immediate)) << 32
    }
}
