import CShim
import Glibc
import PacketIO
import Testing

/// The steering program and its maps in the kernel (BPF_PROG_TEST_RUN): every frame reaches
/// exactly the instance the design says, as membership changes. Needs root (CAP_BPF).
@Suite(.enabled(if: getuid() == 0, "loading BPF programs needs root"))
struct FlowSteeringTests {
    static let local: UInt32 = 0x0A0B_0001
    static let peer: UInt32 = 0x0A0B_0002

    /// A frame as the program runs on it. BPF_PROG_TEST_RUN strips an Ethernet header for
    /// socket filters (a packet socket's filter sees it), so a dummy one goes in front.
    static func frame(
        etherType: UInt16 = 0x0800, protocol ipProtocol: UInt8 = 6, fragment: UInt16 = 0x4000,
        source: UInt32 = peer, sourcePort: UInt16 = 40000, destinationPort: UInt16 = 80
    ) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 14)
        bytes[12] = 0x08
        bytes += [0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, UInt8(etherType >> 8), UInt8(etherType & 0xFF)]
        var ip = [UInt8](repeating: 0, count: 20)
        ip[0] = 0x45
        ip[3] = 40
        ip[6] = UInt8(fragment >> 8)
        ip[7] = UInt8(fragment & 0xFF)
        ip[8] = 64
        ip[9] = ipProtocol
        for k in 0..<4 {
            ip[12 + k] = UInt8(truncatingIfNeeded: source >> (24 - 8 * k))
            ip[16 + k] = UInt8(truncatingIfNeeded: local >> (24 - 8 * k))
        }
        var tcp = [UInt8](repeating: 0, count: 20)
        tcp[0] = UInt8(sourcePort >> 8)
        tcp[1] = UInt8(sourcePort & 0xFF)
        tcp[2] = UInt8(destinationPort >> 8)
        tcp[3] = UInt8(destinationPort & 0xFF)
        tcp[12] = 0x50
        tcp[13] = 0x02
        return bytes + ip + tcp
    }

    static let local6 = (high: UInt64(0xFD77_0000_0000_0000), low: UInt64(2))
    static let peer6 = (high: UInt64(0xFD77_0000_0000_0000), low: UInt64(0x1234_5678_9ABC_0001))

    /// An IPv6 frame (with the dummy header in front) carrying TCP or ICMPv6.
    static func frame6(nextHeader: UInt8 = 6, sourcePort: UInt16 = 40000, destinationPort: UInt16 = 80) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 14)
        bytes[12] = 0x08
        bytes += [0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x86, 0xDD]
        var ip = [UInt8](repeating: 0, count: 40)
        ip[0] = 0x60
        ip[5] = 20
        ip[6] = nextHeader
        ip[7] = 64
        for k in 0..<8 {
            ip[8 + k] = UInt8(truncatingIfNeeded: peer6.high >> (56 - 8 * UInt64(k)))
            ip[16 + k] = UInt8(truncatingIfNeeded: peer6.low >> (56 - 8 * UInt64(k)))
            ip[24 + k] = UInt8(truncatingIfNeeded: local6.high >> (56 - 8 * UInt64(k)))
            ip[32 + k] = UInt8(truncatingIfNeeded: local6.low >> (56 - 8 * UInt64(k)))
        }
        var tcp = [UInt8](repeating: 0, count: 20)
        tcp[0] = UInt8(sourcePort >> 8)
        tcp[1] = UInt8(sourcePort & 0xFF)
        tcp[2] = UInt8(destinationPort >> 8)
        tcp[3] = UInt8(destinationPort & 0xFF)
        tcp[12] = 0x50
        tcp[13] = 0x02
        return bytes + ip + tcp
    }

    @Test func ipv6FlowsReachTheirOwnerAndICMPv6ReachesEveryone() throws {
        let maps = try FlowSteering.openMaps(interface: "lo", shared: false)
        let a = try FlowSteering(maps: maps, token: FlowSteering.token(pid: getpid(), instance: 1))
        let b = try FlowSteering(maps: maps, token: FlowSteering.token(pid: getpid(), instance: 2))
        let both = [a, b]
        a.maintain()
        #expect(try Self.receivers(both, Self.frame6(nextHeader: 58)) == [a.token, b.token], "ICMPv6: everyone")
        #expect(try Self.receivers(both, Self.frame6(nextHeader: 0)) == [a.token], "extension headers: primary")
        #expect(try Self.receivers(both, Self.frame6()) == [a.token], "no listener: primary")
        b.listen(port: 80, accepting: true, now: 0)
        #expect(try Self.receivers(both, Self.frame6()) == [b.token], "the only accepting member")
        a.listen(port: 80, accepting: true, now: 0)
        // A flow claimed with its folded addresses stays with its owner whatever the hash says.
        let local = SteeringProgram.fold(high: Self.local6.high, low: Self.local6.low)
        let peer = SteeringProgram.fold(high: Self.peer6.high, low: Self.peer6.low)
        for port in UInt16(41000)..<41010 {
            #expect(
                a.claim(
                    localAddress: local, localPort: 80, remoteAddress: peer, remotePort: port,
                    family: SteeringProgram.ipv6KeyFamily))
            #expect(try Self.receivers(both, Self.frame6(sourcePort: port)) == [a.token])
            // The same numbers as an IPv4 key are another flow.
            #expect(b.claim(localAddress: local, localPort: 80, remoteAddress: peer, remotePort: port))
        }
    }

    static func accepts(_ steering: FlowSteering, _ frame: [UInt8]) throws -> Bool {
        var result: UInt32 = 0
        let status = frame.withUnsafeBytes {
            mtcp_shim_bpf_test_run(steering.program, $0.baseAddress, UInt32($0.count), &result)
        }
        try #require(status == 0, "BPF_PROG_TEST_RUN errno \(mtcp_shim_errno())")
        return result != 0
    }

    /// Which of `instances` keep `frame`.
    static func receivers(_ instances: [FlowSteering], _ frame: [UInt8]) throws -> [UInt32] {
        try instances.filter { try accepts($0, frame) }.map(\.token)
    }

    @Test func framesReachTheirOwnerOnly() throws {
        let maps = try FlowSteering.openMaps(interface: "lo", shared: false)
        let a = try FlowSteering(maps: maps, token: FlowSteering.token(pid: getpid(), instance: 1))
        let b = try FlowSteering(maps: maps, token: FlowSteering.token(pid: getpid(), instance: 2))
        let both = [a, b]
        a.maintain()
        #expect(a.isPrimary)

        #expect(try Self.receivers(both, Self.frame(etherType: 0x0806)) == [a.token, b.token], "ARP reaches everyone")
        #expect(try Self.receivers(both, Self.frame(etherType: 0x86DD)) == [a.token], "other EtherTypes: primary")
        #expect(try Self.receivers(both, Self.frame(protocol: 1)) == [a.token], "ICMP: primary")
        #expect(try Self.receivers(both, Self.frame(fragment: 0x2000)) == [a.token], "fragments: primary")
        #expect(try Self.receivers(both, Self.frame()) == [a.token], "no listener: primary (resets)")

        // A port held but accepted by nobody: the primary (it parks SYNs).
        b.listen(port: 80, accepting: false, now: 0)
        #expect(try Self.receivers(both, Self.frame()) == [a.token])
        b.listen(port: 80, accepting: true, now: 0)
        for port in UInt16(40000)..<40050 {
            #expect(try Self.receivers(both, Self.frame(sourcePort: port)) == [b.token], "b is the only member")
        }
        a.listen(port: 80, accepting: true, now: 0)
        var shares = [0, 0]
        // Ports step by 2 (Linux's connect does) and all come from one peer address.
        for port in stride(from: UInt16(40000), to: 40800, by: 2) {
            let members = try #require(a.listenerSet(port: 80)).members
            let expected = members[
                Int(SteeringProgram.memberIndex(remoteAddress: Self.peer, remotePort: port, localPort: 80, count: 2))]
            let got = try Self.receivers(both, Self.frame(sourcePort: port))
            #expect(got == [expected])
            shares[expected == a.token ? 0 : 1] += 1
        }
        #expect(shares[0] > 120 && shares[1] > 120, "new flows spread over both members: \(shares)")

        // A claimed flow stays with its owner whatever the hash says, also after it leaves.
        var owned: [UInt16] = []
        for port in UInt16(41000)..<41020 {
            #expect(b.claim(localAddress: Self.local, localPort: 80, remoteAddress: Self.peer, remotePort: port))
            #expect(!a.claim(localAddress: Self.local, localPort: 80, remoteAddress: Self.peer, remotePort: port))
            owned.append(port)
        }
        b.stopListening(port: 80)
        for port in owned {
            #expect(try Self.receivers(both, Self.frame(sourcePort: port)) == [b.token])
        }
        #expect(try Self.receivers(both, Self.frame(sourcePort: 42000)) == [a.token], "new flows: the one member left")
        b.release(localAddress: Self.local, localPort: 80, remoteAddress: Self.peer, remotePort: owned[0])
        #expect(try Self.receivers(both, Self.frame(sourcePort: owned[0])) == [a.token])
        #expect(a.statistics.claimConflicts == 20)
    }

    @Test func aHandedOverFlowsFramesTurnToItsNewOwnerWithItsState() throws {
        let maps = try FlowSteering.openMaps(interface: "lo", shared: false)
        let old = try FlowSteering(maps: maps, token: FlowSteering.token(pid: getpid(), instance: 5))
        let new = try FlowSteering(maps: maps, token: FlowSteering.token(pid: getpid(), instance: 6))
        let both = [old, new]
        old.maintain()
        old.listen(port: 80, accepting: true, now: 0)
        #expect(old.claim(localAddress: Self.local, localPort: 80, remoteAddress: Self.peer, remotePort: 43000))
        let state: [UInt8] = Array(0..<200)
        let hand = {
            state.withUnsafeBytes {
                old.handOver(
                    localAddress: Self.local, localPort: 80, remoteAddress: Self.peer, remotePort: 43000, state: $0)
            }
        }
        #expect(!hand(), "nobody else accepts on the port: no handover (the connection is reset)")
        new.listen(port: 80, accepting: true, now: 0)
        old.stopListening(port: 80)
        #expect(hand())
        #expect(try Self.receivers(both, Self.frame(sourcePort: 43000)) == [new.token], "the flow's frames go to new")
        #expect(
            old.takeHandover(localAddress: Self.local, localPort: 80, remoteAddress: Self.peer, remotePort: 43000)
                == nil, "only the instance it is for takes it")
        let taken = try #require(
            new.takeHandover(localAddress: Self.local, localPort: 80, remoteAddress: Self.peer, remotePort: 43000))
        #expect(Array(taken.prefix(200)) == state)
        #expect(
            new.takeHandover(localAddress: Self.local, localPort: 80, remoteAddress: Self.peer, remotePort: 43000)
                == nil, "taken once")

        // Taken in a round when no segment brings it.
        #expect(old.claim(localAddress: Self.local, localPort: 80, remoteAddress: Self.peer, remotePort: 43001))
        #expect(
            state.withUnsafeBytes {
                old.handOver(
                    localAddress: Self.local, localPort: 80, remoteAddress: Self.peer, remotePort: 43001, state: $0)
            })
        let pending = new.pendingHandovers()
        #expect(pending.count == 1)
        #expect(pending.first?.3 == 43001)
        #expect(new.pendingHandovers().isEmpty)
        #expect(old.statistics.handoversGiven == 2 && new.statistics.handoversTaken == 2)
    }

    @Test func parkedSYNsGoToTheFirstAcceptor() throws {
        let maps = try FlowSteering.openMaps(interface: "lo", shared: false)
        let primary = try FlowSteering(maps: maps, token: FlowSteering.token(pid: getpid(), instance: 3))
        let worker = try FlowSteering(maps: maps, token: FlowSteering.token(pid: getpid(), instance: 4))
        primary.listen(port: 8080, accepting: false, now: 0)
        #expect(primary.awaitsAcceptor(port: 8080))
        let syn = Self.frame(destinationPort: 8080)
        let parked = syn.withUnsafeBytes {
            primary.park(frame: UnsafeRawBufferPointer(rebasing: $0[14...]), port: 8080, now: 1000)
        }
        #expect(parked)
        #expect(worker.listen(port: 9090, accepting: true, now: 2000).isEmpty, "another port's SYN stays parked")
        let handed = worker.listen(port: 8080, accepting: true, now: 2000)
        #expect(handed == [Array(syn[14...])])
        #expect(!primary.awaitsAcceptor(port: 8080))
        #expect(worker.listen(port: 8080, accepting: true, now: 3000).isEmpty)
        // An expired SYN is not handed on.
        primary.listen(port: 7070, accepting: false, now: 0)
        _ = syn.withUnsafeBytes { primary.park(frame: UnsafeRawBufferPointer(rebasing: $0[14...]), port: 7070, now: 0) }
        #expect(worker.listen(port: 7070, accepting: true, now: FlowSteering.parkingLifetimeNanoseconds + 1).isEmpty)
    }

    @Test func deadInstancesAreSweptByThePrimary() throws {
        let maps = try FlowSteering.openMaps(interface: "lo", shared: false)
        let deadToken = FlowSteering.token(pid: getpid(), instance: 9)
        let primary = try FlowSteering(
            maps: maps, token: FlowSteering.token(pid: getpid(), instance: 5), isAlive: { $0 != deadToken })
        let dead = try FlowSteering(maps: maps, token: deadToken)
        dead.listen(port: 80, accepting: true, now: 0)
        primary.listen(port: 80, accepting: true, now: 0)
        for port in UInt16(50000)..<50010 {
            #expect(dead.claim(localAddress: Self.local, localPort: 80, remoteAddress: Self.peer, remotePort: port))
        }
        primary.maintain()
        #expect(primary.statistics.instancesSwept == 1)
        #expect(primary.statistics.flowsSwept == 10)
        #expect(primary.listenerSet(port: 80)?.members == [primary.token])
        for port in UInt16(50000)..<50010 {
            #expect(try Self.accepts(primary, Self.frame(sourcePort: port)))
            #expect(try !Self.accepts(dead, Self.frame(sourcePort: port)))
        }
    }
}
