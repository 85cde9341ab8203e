// mtcp-sim-demo: the TCP core on both ends of a simulated lossy network, in simulated time.
// Until the packet I/O layer lands this is the project's demo: it moves a bulk transfer
// both ways and a burst of short connections, then prints what TCP had to do to get
// every byte across.
import Simulation
import TCP
import Wire

struct Options {
    var bytes = 16 << 20
    var connections = 1000
    var seed: UInt64 = 1
    var loss = 0.05
    var reorder = 0.10
    var duplicate = 0.01
    var corrupt = 0.005
    var delayMilliseconds: UInt64 = 5
    var algorithm = CongestionAlgorithm.reno

    static let usage = """
        usage: mtcp-sim-demo [--bytes N] [--connections N] [--seed N] [--loss P] [--reorder P]
                             [--duplicate P] [--corrupt P] [--delay-ms N] [--cc reno|cubic]
        """

    init(arguments: [String]) {
        var it = arguments.dropFirst().makeIterator()
        while let flag = it.next() {
            if flag == "--help" || flag == "-h" {
                print(Self.usage)
                exitProcess(0)
            }
            guard let value = it.next() else { Self.fail("missing value for \(flag)") }
            switch flag {
            case "--bytes": bytes = Self.int(value, flag)
            case "--connections": connections = Self.int(value, flag)
            case "--seed": seed = UInt64(Self.int(value, flag))
            case "--loss": loss = Self.probability(value, flag)
            case "--reorder": reorder = Self.probability(value, flag)
            case "--duplicate": duplicate = Self.probability(value, flag)
            case "--corrupt": corrupt = Self.probability(value, flag)
            case "--delay-ms": delayMilliseconds = UInt64(Self.int(value, flag))
            case "--cc":
                guard let a = CongestionAlgorithm(rawValue: value) else { Self.fail("--cc takes reno or cubic") }
                algorithm = a
            default: Self.fail("unknown option \(flag)")
            }
        }
    }

    static func int(_ text: String, _ flag: String) -> Int {
        guard let v = Int(text), v >= 0 else { fail("\(flag) takes a non-negative integer, not \(text)") }
        return v
    }

    static func probability(_ text: String, _ flag: String) -> Double {
        guard let v = Double(text), v >= 0, v < 1 else { fail("\(flag) takes a probability in [0, 1), not \(text)") }
        return v
    }

    static func fail(_ message: String) -> Never {
        print("mtcp-sim-demo: \(message)\n\(usage)")
        exitProcess(2)
    }
}

func exitProcess(_ code: Int32) -> Never {
    // No Foundation: leave through the C library.
    exit(code)
}

@_silgen_name("exit") func exit(_ code: Int32) -> Never

let options = Options(arguments: CommandLine.arguments)
let profile = LinkProfile(
    delay: .milliseconds(options.delayMilliseconds), jitter: .microseconds(200), bitsPerSecond: 100_000_000,
    queueLimit: 1000, lossRate: options.loss, duplicateRate: options.duplicate, reorderRate: options.reorder,
    corruptRate: options.corrupt, reorderDelay: .milliseconds(3))
var configuration = TCPConfiguration()
configuration.congestionAlgorithm = options.algorithm

func percent(_ p: Double) -> String { "\(Double(Int(p * 1000)) / 10)%" }

print(
    "link: \(options.delayMilliseconds) ms one way, 100 Mbit/s, loss \(percent(options.loss)), reorder \(percent(options.reorder)), duplicate \(percent(options.duplicate)), corrupt \(percent(options.corrupt)), seed \(options.seed), congestion control \(options.algorithm.rawValue)"
)

// 1. One connection, the same amount of data each way at once.
do {
    let network = SimulatedNetwork(seed: options.seed)
    let client = SimulatedTCPHost(address: IPv4Address(10, 0, 0, 1), configuration: configuration, secret: options.seed)
    let server = SimulatedTCPHost(
        address: IPv4Address(10, 0, 0, 2), configuration: configuration, secret: options.seed &+ 1)
    network.connect(client, server, profile)
    let transfer = try BulkTransfer(client: client, server: server, bytesEachWay: options.bytes, seed: options.seed)
    network.run(until: .zero + .seconds(7200)) { transfer.isComplete || transfer.failed }
    let exact =
        transfer.isComplete && transfer.client.sentDigest == transfer.server.receivedDigest
        && transfer.server.sentDigest == transfer.client.receivedDigest
    let seconds = Double(network.now.nanoseconds) / 1e9
    print(
        "\nbulk transfer: \(options.bytes) bytes each way in \(seconds) s of simulated time: \(exact ? "byte-exact" : "FAILED")"
    )
    print("  digest client->server \(transfer.client.sentDigest.value) / \(transfer.server.receivedDigest.value)")
    print("  digest server->client \(transfer.server.sentDigest.value) / \(transfer.client.receivedDigest.value)")
    for (name, side) in [("client", transfer.client), ("server", transfer.server)] {
        let s = side.statistics
        print(
            "  \(name): segments out \(s.segmentsSent) in \(s.segmentsReceived), retransmitted \(s.retransmittedSegments), fast retransmits \(s.fastRetransmits), timeouts \(s.retransmissionTimeouts), dup ACKs \(s.duplicateAcks), out-of-order \(s.outOfOrderSegments), PAWS drops \(s.pawsRejected)"
        )
    }
    let a = network.statistics(from: client, to: server)
    let b = network.statistics(from: server, to: client)
    print(
        "  network: lost \(a.dropped + b.dropped), reordered \(a.reordered + b.reordered), duplicated \(a.duplicated + b.duplicated), corrupted \(a.corrupted + b.corrupted) (refused by checksum: \(client.refusedTotal + server.refusedTotal))"
    )
    if !exact { exitProcess(1) }
}

// 2. Many short connections at once, as mTCP's epwget drove epserver.
if options.connections > 0 {
    let network = SimulatedNetwork(seed: options.seed)
    let client = SimulatedTCPHost(address: IPv4Address(10, 0, 0, 1), configuration: configuration, secret: options.seed)
    let server = SimulatedTCPHost(
        address: IPv4Address(10, 0, 0, 2), configuration: configuration, secret: ~options.seed)
    network.connect(client, server, profile)
    let load = try RequestResponseLoad(
        client: client, server: server, connections: options.connections, concurrency: options.connections,
        seed: options.seed)
    network.run(until: .zero + .seconds(3600)) { load.isFinished }
    let seconds = Double(network.now.nanoseconds) / 1e9
    let c = load.counters
    print(
        "\nshort connections: \(c.completed) of \(options.connections) completed in \(seconds) s of simulated time, failed \(c.failed), corrupted \(c.corrupted)"
    )
    let s = server.endpoint.statistics
    print(
        "  server: passive opens \(s.passiveOpens), SYN cookies sent \(s.synCookiesSent) accepted \(s.synCookiesAccepted), listen overflows \(s.listenQueueOverflows), resets for unknown flows \(s.resetsSentForUnknownFlows)"
    )
    if c.completed != options.connections { exitProcess(1) }
}
