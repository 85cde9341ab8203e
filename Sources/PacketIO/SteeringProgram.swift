/// The socket filter that gives each process (each stack instance) only the frames it owns,
/// so processes sharing one interface do not each see every frame.
///
/// Attached to an instance's receive socket with the instance's token; every frame is tested
/// against three maps all instances share (see `FlowSteering`):
/// - outgoing frames: dropped;
/// - ARP and ICMPv6: kept by everyone (whoever asked needs the reply; only the primary answers
///   requests);
/// - other non-IP, non-TCP, IPv4 fragments and IPv6 with extension headers: the primary's (it
///   answers ICMP echo, neighbour discovery, and counts the rest);
/// - TCP whose 4-tuple is in the flow map: its owner's, nobody else's;
/// - TCP to a port in the listener map with accepting members: the member chosen by a hash of
///   the peer's address and ports (so only new flows move when membership changes: live flows
///   are in the flow map), with no members: the primary's (it parks SYNs until one joins);
/// - other TCP: the primary's (it answers with RST).
///
/// An IPv6 flow's key holds each address folded to 32 bits (`fold`) and the family in the key's
/// last word, so both families share the maps and the code below the key.
public enum SteeringProgram {
    typealias I = BPFInstruction

    /// Offsets into the frame (Ethernet, then an IPv4 header of `ihl` words).
    static let etherTypeOffset: Int32 = 12
    static let ipFlagsOffset: Int32 = 14 + 6
    static let ipProtocolOffset: Int32 = 14 + 9
    static let ipSourceOffset: Int32 = 14 + 12
    static let ipDestinationOffset: Int32 = 14 + 16
    /// `struct __sk_buff`'s pkt_type field.
    static let packetTypeOffset: Int16 = 4
    static let packetOutgoing: Int32 = 4
    static let mixMultipliers: (UInt32, UInt32) = (0x7FEB_352D, 0x846C_A68B)
    /// Offsets of the IPv6 header's next-header field and addresses, and of the TCP ports after it.
    static let ipv6NextHeaderOffset: Int32 = 14 + 6
    static let ipv6SourceOffset: Int32 = 14 + 8
    static let ipv6DestinationOffset: Int32 = 14 + 24
    static let ipv6PortsOffset: Int32 = 14 + 40
    /// The last word of an IPv6 flow's key (0 for IPv4).
    public static let ipv6KeyFamily: UInt32 = 6

    /// An IPv6 address (`high`, `low` in host order) folded to the 32 bits a flow key holds:
    /// its four words exclusive-or'ed. Distinct flows may fold alike (then the second one's
    /// claim fails and it is refused, as when another process owns it); the stack itself
    /// matches full addresses, so frames never reach the wrong connection.
    public static func fold(high: UInt64, low: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: high >> 32) ^ UInt32(truncatingIfNeeded: high)
            ^ UInt32(truncatingIfNeeded: low >> 32)
            ^ UInt32(truncatingIfNeeded: low)
    }

    /// What a frame for `localPort` from `remoteAddress`:`remotePort` hashes to among `count`
    /// accepting members; the program computes exactly this.
    public static func memberIndex(remoteAddress: UInt32, remotePort: UInt16, localPort: UInt16, count: UInt32)
        -> UInt32
    {
        guard count > 0 else { return 0 }
        // A full 32-bit mix (lowbias32): clients step their ports by 2 and one peer address
        // sends them all, so the member must depend on every input bit.
        var hash = remoteAddress ^ (UInt32(remotePort) << 16 | UInt32(localPort))
        hash ^= hash >> 16
        hash &*= mixMultipliers.0
        hash ^= hash >> 15
        hash &*= mixMultipliers.1
        hash ^= hash >> 16
        return hash % count
    }

    /// The program for instance `token` over the shared maps. `kernelSharesAddress`: the kernel
    /// has the stack's address on this interface too (`KernelExclusion`), so TCP that no flow
    /// and no listener claims is the kernel's, and nobody here sees it (the primary would answer
    /// it with RST).
    public static func instructions(
        token: UInt32, flows: Int32, listeners: Int32, primary: Int32, kernelSharesAddress: Bool = false
    ) -> [BPFInstruction] {
        var code = Assembler()
        let me = Int32(bitPattern: token)
        code.emit(.alu64(.mov, .r6, .r1))
        code.emit(.load(.word, .r0, .r6, packetTypeOffset))
        code.jump(.equal, .r0, packetOutgoing, to: "drop")
        // ICMPv6 (neighbour discovery among it) is everyone's, as ARP is: the instance that
        // solicited needs the advertisement; only the primary answers solicitations and echo.
        emitFlowKey(&code, arp: "accept", icmpv6: "accept", otherwise: "primary")

        code.label("flow")
        code.lookup(map: flows, keyAt: -16)
        code.jump(.equal, .r0, 0, to: "noflow")
        code.emit(.load(.word, .r1, .r0, 0))
        code.jump(.equal, .r1, me, to: "accept")
        code.jump(to: "drop")

        code.label("noflow")
        code.emit(.load(.half, .r1, .r10, -8))
        code.emit(.store(.word, .r10, -20, .r1))
        code.lookup(map: listeners, keyAt: -20)
        code.jump(.equal, .r0, 0, to: kernelSharesAddress ? "drop" : "primary")
        code.emit(.alu64(.mov, .r9, .r0))
        code.emit(.load(.word, .r1, .r9, 0))
        code.jump(.equal, .r1, 0, to: "primary")
        // r2 = memberIndex(remote address, remote port, local port, count r1).
        code.emit(.load(.word, .r2, .r10, -12))
        code.emit(.load(.half, .r3, .r10, -6))
        code.emit(.alu32(.lsh, .r3, 16))
        code.emit(.load(.half, .r4, .r10, -8))
        code.emit(.alu32(.or, .r3, .r4))
        code.emit(.alu32(.xor, .r2, .r3))
        for (shift, multiplier) in [(16, mixMultipliers.0), (15, mixMultipliers.1)] {
            code.emit(.alu32(.mov, .r3, .r2))
            code.emit(.alu32(.rsh, .r3, Int32(shift)))
            code.emit(.alu32(.xor, .r2, .r3))
            code.emit(.alu32(.mul, .r2, Int32(bitPattern: multiplier)))
        }
        code.emit(.alu32(.mov, .r3, .r2))
        code.emit(.alu32(.rsh, .r3, 16))
        code.emit(.alu32(.xor, .r2, .r3))
        code.emit(.alu32(.mod, .r2, .r1))
        // Bounds the index for the verifier (count never exceeds the member slots).
        code.emit(.alu64(.and, .r2, Int32(ListenerSet.capacity - 1)))
        code.emit(.alu64(.lsh, .r2, 2))
        code.emit(.alu64(.add, .r9, .r2))
        code.emit(.load(.word, .r1, .r9, Int16(ListenerSet.membersOffset)))
        code.jump(.equal, .r1, me, to: "accept")
        code.jump(to: "drop")

        code.label("primary")
        code.emit(.store(.word, .r10, -24, immediate: 0))
        code.lookup(map: primary, keyAt: -24)
        code.jump(.equal, .r0, 0, to: "drop")
        code.emit(.load(.word, .r1, .r0, 0))
        code.jump(.equal, .r1, me, to: "accept")

        code.label("drop")
        code.emit(.alu64(.mov, .r0, 0))
        code.emit(.exit)
        code.label("accept")
        code.emit(.alu64(.mov, .r0, 0x7FFF_FFFF))
        code.emit(.exit)
        return code.finish()
    }

    /// Classifies the frame that r6 (the socket buffer) holds and, for TCP (IPv4 unfragmented,
    /// or IPv6 with TCP right after the fixed header), writes its flow key at fp-16 (local
    /// address, remote address, local port, remote port, family word) and falls through; ARP,
    /// ICMPv6 and everything else jump to the labels given. Packet loads clobber r0-r5; r7 and
    /// r8 are used.
    static func emitFlowKey(_ code: inout Assembler, arp: String, icmpv6: String, otherwise: String) {
        code.emit(.loadPacket(.half, at: etherTypeOffset))
        code.jump(.equal, .r0, 0x0806, to: arp)
        code.jump(.equal, .r0, 0x86DD, to: "key-ipv6")
        code.jump(.notEqual, .r0, 0x0800, to: otherwise)
        code.emit(.loadPacket(.byte, at: ipProtocolOffset))
        code.jump(.notEqual, .r0, 6, to: otherwise)
        code.emit(.loadPacket(.half, at: ipFlagsOffset))
        code.emit(.alu32(.and, .r0, 0x3FFF))
        code.jump(.notEqual, .r0, 0, to: otherwise)
        // r7 = IPv4 header length in bytes.
        code.emit(.loadPacket(.byte, at: 14))
        code.emit(.alu32(.and, .r0, 0x0F))
        code.emit(.alu32(.lsh, .r0, 2))
        code.emit(.alu64(.mov, .r7, .r0))
        code.emit(.loadPacket(.word, at: ipDestinationOffset))
        code.emit(.store(.word, .r10, -16, .r0))
        code.emit(.loadPacket(.word, at: ipSourceOffset))
        code.emit(.store(.word, .r10, -12, .r0))
        code.emit(.loadPacket(.half, index: .r7, plus: 14 + 2))
        code.emit(.store(.half, .r10, -8, .r0))
        code.emit(.loadPacket(.half, index: .r7, plus: 14))
        code.emit(.store(.half, .r10, -6, .r0))
        code.emit(.store(.word, .r10, -4, immediate: 0))
        code.jump(to: "key-done")

        // IPv6: the same key, addresses folded.
        code.label("key-ipv6")
        code.emit(.loadPacket(.byte, at: ipv6NextHeaderOffset))
        code.jump(.equal, .r0, 58, to: icmpv6)
        code.jump(.notEqual, .r0, 6, to: otherwise)
        for (offset, slot) in [(ipv6DestinationOffset, Int16(-16)), (ipv6SourceOffset, -12)] {
            // Packet loads clobber r1-r5: the fold accumulates in r8.
            code.emit(.loadPacket(.word, at: offset))
            code.emit(.alu64(.mov, .r8, .r0))
            for word in 1..<4 {
                code.emit(.loadPacket(.word, at: offset + Int32(4 * word)))
                code.emit(.alu32(.xor, .r8, .r0))
            }
            code.emit(.store(.word, .r10, slot, .r8))
        }
        code.emit(.loadPacket(.half, at: ipv6PortsOffset + 2))
        code.emit(.store(.half, .r10, -8, .r0))
        code.emit(.loadPacket(.half, at: ipv6PortsOffset))
        code.emit(.store(.half, .r10, -6, .r0))
        code.emit(.store(.word, .r10, -4, immediate: Int32(ipv6KeyFamily)))
        code.label("key-done")
    }

    /// Instructions with forward jumps to named labels, resolved at the end.
    struct Assembler {
        var code: [BPFInstruction] = []
        var labels: [String: Int] = [:]
        var fixups: [(at: Int, label: String)] = []

        mutating func emit(_ instruction: BPFInstruction) { code.append(instruction) }

        mutating func label(_ name: String) { labels[name] = code.count }

        mutating func jump(
            _ condition: BPFInstruction.Condition, _ register: BPFInstruction.Register, _ value: Int32, to label: String
        ) {
            fixups.append((code.count, label))
            code.append(.jump(condition, register, value, skip: 0))
        }

        /// `jump` comparing 32-bit words (`BPFInstruction.jump32`).
        mutating func jump32(
            _ condition: BPFInstruction.Condition, _ register: BPFInstruction.Register, _ value: Int32, to label: String
        ) {
            fixups.append((code.count, label))
            code.append(.jump32(condition, register, value, skip: 0))
        }

        mutating func jump(to label: String) {
            fixups.append((code.count, label))
            code.append(.jump(skip: 0))
        }

        /// r0 = bpf_map_lookup_elem(map, fp + offset).
        mutating func lookup(map fd: Int32, keyAt offset: Int32) {
            code.append(contentsOf: BPFInstruction.loadMap(.r1, fd: fd))
            code.append(.alu64(.mov, .r2, .r10))
            code.append(.alu64(.add, .r2, offset))
            code.append(.call(BPFInstruction.mapLookupHelper))
        }

        func finish() -> [BPFInstruction] {
            var result = code
            for fixup in fixups {
                let target = labels[fixup.label]!
                result[fixup.at].offset = Int16(target - fixup.at - 1)
            }
            return result
        }
    }
}
