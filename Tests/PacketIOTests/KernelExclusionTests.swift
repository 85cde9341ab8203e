import CShim
import Glibc
import PacketIO
import Testing
import Wire

/// Shared mode's ingress program in the kernel (BPF_PROG_TEST_RUN, no interface attached):
/// the stack's flows and listener ports at its address are dropped before the kernel's IP
/// layer; everything else passes on. Needs root (CAP_BPF).
@Suite(.enabled(if: getuid() == 0, "loading BPF programs needs root"))
struct KernelExclusionTests {
    typealias Frames = FlowSteeringTests
    let maps: FlowSteering.SharedMaps
    let program: Int32
    let steering: FlowSteering

    init() throws {
        maps = try FlowSteering.openMaps(interface: "lo", shared: false)
        program = try KernelExclusion.load(
            KernelExclusion.instructions(
                flows: maps.flows, listeners: maps.listeners, address: IPv4Address(rawValue: Frames.local),
                address6: IPAddress(high: Frames.local6.high, low: Frames.local6.low)))
        steering = try FlowSteering(
            maps: maps, token: FlowSteering.token(pid: getpid(), instance: 1), kernelSharesAddress: true)
        steering.maintain()
    }

    /// The verdict on a frame as tc sees it: from its Ethernet header (the socket filter
    /// tests' frames carry a dummy header first, which tc programs are not run past).
    func verdict(_ frame: [UInt8]) throws -> Int32 {
        var result: UInt32 = 0
        let l2 = Array(frame.dropFirst(14))
        let status = l2.withUnsafeBytes { mtcp_shim_bpf_test_run(program, $0.baseAddress, UInt32($0.count), &result) }
        try #require(status == 0, "BPF_PROG_TEST_RUN errno \(mtcp_shim_errno())")
        return Int32(bitPattern: result)
    }

    @Test func theStacksListenerPortsAndFlowsAreKeptFromTheKernel() throws {
        #expect(try verdict(Frames.frame()) == KernelExclusion.next, "no listener yet: the kernel's")
        _ = steering.listen(port: 80, accepting: true, now: 0)
        #expect(try verdict(Frames.frame()) == KernelExclusion.drop, "a stack listener's port")
        #expect(try verdict(Frames.frame6()) == KernelExclusion.drop, "the same port over IPv6")
        #expect(try verdict(Frames.frame(destinationPort: 9000)) == KernelExclusion.next, "the kernel's port")
        #expect(try verdict(Frames.frame(etherType: 0x0806)) == KernelExclusion.next, "ARP: the kernel answers")
        #expect(try verdict(Frames.frame(protocol: 1)) == KernelExclusion.next, "ICMP: the kernel's")
        #expect(try verdict(Frames.frame6(nextHeader: 58)) == KernelExclusion.next, "ICMPv6: the kernel's")
        #expect(try verdict(Frames.frame(fragment: 0x2000)) == KernelExclusion.next, "fragments: the kernel's")
        // An active open's flow, claimed before its SYN leaves: its replies are the stack's.
        #expect(
            steering.claim(localAddress: Frames.local, localPort: 45000, remoteAddress: Frames.peer, remotePort: 443))
        #expect(try verdict(Frames.frame(sourcePort: 443, destinationPort: 45000)) == KernelExclusion.drop)
        #expect(try verdict(Frames.frame(sourcePort: 444, destinationPort: 45000)) == KernelExclusion.next)
        steering.release(localAddress: Frames.local, localPort: 45000, remoteAddress: Frames.peer, remotePort: 443)
        #expect(try verdict(Frames.frame(sourcePort: 443, destinationPort: 45000)) == KernelExclusion.next)
        steering.stopListening(port: 80)
        #expect(try verdict(Frames.frame()) == KernelExclusion.next, "the listener closed: the kernel resets")
    }

    @Test func aListenerPortAtAnotherKernelAddressStaysTheKernels() throws {
        let other = try KernelExclusion.load(
            KernelExclusion.instructions(
                flows: maps.flows, listeners: maps.listeners, address: IPv4Address(rawValue: Frames.local + 1),
                address6: nil))
        defer { close(other) }
        _ = steering.listen(port: 80, accepting: true, now: 0)
        var result: UInt32 = 0
        for frame in [Frames.frame(), Frames.frame6()] {
            let l2 = Array(frame.dropFirst(14))
            _ = l2.withUnsafeBytes { mtcp_shim_bpf_test_run(other, $0.baseAddress, UInt32($0.count), &result) }
            #expect(Int32(bitPattern: result) == KernelExclusion.next)
        }
    }

    @Test func inSharedModeNoInstanceSeesTheKernelsTCP() throws {
        // The primary would answer it with RST; the kernel's connections must never see one.
        #expect(try !FlowSteeringTests.accepts(steering, Frames.frame(destinationPort: 9000)))
        #expect(try FlowSteeringTests.accepts(steering, Frames.frame(protocol: 1)), "ICMP errors: the primary")
        #expect(try FlowSteeringTests.accepts(steering, Frames.frame(etherType: 0x0806)), "ARP: everyone learns")
        _ = steering.listen(port: 80, accepting: true, now: 0)
        #expect(try FlowSteeringTests.accepts(steering, Frames.frame()))
    }
}
