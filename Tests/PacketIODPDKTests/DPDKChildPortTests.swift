import PacketIO
import PacketIODPDK
import Testing

@Suite struct DPDKChildPortTests {
    static let eal = [
        "mtcp-preload", "--no-huge", "--no-pci", "--vdev=net_tap0,iface=tap9",
        "--vdev=net_af_packet0,iface=veth3,qpairs=2,framecnt=1024", "--no-shconf", "--no-telemetry",
    ]

    @Test func aChildGetsTheDriverWithItsPidAndTheSameArgumentsButOneQueuePair() throws {
        let plan = try DPDKChildPort.plan(ealArguments: Self.eal, device: "net_af_packet0", pid: 4242)
        #expect(plan == DPDKChildPort.Plan(name: "net_af_packet_c4242", arguments: "iface=veth3,framecnt=1024"))
    }

    @Test func theDeviceMayComeAsASeparateArgumentOrUnderItsAlias() throws {
        let eal = ["p", "--no-huge", "--vdev", "eth_af_packet1,iface=v1", "--no-shconf"]
        let plan = try DPDKChildPort.plan(ealArguments: eal, device: "eth_af_packet1", pid: 7)
        #expect(plan == DPDKChildPort.Plan(name: "eth_af_packet_c7", arguments: "iface=v1"))
    }

    @Test func aDeviceNameMustMatchWholeNotAsAPrefix() {
        let eal = ["p", "--no-huge", "--vdev=net_af_packet10,iface=v10"]
        #expect(DPDKChildPort.virtualDevice("net_af_packet1", in: eal) == nil)
        #expect(DPDKChildPort.virtualDevice("net_af_packet10", in: eal) == "net_af_packet10,iface=v10")
        #expect(throws: PacketIOError.self) {
            try DPDKChildPort.plan(ealArguments: eal, device: "net_af_packet1", pid: 1)
        }
    }

    /// Why `device` cannot have a child instance, nil when it can.
    static func refusal(_ eal: [String], _ device: String) -> String? {
        do {
            _ = try DPDKChildPort.plan(ealArguments: eal, device: device, pid: 1)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func refusesDriversThatCannotRunTwicePCIDevicesAndHugepages() {
        #expect(Self.refusal(Self.eal, "net_tap0")?.contains("cannot run a second instance") == true)
        #expect(Self.refusal(Self.eal, "0000:01:00.0")?.contains("is not a virtual device") == true)
        let hugepages = Self.eal.filter { $0 != "--no-huge" }
        #expect(Self.refusal(hugepages, "net_af_packet0")?.contains("hugepages") == true)
        #expect(Self.refusal(Self.eal, "net_af_packet0") == nil)
    }

    @Test func theKernelInterfaceIsTheIfaceArgument() {
        #expect(DPDKChildPort.kernelInterface(of: "net_af_packet0", in: Self.eal) == "veth3")
        #expect(DPDKChildPort.kernelInterface(of: "net_tap0", in: Self.eal) == "tap9")
        #expect(DPDKChildPort.kernelInterface(of: "net_null0", in: Self.eal) == nil)
        #expect(DPDKChildPort.kernelInterface(of: "net_null0", in: ["p", "--vdev=net_null0"]) == nil)
    }
}
