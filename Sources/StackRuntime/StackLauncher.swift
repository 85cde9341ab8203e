import Glibc
import PacketIO
import Stack
import Synchronization
import Wire

/// A program that runs on every stack instance, each on its own thread.
public protocol StackApplication: AnyObject {
    /// Runs on instance `instance` (0..<count) until `StopSignal.requested` or its own end.
    func run<IO: PacketIO>(stack: NetworkStack<IO>, instance: Int, count: Int)
}

/// Opens the backend queues, builds one `NetworkStack` per core and runs an application
/// on each in its own thread (run-to-completion: the thread that owns an instance drives it).
public enum StackLauncher {
    public static func run(_ options: StackOptions, _ application: StackApplication) throws(OptionsError) {
        guard !options.kernelSharesAddress else {
            // Keeping the kernel off the stack's flows takes the preload library's flow steering.
            throw OptionsError(
                "\(options.addressText) is \(options.interface)'s kernel address: sharing it is the preload"
                    + " library's (mtcp-run -- PROGRAM); give this program an address of its own")
        }
        switch options.backend {
        case .afpacket:
            let rings: [AFPacketRing]
            do {
                rings = try LinkOpening.afPacketRings(interface: options.interface, count: options.cores)
            } catch {
                throw OptionsError("cannot open \(options.interface): \(error)")
            }
            try launch(rings, options, application, steering: options.cores > 1 ? .portSum : .none)
        case .tap:
            let queues: [TAPDevice]
            do {
                queues = try LinkOpening.tapQueues(name: options.interface, count: options.cores)
            } catch {
                throw OptionsError("cannot open TAP \(options.interface): \(error)")
            }
            try launch(queues, options, application)
        case .dpdk:
            let port = try DPDKBackend.open(options)
            // With symmetric RSS each queue's instance picks ports whose replies hash back to it.
            try launch(port.queues, options, application, steering: port.rssSteering.map { .rss($0) } ?? .none)
        }
    }

    static func launch<IO: PacketIO>(
        _ queues: [IO], _ options: StackOptions, _ application: StackApplication, steering: LinkSteering = .none
    ) throws(OptionsError) {
        guard options.impairTransmit != nil || options.impairReceive != nil else {
            start(queues, options, application, steering: steering)
            return
        }
        start(
            queues.enumerated().map { index, io in impaired(io, options, index: index)! }, options, application,
            steering: steering)
    }

    /// `io` with the faults `options` ask for; nil when they ask for none. The one place the
    /// MTCP_IMPAIR* settings become an impaired link, for every host.
    public static func impaired<IO: PacketIO>(_ io: IO, _ options: StackOptions, index: Int) -> ImpairedPacketIO<IO>? {
        guard options.impairTransmit != nil || options.impairReceive != nil else { return nil }
        let seed = options.impairTransmit?.seed ?? options.impairReceive?.seed ?? 1
        return ImpairedPacketIO(
            base: io, receive: impairment(options.impairReceive), transmit: impairment(options.impairTransmit),
            seed: seed &+ UInt64(index))
    }

    static func impairment(_ spec: ImpairmentSpec?) -> Impairment {
        guard let spec else { return .none }
        return Impairment(
            lossRate: spec.loss, duplicateRate: spec.duplicate, reorderRate: spec.reorder, corruptRate: spec.corrupt,
            delay: spec.delayMicroseconds * 1000)
    }

    static func start<IO: PacketIO>(
        _ queues: [IO], _ options: StackOptions, _ application: StackApplication, steering: LinkSteering = .none
    ) {
        let count = queues.count
        let neighbours = count > 1 ? SharedNeighbours() : nil
        let secret = HostSecret.load()
        let observation = StackObservation(options: options, host: "example", instances: count) { line in
            LogLine.emit(program: "mtcp", instance: nil, line, file: options.logFile)
        }
        defer { observation.finish() }
        var threads: [pthread_t] = []
        for (index, io) in queues.enumerated() {
            let body = {
                let stack = NetworkStack(io: io, configuration: options.stackConfiguration, secret: secret)
                HostSecret.configure(stack)
                stack.log = { LogLine.emit(program: "mtcp", instance: index, $0, file: options.logFile) }
                stack.sharedNeighbours = neighbours
                stack.activeOpenSteering = steering.instance(index, of: count)
                observation.attach(stack, instance: index)
                stack.announce()
                application.run(stack: stack, instance: index, count: count)
                // The region's last word is the final state, not the last periodic one.
                stack.publishStatisticsNow(sockets: true)
            }
            if count == 1 {
                body()
                return
            }
            threads.append(spawnThread(body))
        }
        for thread in threads { pthread_join(thread, nil) }
    }
}

/// How the queues of one link share flows, so that each instance's active opens pick ports
/// whose replies come back to it.
public enum LinkSteering: Sendable {
    /// Nothing to steer (one queue, or a spread nobody can predict: the kernel's flow hash).
    case none
    /// AF_PACKET fanout by the TCP port mix, members in queue order.
    case portSum
    /// The NIC's RSS: a Toeplitz hash and redirection table, queue i for instance i.
    case rss(RSSSteering)

    /// The steering of instance `index` of `count`.
    public func instance(_ index: Int, of count: Int) -> ActiveOpenSteering? {
        guard count > 1 else { return nil }
        switch self {
        case .none: return nil
        case .portSum: return .portSum(index: index, count: count)
        case .rss(let steering): return .rss(steering, queue: index)
        }
    }
}

final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Starts a POSIX thread running `body` (no Foundation in this layer).
func spawnThread(_ body: @escaping () -> Void) -> pthread_t {
    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(
        &thread, nil,
        { raw in
            let box = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
            box.run()
            return nil
        }, context)
    precondition(result == 0, "pthread_create failed: \(result)")
    return thread
}

/// SIGINT/SIGTERM set a flag that the applications' loops check.
public enum StopSignal {
    static let flag = Atomic<Bool>(false)

    public static var requested: Bool { flag.load(ordering: .relaxed) }

    public static func request() { flag.store(true, ordering: .relaxed) }

    public static func install() {
        let handler: @convention(c) (Int32) -> Void = { _ in StopSignal.flag.store(true, ordering: .relaxed) }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
    }
}

/// Writes a line to stdout at once (the programs run under test scripts that read it).
public func say(_ line: String) {
    print(line)
    fflush(stdout)
}
