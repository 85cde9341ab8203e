import CShim
import Glibc
import Wire

/// Keeps the stack's TCP frames from the kernel when both have the same address on one
/// interface (shared mode): a tc ingress program (tcx) drops, before the kernel's IP layer,
/// every TCP frame whose flow is in the steering flow map or whose destination port has a
/// stack listener at the stack's address. The packet sockets have taken their copy by then
/// (taps run before ingress), so the stack still gets them; the kernel never sees them and so
/// never answers the stack's flows with RST. Everything else (ARP, ICMP, the kernel's own
/// ports and connections) passes on to the kernel.
///
/// One per process: the link's descriptor keeps the program attached, a fork child inherits
/// it, and the kernel removes the program when the last process holding it exits.
public final class KernelExclusion {
    public let program: Int32
    public let link: Int32

    /// BPF_PROG_TYPE_SCHED_CLS and BPF_TCX_INGRESS (Linux 6.6; the headers here are older).
    static let schedulerClassifier: UInt32 = 3
    static let tcxIngress: UInt32 = 46

    /// Loads the program over `maps` for the stack's `address` (and `address6` when IPv6 is on)
    /// and attaches it at `interface`'s ingress.
    public init(
        maps: FlowSteering.SharedMaps, interface: String, address: IPv4Address, address6: IPAddress?
    ) throws(PacketIOError) {
        let index = if_nametoindex(interface)
        guard index != 0 else { throw .noSuchInterface(interface) }
        program = try Self.load(
            Self.instructions(flows: maps.flows, listeners: maps.listeners, address: address, address6: address6))
        let link = mtcp_shim_bpf_link_create(program, Int32(index), Self.tcxIngress)
        guard link >= 0 else {
            let errno = mtcp_shim_errno()
            close(program)
            throw .system(call: "bpf(BPF_LINK_CREATE tcx ingress of \(interface)), Linux 6.6 or later", errno: errno)
        }
        self.link = link
    }

    deinit {
        close(link)
        close(program)
    }

    /// The program's descriptor (tests run it with BPF_PROG_TEST_RUN).
    public static func load(_ code: [BPFInstruction]) throws(PacketIOError) -> Int32 {
        let words = code.map(\.bytes)
        var log = [CChar](repeating: 0, count: 16384)
        let fd = words.withUnsafeBytes { raw in
            mtcp_shim_bpf_load_program(
                schedulerClassifier, raw.baseAddress, UInt32(words.count), &log, UInt32(log.count))
        }
        guard fd >= 0 else {
            let errno = mtcp_shim_errno()
            let verifier = String(cString: log).split(separator: "\n").suffix(3).joined(separator: " | ")
            throw .system(call: "bpf(BPF_PROG_LOAD kernel exclusion) \(verifier)", errno: errno)
        }
        return fd
    }

    /// tcx verdicts: drop, or on to the next program (the kernel when there is none).
    public static let drop: Int32 = 2
    public static let next: Int32 = -1

    /// The classifier: the steering program's flow key, then the flow map, then the listener
    /// map (at the stack's address only: the kernel may have other addresses there).
    public static func instructions(flows: Int32, listeners: Int32, address: IPv4Address, address6: IPAddress?)
        -> [BPFInstruction]
    {
        typealias I = BPFInstruction
        var code = SteeringProgram.Assembler()
        code.emit(.alu64(.mov, .r6, .r1))
        SteeringProgram.emitFlowKey(&code, arp: "kernel", icmpv6: "kernel", otherwise: "kernel")
        code.lookup(map: flows, keyAt: -16)
        code.jump(.notEqual, .r0, 0, to: "stack")
        code.emit(.load(.half, .r1, .r10, -8))
        code.emit(.store(.word, .r10, -20, .r1))
        code.lookup(map: listeners, keyAt: -20)
        code.jump(.equal, .r0, 0, to: "kernel")
        code.emit(.load(.word, .r1, .r10, -4))
        code.emit(.load(.word, .r2, .r10, -16))
        code.jump(.equal, .r1, Int32(SteeringProgram.ipv6KeyFamily), to: "ipv6")
        if address != .any {
            code.jump32(.equal, .r2, Int32(bitPattern: address.rawValue), to: "stack")
        }
        code.jump(to: "kernel")
        code.label("ipv6")
        if let address6 {
            let fold = SteeringProgram.fold(high: address6.high, low: address6.low)
            code.jump32(.equal, .r2, Int32(bitPattern: fold), to: "stack")
        }
        code.label("kernel")
        code.emit(.alu64(.mov, .r0, next))
        code.emit(.exit)
        code.label("stack")
        code.emit(.alu64(.mov, .r0, drop))
        code.emit(.exit)
        return code.finish()
    }
}
