import Foundation
import PacketIO
import Testing
import Wire

/// Writes a broadcast ARP request from `ring` asking who has `target`.
func sendARPRequest<IO: PacketIO>(_ io: IO, from sender: IPv4Address, asking target: IPv4Address) throws {
    let buffer = try #require(io.nextTransmitBuffer())
    let ethernet = EthernetHeader(destination: .broadcast, source: io.macAddress, etherType: EtherType.arp)
    var length = ethernet.write(to: buffer)
    let arp = ARPPacket(
        operation: ARPPacket.request, senderMAC: io.macAddress, senderIP: sender, targetMAC: .zero, targetIP: target)
    length += arp.write(to: UnsafeMutableRawBufferPointer(rebasing: buffer[length...]))
    // Pad to the Ethernet minimum.
    for i in length..<60 { buffer[i] = 0 }
    io.commitTransmit(length: 60)
}

/// Waits (poll on the wait descriptor, at most `rounds` x 50 ms) and feeds frames to
/// `body` until `done` says so.
func pump<IO: PacketIO>(
    _ ios: [IO], rounds: Int = 100, _ body: (Int, UnsafeRawBufferPointer) -> Void, until done: () -> Bool
) {
    for _ in 0..<rounds where !done() {
        var fds = ios.map { pollfd(fd: $0.waitDescriptor, events: Int16(POLLIN), revents: 0) }
        _ = poll(&fds, nfds_t(fds.count), 50)
        for (index, io) in ios.enumerated() {
            _ = io.receive(limit: 64) { frame in body(index, frame) }
        }
    }
}

/// The ARP reply in a frame, if it is one addressed to `mac`.
func arpReply(in frame: UnsafeRawBufferPointer, to mac: MACAddress) -> ARPPacket? {
    guard let (header, payload) = try? EthernetHeader.parse(frame), header.etherType == EtherType.arp,
        let arp = try? ARPPacket.parse(payload), arp.operation == ARPPacket.reply, arp.targetMAC == mac
    else { return nil }
    return arp
}

extension AFPacketRing.Configuration {
    /// Small rings, so parallel tests stay light.
    static var small: Self {
        var configuration = Self()
        configuration.blockSize = 1 << 18
        configuration.blockCount = 4
        configuration.transmitFrameCount = 256
        return configuration
    }
}

@Suite(.serialized, .enabled(if: KernelHarness.available, "needs root and iproute2 (ip) to build a veth pair"))
struct AFPacketRingTests {
    @Test func missingInterfaceIsReported() {
        #expect(throws: PacketIOError.noSuchInterface("mtpio-none")) {
            _ = try AFPacketRing(interface: "mtpio-none")
        }
    }

    /// Both receive modes: per-frame TPACKET_V2 slots and TPACKET_V3 blocks.
    @Test(arguments: [AFPacketRing.ReceiveMode.frames, .blocks])
    func kernelAnswersARPRequestSentFromRing(mode: AFPacketRing.ReceiveMode) throws {
        let veth = VethPair(tag: mode == .frames ? "a" : "b")
        defer { veth.destroy() }
        try veth.create()
        var configuration = AFPacketRing.Configuration.small
        configuration.receiveMode = mode
        let ring = try AFPacketRing(interface: veth.outer, configuration: configuration)
        #expect(ring.mtu == 1500)
        #expect(ring.macAddress != .zero)

        let target = try #require(IPv4Address(veth.innerAddress))
        let me = IPv4Address(10, 213, veth.subnet, 2)
        try sendARPRequest(ring, from: me, asking: target)
        ring.flush()
        #expect(ring.statistics.framesSent == 1)

        var reply: ARPPacket?
        var ownFrames = 0
        pump(
            [ring],
            { _, frame in
                if frame.count >= 12,
                    MACAddress(frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]) == ring.macAddress
                {
                    ownFrames += 1
                }
                if let arp = arpReply(in: frame, to: ring.macAddress) { reply = arp }
            }, until: { reply != nil })
        let answer = try #require(reply, "no ARP reply from the kernel")
        #expect(answer.senderIP == target)
        #expect(answer.targetIP == me)
        #expect(ownFrames == 0, "the ring handed back a frame it sent")
        #expect(ring.statistics.framesReceived >= 1)
        #expect(ring.statistics.receiveDrops == 0)
    }

    @Test func fanoutGroupSharesTraffic() throws {
        let veth = VethPair(tag: "f")
        defer { veth.destroy() }
        try veth.create()
        let group = UInt16(truncatingIfNeeded: getpid())
        let first = try AFPacketRing(interface: veth.outer, fanoutGroup: group, configuration: .small)
        let second = try AFPacketRing(interface: veth.outer, fanoutGroup: group, configuration: .small)
        let target = try #require(IPv4Address(veth.innerAddress))
        let requests = 32
        for i in 0..<requests {
            try sendARPRequest(first, from: IPv4Address(10, 213, veth.subnet, UInt8(10 + i)), asking: target)
        }
        first.flush()

        var counts = [0, 0]
        var askers = Set<IPv4Address>()
        pump(
            [first, second],
            { index, frame in
                if let arp = arpReply(in: frame, to: first.macAddress) {
                    counts[index] += 1
                    askers.insert(arp.targetIP)
                }
            }, until: { counts[0] + counts[1] >= requests })
        // Drain a little longer: a duplicate delivery would show up here.
        pump(
            [first, second], rounds: 4,
            { index, frame in
                if arpReply(in: frame, to: first.macAddress) != nil { counts[index] += 1 }
            }, until: { false })
        #expect(counts[0] + counts[1] == requests, "each reply reaches exactly one group member: \(counts)")
        #expect(askers.count == requests)
    }

    @Test func unfinishedChecksumsAreCompleted() throws {
        let veth = VethPair(tag: "c")
        defer { veth.destroy() }
        // Offloads stay on: the kernel peer leaves UDP checksums to "hardware".
        try veth.create(offloadsOff: false)
        let bash = try #require(KernelHarness.bash)
        let ring = try AFPacketRing(interface: veth.outer, configuration: .small)
        let me = "10.213.\(veth.subnet).2"
        try KernelHarness.ip(
            "-n", veth.namespace, "neigh", "add", me, "lladdr", "\(ring.macAddress)", "dev", veth.inner)
        try KernelHarness.run(
            KernelHarness.ipTool!,
            ["netns", "exec", veth.namespace, bash, "-c", "echo hello-ring > /dev/udp/\(me)/9999"])

        var udpFrames = 0
        var valid = 0
        pump(
            [ring],
            { _, frame in
                guard let (header, packet) = try? EthernetHeader.parse(frame), header.etherType == EtherType.ipv4,
                    packet.count >= 28, packet[9] == 17
                else { return }
                udpFrames += 1
                let headerLength = Int(packet[0] & 0x0F) * 4
                let totalLength = Int(packet[2]) << 8 | Int(packet[3])
                let source = IPv4Address(packet[12], packet[13], packet[14], packet[15])
                let destination = IPv4Address(packet[16], packet[17], packet[18], packet[19])
                var sum = InternetChecksum.pseudoHeader(
                    source: source, destination: destination, protocol: 17, length: totalLength - headerLength)
                sum.add(UnsafeRawBufferPointer(rebasing: packet[headerLength..<totalLength]))
                if sum.isValid { valid += 1 }
            }, until: { udpFrames > 0 })
        #expect(udpFrames == 1)
        #expect(valid == 1, "the UDP checksum verifies after completion")
        // Whether the kernel marks the frame depends on the peer's offloads; on a veth with
        // tx checksumming on it does.
        #expect(ring.checksumsCompleted == 1)
    }
}
