import PacketIO
import PacketIODPDK
import Testing

@Suite struct DPDKConfigurationTests {
    @Test func splitsArgumentTextAtBlanksAndKeepsQuotedSpaces() {
        #expect(
            DPDKConfiguration.split("  --no-huge\t--vdev=net_af_packet0,iface=v0  -l 0-1 ")
                == ["--no-huge", "--vdev=net_af_packet0,iface=v0", "-l", "0-1"])
        #expect(DPDKConfiguration.split("--log-level \"pmd.net.*, 8\"") == ["--log-level", "pmd.net.*, 8"])
        #expect(DPDKConfiguration.split("a \"\" b") == ["a", "", "b"])
        #expect(DPDKConfiguration.split("   ").isEmpty)
    }

    @Test func blanksSeparateEvenBeforeACombiningMark() {
        // As characters, " \u{364}" and "\r\n" are one each: the blank would not separate.
        #expect(DPDKConfiguration.split("a \u{364}b") == ["a", "\u{364}b"])
        #expect(DPDKConfiguration.split("a\r\nb") == ["a\r", "b"])
        #expect(DPDKConfiguration.needsQuotes(" \u{364}") && DPDKConfiguration.needsQuotes("a\tb"))
        #expect(DPDKConfiguration.needsQuotes("") && !DPDKConfiguration.needsQuotes("-l"))
    }

    @Test func structuredOptionsComeFirstThenTheGivenArgumentsThenDefaults() {
        var configuration = DPDKConfiguration()
        configuration.lcores = "0-1"
        configuration.memoryChannels = 4
        configuration.noHugePages = true
        configuration.virtualDevices = ["net_af_packet0,iface=v0"]
        configuration.allowedPCI = ["0000:01:00.0"]
        configuration.arguments = ["--log-level", "8"]
        #expect(
            configuration.ealArguments(programName: "p") == [
                "p", "-l", "0-1", "-n", "4", "--no-huge", "--vdev=net_af_packet0,iface=v0", "-a", "0000:01:00.0",
                "--log-level", "8", "--no-shconf", "--no-telemetry",
            ])
    }

    @Test func sharedFilesAreAvoidedUnlessTheUserChoseAMode() {
        var configuration = DPDKConfiguration()
        #expect(configuration.ealArguments() == ["mtcp", "--in-memory", "--no-telemetry"])
        configuration.arguments = ["--no-huge"]
        #expect(configuration.ealArguments() == ["mtcp", "--no-huge", "--no-shconf", "--no-telemetry"])
        configuration.arguments = ["--file-prefix=app1", "--telemetry"]
        #expect(configuration.ealArguments() == ["mtcp", "--file-prefix=app1", "--telemetry"])
        configuration.arguments = ["--proc-type", "primary", "--no-telemetry"]
        #expect(configuration.ealArguments() == ["mtcp", "--proc-type", "primary", "--no-telemetry"])
    }

    @Test func aBadQueueCountIsRefusedBeforeTheEALStarts() {
        var configuration = DPDKConfiguration()
        configuration.queues = 0
        #expect(throws: PacketIOError.invalidConfiguration("DPDK queue count must be 1-64, not 0")) {
            _ = try DPDKPort(configuration: configuration)
        }
        configuration.queues = 65
        #expect(throws: PacketIOError.self) { _ = try DPDKPort(configuration: configuration) }
    }
}
