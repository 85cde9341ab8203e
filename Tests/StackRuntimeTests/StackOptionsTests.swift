import Glibc
import PacketIO
import PacketIODPDK
import Stack
import StackRuntime
import Testing
import Wire

@Suite struct StackOptionsTests {
    @Test func defaults() throws {
        var arguments = ["--iface", "veth0", "--addr", "10.0.0.2"]
        let options = try StackOptions.parse(&arguments, environment: [:])
        #expect(arguments.isEmpty)
        #expect(options.enabled)
        #expect(options.interface == "veth0")
        #expect(options.address == IPv4Address(10, 0, 0, 2))
        #expect(options.prefixLength == 24)
        #expect(options.gateway == nil)
        #expect(options.backend == .afpacket)
        #expect(options.cores == 1)
        #expect(options.logLevel == .warn)
        #expect(options.kernelListen)
        #expect(options.statsPath == nil)
        #expect(options.configPath == nil)
    }

    @Test func programArgumentsStayInOrder() throws {
        var arguments = [
            "--root", "/www", "--iface", "v", "--port", "80", "--addr", "1.2.3.4/16", "--no-kernel-listen",
        ]
        let options = try StackOptions.parse(&arguments, environment: [:])
        #expect(arguments == ["--root", "/www", "--port", "80"])
        #expect(options.prefixLength == 16)
        #expect(!options.kernelListen)
    }

    @Test func flagsBeatEnvironmentWhichBeatsTheConfigFile() throws {
        let file = TemporaryFile(
            """
            iface = from-file
            MTCP_ADDR = 10.1.1.1/8
            cores = 2
            log = debug
            stats = /tmp/file-stats
            """)
        var arguments = ["--iface", "from-flag", "--log", "error"]
        let environment = ["MTCP_CONFIG": file.path, "MTCP_IFACE": "from-env", "MTCP_CORES": "3", "MTCP_LOG": "info"]
        let options = try StackOptions.parse(&arguments, environment: environment)
        #expect(options.interface == "from-flag")
        #expect(options.logLevel == .error)
        #expect(options.cores == 3)
        #expect(options.address == IPv4Address(10, 1, 1, 1))
        #expect(options.prefixLength == 8)
        #expect(options.statsPath == "/tmp/file-stats")
        #expect(options.configPath == file.path)
    }

    @Test func configFlagReplacesTheConfigVariable() throws {
        let chosen = TemporaryFile("iface = chosen\naddr = 10.0.0.9\n")
        let other = TemporaryFile("iface = other\naddr = 10.0.0.8\n")
        var arguments = ["--config", chosen.path]
        let options = try StackOptions.parse(&arguments, environment: ["MTCP_CONFIG": other.path])
        #expect(options.interface == "chosen")
        #expect(options.configPath == chosen.path)
    }

    @Test func fromEnvironmentReadsFileThenVariables() throws {
        let file = TemporaryFile("iface = veth9\naddr = 192.168.5.2/24\ngateway = 192.168.5.1\nkernel_listen = no\n")
        let options = try StackOptions.fromEnvironment([
            "MTCP_CONFIG": file.path, "MTCP_BACKEND": "tap", "MTCP_STATS": "/tmp/s", "MTCP_GATEWAY": "",
        ])
        #expect(options.interface == "veth9")
        #expect(options.gateway == IPv4Address(192, 168, 5, 1))
        #expect(options.backend == .tap)
        #expect(!options.kernelListen)
        #expect(options.statsPath == "/tmp/s")
    }

    @Test func disabledNeedsNoInterface() throws {
        let options = try StackOptions.fromEnvironment(["MTCP_ENABLE": "0"])
        #expect(!options.enabled)
        #expect {
            _ = try StackOptions.fromEnvironment([:])
        } throws: { error in
            "\(error)".contains("no interface")
        }
        #expect {
            _ = try StackOptions.fromEnvironment(["MTCP_IFACE": "v"])
        } throws: { error in
            "\(error)".contains("no address")
        }
    }

    @Test func disabledInTheEnvironmentIgnoresEverythingElse() throws {
        let broken = TemporaryFile("this is not a setting\n")
        let options = try StackOptions.fromEnvironment([
            "MTCP_ENABLE": "0", "MTCP_CONFIG": broken.path, "MTCP_LOG": "loud",
        ])
        #expect(!options.enabled)
        // Disabled in the file: the file and the variables are still read and checked.
        let file = TemporaryFile("enable = 0\nlog = debug\n")
        #expect(try !StackOptions.fromEnvironment(["MTCP_CONFIG": file.path]).enabled)
        #expect {
            _ = try StackOptions.fromEnvironment(["MTCP_CONFIG": file.path, "MTCP_LOG": "loud"])
        } throws: { error in
            "\(error)".hasPrefix("MTCP_LOG: bad log level loud")
        }
    }

    @Test(arguments: [
        ("error", StackOptions.LogLevel.error), ("warn", .warn), ("warning", .warn), ("INFO", .info),
        ("debug", .debug), ("0", .error), ("1", .warn), ("2", .info), ("3", .debug),
    ])
    func logLevels(text: String, level: StackOptions.LogLevel) throws {
        let options = try StackOptions.fromEnvironment([
            "MTCP_IFACE": "v", "MTCP_ADDR": "10.0.0.2", "MTCP_LOG": text,
        ])
        #expect(options.logLevel == level)
    }

    @Test(arguments: [
        (["MTCP_LOG": "loud"], "MTCP_LOG: bad log level loud"),
        (["MTCP_LOG": "4"], "MTCP_LOG: bad log level 4"),
        (["MTCP_ENABLE": "maybe"], "MTCP_ENABLE: expected 1 or 0"),
        (["MTCP_KERNEL_LISTEN": "2"], "MTCP_KERNEL_LISTEN: expected 1 or 0"),
        (["MTCP_STEERING": "fanout"], "MTCP_STEERING: bad steering fanout"),
        (["MTCP_BACKEND": "netmap"], "MTCP_BACKEND: backend netmap is not available"),
        (["MTCP_CORES": "0"], "MTCP_CORES: bad core count 0"),
        (["MTCP_ADDR": "10.0.0"], "MTCP_ADDR: bad address 10.0.0"),
        // A lone slash trapped (found by the preload fuzz target); an empty prefix is no prefix.
        (["MTCP_ADDR": "/"], "MTCP_ADDR: bad address /"),
        (["MTCP_ADDR": "10.0.0.2/"], "MTCP_ADDR: bad prefix in 10.0.0.2/"),
        (["MTCP_BUSY_POLL": "-1"], "MTCP_BUSY_POLL: bad busy-poll time -1"),
        (["MTCP_PCAP_SIZE": "0"], "MTCP_PCAP_SIZE: bad capture file size (MiB) 0"),
        (["MTCP_PCAP_SNAPLEN": "10"], "MTCP_PCAP_SNAPLEN: bad snap length 10"),
        (["MTCP_STAT_PRINT": "often"], "MTCP_STAT_PRINT: bad stat-print interval (seconds) often"),
        (["MTCP_STATS_SHM": "perhaps"], "MTCP_STATS_SHM: expected 1 or 0"),
    ])
    func badVariablesNameTheVariable(environment: [String: String], message: String) {
        #expect {
            _ = try StackOptions.fromEnvironment(environment)
        } throws: { error in
            "\(error)".hasPrefix(message)
        }
    }

    @Test func busyPollIsAFlagAVariableAndExportedBack() throws {
        var arguments = ["--iface", "v", "--addr", "10.0.0.2/24", "--busy-poll", "50", "--", "nginx"]
        let options = try StackOptions.parse(&arguments, environment: [:])
        #expect(options.busyPollMicroseconds == 50)
        #expect(options.environmentVariables.contains { $0 == ("MTCP_BUSY_POLL", "50") })
        let back = try StackOptions.fromEnvironment(Dictionary(uniqueKeysWithValues: options.environmentVariables))
        #expect(back.busyPollMicroseconds == 50)
        #expect(
            try StackOptions.fromEnvironment(["MTCP_IFACE": "v", "MTCP_ADDR": "10.0.0.2"]).busyPollMicroseconds == 0)
    }

    @Test func observationSettingsAreFlagsVariablesAndExportedBack() throws {
        var arguments = [
            "--iface", "v", "--addr", "10.0.0.2/24", "--pcap", "/tmp/c.pcapng", "--pcap-size", "8", "--pcap-files",
            "2", "--no-stats-shm", "--stats-dir", "/run/s", "--log-file", "/tmp/l", "--stat-print", "2", "--", "x",
        ]
        let options = try StackOptions.parse(&arguments, environment: ["MTCP_PCAP_SNAPLEN": "128"])
        #expect(arguments == ["--", "x"])
        #expect(options.pcapPath == "/tmp/c.pcapng")
        #expect(options.pcapFileMegabytes == 8 && options.pcapFiles == 2 && options.pcapSnapLength == 128)
        #expect(!options.statsRegion && options.statsDirectory == "/run/s")
        #expect(options.logFile == "/tmp/l" && options.statPrintSeconds == 2)
        let back = try StackOptions.fromEnvironment(Dictionary(uniqueKeysWithValues: options.environmentVariables))
        #expect(back.pcapPath == options.pcapPath && back.pcapFiles == 2 && back.pcapSnapLength == 128)
        #expect(!back.statsRegion && back.statsDirectory == "/run/s" && back.logFile == "/tmp/l")
        #expect(back.statPrintSeconds == 2)
        let defaults = try StackOptions.fromEnvironment(["MTCP_IFACE": "v", "MTCP_ADDR": "10.0.0.2"])
        #expect(defaults.statsRegion && defaults.statsDirectory == "/dev/shm" && defaults.pcapPath == nil)
        // A host with settings of its own (mTCP's file) takes only these from the environment.
        var own = StackOptions()
        try own.applyObservationSettings(from: ["MTCP_PCAP": "/tmp/x", "MTCP_IFACE": "ignored"])
        #expect(own.pcapPath == "/tmp/x" && own.interface == "")
    }

    @Test func badFlagValuesNameTheFlag() {
        var arguments = ["--iface", "v", "--addr", "10.0.0.2", "--log", "chatty"]
        #expect {
            _ = try StackOptions.parse(&arguments, environment: [:])
        } throws: { error in
            "\(error)".hasPrefix("--log: bad log level chatty")
        }
        var missing = ["--iface", "v", "--stats"]
        #expect {
            _ = try StackOptions.parse(&missing, environment: [:])
        } throws: { error in
            "\(error)" == "missing value for --stats"
        }
    }

    @Test func badValueInTheFileNamesFileAndLine() {
        let file = TemporaryFile("# settings\niface = v\n\ncores = lots\n")
        #expect {
            _ = try StackOptions.fromEnvironment(["MTCP_CONFIG": file.path])
        } throws: { error in
            "\(error)".hasPrefix("\(file.path):4: MTCP_CORES = lots: bad core count lots")
        }
    }

    @Test func environmentOverridesABadFileValueOnlyAfterReadingIt() {
        // The file is checked whole even where the environment would win: a broken file is
        // reported, not hidden.
        let file = TemporaryFile("iface = v\naddr = nonsense\n")
        #expect {
            _ = try StackOptions.fromEnvironment(["MTCP_CONFIG": file.path, "MTCP_ADDR": "10.0.0.2"])
        } throws: { error in
            "\(error)".hasPrefix("\(file.path):2:")
        }
    }

    @Test func exportedVariablesGiveTheSameOptionsBack() throws {
        var arguments = [
            "--iface", "veth3", "--addr", "10.2.3.4/20", "--gateway", "10.2.0.1", "--backend", "tap", "--cores", "4",
            "--log", "3", "--stats", "/tmp/counters", "--no-kernel-listen", "--impair-tx", "loss=0.25,seed=9",
            "--impair-rx", "dup=0.5,delay-us=100",
        ]
        let options = try StackOptions.parse(&arguments, environment: [:])
        var environment: [String: String] = [:]
        for (name, value) in options.environmentVariables { environment[name] = value }
        #expect(environment["MTCP_ENABLE"] == "1")
        #expect(environment["MTCP_ADDR"] == "10.2.3.4/20")
        #expect(environment["MTCP_LOG"] == "debug")
        #expect(environment["MTCP_KERNEL_LISTEN"] == "0")
        #expect(environment["MTCP_STEERING"] == "kernel")
        let back = try StackOptions.fromEnvironment(environment)
        #expect(back.steering == .kernel)
        environment["MTCP_STEERING"] = "claims"
        #expect(try StackOptions.fromEnvironment(environment).steering == .claims)
        #expect(back.interface == options.interface)
        #expect(back.address == options.address)
        #expect(back.prefixLength == options.prefixLength)
        #expect(back.gateway == options.gateway)
        #expect(back.backend == options.backend)
        #expect(back.cores == options.cores)
        #expect(back.logLevel == options.logLevel)
        #expect(back.kernelListen == options.kernelListen)
        #expect(back.statsPath == options.statsPath)
        #expect(back.impairTransmit == options.impairTransmit)
        #expect(back.impairReceive == options.impairReceive)
        #expect(back.impairTransmit?.loss == 0.25)
    }

    // The launcher itself is tested by tests/interop/test-dpdk.sh: opening a port starts the
    // EAL, which unit tests must not need.
    @Test func dpdkArgumentsBecomeThePortConfiguration() throws {
        var arguments = [
            "--iface", "net_af_packet0", "--addr", "10.0.0.2", "--backend", "dpdk", "--cores", "2", "--dpdk-args",
            "--no-huge --no-pci --vdev=net_af_packet0,iface=veth0,qpairs=2", "rest",
        ]
        let options = try StackOptions.parse(&arguments, environment: ["MTCP_DPDK_ARGS": "-l 0"])
        #expect(arguments == ["rest"])
        #expect(options.backend == .dpdk)
        #expect(options.dpdkArguments == ["--no-huge", "--no-pci", "--vdev=net_af_packet0,iface=veth0,qpairs=2"])
        let configuration = DPDKBackend.configuration(options)
        #expect(configuration.port == "net_af_packet0")
        #expect(configuration.queues == 2)
        #expect(
            configuration.ealArguments(programName: "x") == [
                "x", "--no-huge", "--no-pci", "--vdev=net_af_packet0,iface=veth0,qpairs=2", "--no-shconf",
                "--no-telemetry",
            ])
    }

    @Test func dpdkArgumentsSurviveTheEnvironmentAndTheConfigFile() throws {
        var arguments = ["--iface", "0", "--addr", "10.0.0.2", "--dpdk-args", "--log-level \"lib.eal:8 x\" -n 4"]
        let options = try StackOptions.parse(&arguments, environment: [:])
        var environment: [String: String] = [:]
        for (name, value) in options.environmentVariables { environment[name] = value }
        let back = try StackOptions.fromEnvironment(environment)
        #expect(back.dpdkArguments == ["--log-level", "lib.eal:8 x", "-n", "4"])
        // A quoted tab or newline is exported quoted too (split cuts at them as at spaces).
        var tabbed = options
        tabbed.dpdkArguments = ["a\tb", "c\nd", "e"]
        var tabbedEnvironment: [String: String] = [:]
        for (name, value) in tabbed.environmentVariables { tabbedEnvironment[name] = value }
        #expect(try StackOptions.fromEnvironment(tabbedEnvironment).dpdkArguments == ["a\tb", "c\nd", "e"])
        let file = try ConfigFile(text: "dpdk_args = \"--no-huge -l 0\"\n", path: "f")
        #expect(file.settings == [ConfigFile.Setting(key: "MTCP_DPDK_ARGS", value: "--no-huge -l 0", line: 1)])
    }
}

/// Shared mode's choice of addresses, with the kernel's addresses given (no interface needed).
@Suite struct SharedAddressOptionsTests {
    static func kernel(_ v4: String?, _ v6: String? = nil, gateway: String? = nil) -> (String) -> KernelAddresses {
        { _ in
            var addresses = KernelAddresses()
            if let v4 { addresses.ipv4 = [(IPv4Address(v4)!, 24)] }
            if let v6 { addresses.ipv6 = [(IPAddress(v6)!, 64)] }
            addresses.gateway = gateway.flatMap { IPv4Address($0) }
            return addresses
        }
    }

    static func options(_ settings: [String: String]) throws -> StackOptions {
        try StackOptions.layered(config: nil, environment: ["MTCP_IFACE": "veth0"].merging(settings) { $1 })
    }

    @Test func noAddressTakesTheKernelsAndItsGateway() throws {
        var options = try Self.options([:])
        try options.adoptKernelAddresses(Self.kernel("10.9.0.2", "fd09::2", gateway: "10.9.0.1"))
        #expect(options.kernelSharesAddress)
        #expect(options.addressText == "10.9.0.2/24,fd09::2/64")
        #expect(options.gateway == IPv4Address(10, 9, 0, 1))
        #expect(options.stackConfiguration.kernelSharesAddress)
        try options.validate()
    }

    @Test func theKernelsAddressGivenIsShared() throws {
        var options = try Self.options(["MTCP_ADDR": "10.9.0.2/24", "MTCP_GATEWAY": "10.9.0.254"])
        try options.adoptKernelAddresses(Self.kernel("10.9.0.2", gateway: "10.9.0.1"))
        #expect(options.kernelSharesAddress)
        #expect(options.gateway == IPv4Address(10, 9, 0, 254), "a gateway given wins")
    }

    @Test func anAddressOfItsOwnIsTheStacksAlone() throws {
        var options = try Self.options(["MTCP_ADDR": "10.9.0.3/24"])
        try options.adoptKernelAddresses(Self.kernel("10.9.0.2"))
        #expect(!options.kernelSharesAddress)
        #expect(options.addressText == "10.9.0.3/24")
    }

    @Test func halfSharedOrWithoutKernelSteeringIsRefused() throws {
        var mixed = try Self.options(["MTCP_ADDR": "10.9.0.2/24,fd09::5/64"])
        #expect(throws: OptionsError.self) { try mixed.adoptKernelAddresses(Self.kernel("10.9.0.2", "fd09::2")) }
        var claims = try Self.options([:])
        claims.steering = .claims
        #expect(throws: OptionsError.self) { try claims.adoptKernelAddresses(Self.kernel("10.9.0.2")) }
    }

    @Test func nothingToShareStillAsksForAnAddress() throws {
        var options = try Self.options([:])
        try options.adoptKernelAddresses(Self.kernel(nil))
        #expect(!options.kernelSharesAddress)
        #expect(throws: OptionsError.self) { try options.validate() }
        // A TAP device's kernel side is the peer: never shared.
        var tap = try Self.options(["MTCP_BACKEND": "tap", "MTCP_ADDR": "10.9.0.2/24"])
        try tap.adoptKernelAddresses(Self.kernel("10.9.0.2"))
        #expect(!tap.kernelSharesAddress)
    }

    @Test func procNetTCPAddressesParse() {
        #expect(KernelListeners.parse("0200A8C0", ipv6: false) == IPAddress(IPv4Address(192, 168, 0, 2)))
        #expect(KernelListeners.parse("00000000", ipv6: false)?.isUnspecified == true)
        #expect(
            KernelListeners.parse("000077FD000000000000000002000000", ipv6: true) == IPAddress("fd77::2"))
        #expect(KernelListeners.parse("0200A8", ipv6: false) == nil)
        #expect(KernelListeners.parse("zz00A8C0", ipv6: false) == nil)
    }
}
