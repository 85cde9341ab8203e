import Foundation
import PacketIO
import Testing
import Wire

@Suite(.enabled(if: getuid() == 0 && KernelHarness.ipTool != nil, "needs root and iproute2 (ip) for a TAP device"))
struct TAPDeviceTests {
    @Test func kernelCountsFramesWrittenToTap() throws {
        let name = "mtp\(Int(getpid()) % 1_000_000)t"
        let tap = try TAPDevice(name: name)
        #expect(tap.name == name)
        #expect(tap.mtu == 1500)
        #expect(tap.macAddress == TAPDevice.defaultAddress(for: name))
        try KernelHarness.ip("link", "set", name, "up")
        let counterPath = "/sys/class/net/\(name)/statistics/rx_packets"
        let before = try #require(KernelHarness.counter(counterPath))

        let frames = 5
        for i in 0..<frames {
            let buffer = try #require(tap.nextTransmitBuffer())
            let ethernet = EthernetHeader(destination: .broadcast, source: tap.macAddress, etherType: 0x88B5)
            let length = ethernet.write(to: buffer)
            for j in length..<64 { buffer[j] = UInt8(truncatingIfNeeded: i + j) }
            tap.commitTransmit(length: 64)
        }
        tap.flush()
        #expect(tap.statistics.framesSent == frames)
        #expect(tap.statistics.transmitErrors == 0)
        let after = try #require(KernelHarness.counter(counterPath))
        #expect(after - before == frames)
    }

    @Test func nameTooLongIsReported() {
        #expect(throws: PacketIOError.interfaceNameTooLong("mtpio-name-far-too-long")) {
            _ = try TAPDevice(name: "mtpio-name-far-too-long")
        }
    }
}
