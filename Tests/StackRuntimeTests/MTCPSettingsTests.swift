import StackRuntime
import Testing
import Wire

@Suite struct MTCPSettingsTests {
    static let good = """
        ############### mtcp configuration file ###############
        # mTCP's own keys
        io = afpacket
        num_cores = 2
        core_mask = 0x3
        num_mem_ch = 4
        port = veth-s
        max_concurrency = 4096
        max_num_buffers = 4096
        rcvbuf = 16384
        sndbuf = 32768
        tcp_timeout = 30
        tcp_timewait = 0
        stat_print = veth-s
        multiprocess = 0
        # ours
        addr = 10.9.0.2/24
        gateway = 10.9.0.1
        """

    @Test func readsAGoodFile() throws {
        let settings = try MTCPSettings(text: Self.good, path: "mtcp.conf")
        #expect(settings.numCores == 2)
        #expect(settings.coreMask == 3)
        #expect(settings.memoryChannels == 4)
        #expect(settings.maxConcurrency == 4096)
        #expect(settings.maxNumBuffers == 4096)
        #expect(settings.receiveBuffer == 16384)
        #expect(settings.sendBuffer == 32768)
        #expect(settings.tcpTimeout == 30)
        #expect(settings.tcpTimewait == 0)
        #expect(settings.options.interface == "veth-s")
        #expect(settings.options.address == IPv4Address(10, 9, 0, 2))
        #expect(settings.options.prefixLength == 24)
        #expect(settings.options.gateway == IPv4Address(10, 9, 0, 1))
        #expect(settings.options.backend == .afpacket)
        #expect(settings.options.cores == 2)
        #expect(settings.options.tcp.receiveBufferSize == 16384)
        #expect(settings.options.tcp.sendBufferSize == 32768)
        #expect(settings.options.tcp.timeWaitDuration == .seconds(0))
    }

    @Test func defaultsWhenOnlyPortAndAddressAreGiven() throws {
        let settings = try MTCPSettings(text: "port = eth1\naddr = 192.168.1.5/16\n", path: "m.conf")
        #expect(settings.numCores == 1)
        #expect(settings.maxConcurrency == 10000)
        #expect(settings.options.backend == .afpacket)
        #expect(settings.options.prefixLength == 16)
    }

    @Test func backendWinsOverIO() throws {
        let settings = try MTCPSettings(text: "io = dpdk\nbackend = tap\nport = t0\naddr = 10.0.0.1/24\n", path: "m")
        #expect(settings.options.backend == .tap)
        let io = try MTCPSettings(text: "io = tap\nport = t0\naddr = 10.0.0.1/24\n", path: "m")
        #expect(io.options.backend == .tap)
    }

    @Test(arguments: [
        ("port = v\naddr = 10.0.0.1/24\nnum_cpus = 4\n", "m.conf:3: unknown key 'num_cpus'"),
        ("port = v\n\n\nMTCP_IFACE = v\n", "m.conf:4: unknown key 'MTCP_IFACE'"),
        ("port = v\nnum_cores = 0\n", "m.conf:2: num_cores = 0: expected an integer in 1...64"),
        ("port = v\nio = netmap\n", "m.conf:2: io = netmap: mTCP's netmap I/O is not available here"),
        ("port = dpdk0 dpdk1\n", "m.conf:1: port = dpdk0 dpdk1: one interface is supported, not 2"),
        ("port = v\naddr = 10.0.0.300/24\n", "m.conf:2: addr = 10.0.0.300/24: bad address"),
        ("port = v\nrcvbuf = lots\n", "m.conf:2: rcvbuf = lots: expected an integer"),
        ("port = v\ncore_mask = zz\n", "m.conf:2: core_mask = zz: expected a non-zero hex mask"),
        ("num_cores = 2\n", "m.conf: no port (the interface) given"),
        ("port = v\n", "m.conf: no addr (A/N) given"),
    ])
    func badFilesFailNamingFileAndLine(text: String, message: String) {
        #expect {
            _ = try MTCPSettings(text: text, path: "m.conf")
        } throws: { error in
            "\(error)".hasPrefix(message)
        }
    }

    @Test func unknownKeyMessageListsTheKnownKeys() {
        #expect {
            _ = try MTCPSettings(text: "bogus = 1\n", path: "m.conf")
        } throws: { error in
            "\(error)".contains("known: io, num_cores, core_mask")
        }
    }

    @Test func readsAFileFromDisk() throws {
        let file = TemporaryFile("port = veth0\naddr = 10.1.0.2/24\nnum_cores = 1\n")
        let settings = try MTCPSettings(path: file.path)
        #expect(settings.options.interface == "veth0")
        #expect(settings.options.configPath == file.path)
    }
}
