import CShim
import Glibc
import PacketIO
import PacketIODPDK
import Stack
import StackRuntime
import TCP
import Wire

/// The process-wide state of the C API: the settings mtcp_init read and the live contexts.
/// Changed only under `lock` (init, setconf, context creation and destruction).
enum MTCPRuntime {
    nonisolated(unsafe) static var settings: MTCPSettings?
    nonisolated(unsafe) static var contexts: [Int: MTCPContext] = [:]
    nonisolated(unsafe) static var neighbours: SharedNeighbours?
    /// The DPDK port all contexts share (one queue each), opened with the first context.
    nonisolated(unsafe) static var dpdkPort: DPDKPort?
    nonisolated(unsafe) static let lock: UnsafeMutablePointer<pthread_mutex_t> = {
        let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        return mutex
    }()

    static func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return body()
    }

    /// Writes a line to stderr (mtcp_init's errors, backend failures).
    static func report(_ line: String) {
        fputs("mtcp: \(line)\n", stderr)
    }

    static func initialize(path: String) -> Int32 {
        locked {
            do {
                settings = try MTCPSettings(path: path)
                return 0
            } catch {
                report("\(error)")
                errno = EINVAL
                return -1
            }
        }
    }

    /// A context on queue `cpu`: its own AF_PACKET ring (one fanout group across the
    /// process's contexts, so the kernel spreads flows as RSS would) or TAP queue.
    static func createContext(cpu: Int) -> MTCPContext? {
        locked {
            guard let settings else {
                report("mtcp_create_context: call mtcp_init first")
                errno = EINVAL
                return nil
            }
            guard cpu >= 0, cpu < settings.numCores else {
                report("mtcp_create_context: cpu \(cpu) is outside num_cores (\(settings.numCores))")
                errno = EINVAL
                return nil
            }
            guard contexts[cpu] == nil else {
                report("mtcp_create_context: cpu \(cpu) already has a context")
                errno = EEXIST
                return nil
            }
            let options = settings.options
            let link: SelectedLink
            do {
                switch options.backend {
                case .afpacket:
                    let group = UInt16(truncatingIfNeeded: getpid())
                    link = SelectedLink(
                        .ring(
                            try AFPacketRing(
                                interface: options.interface, fanoutGroup: settings.numCores > 1 ? group : nil)))
                case .tap:
                    link = SelectedLink(
                        .tap(try TAPDevice(name: options.interface, multiQueue: settings.numCores > 1)))
                case .dpdk:
                    // One port for the process; context `cpu` takes queue `cpu` (num_cores queues).
                    if dpdkPort == nil { dpdkPort = try DPDKBackend.open(options, programName: "mtcp") }
                    guard let port = dpdkPort, cpu < port.queues.count else {
                        report("mtcp_create_context: the DPDK port has no queue for cpu \(cpu)")
                        errno = ENODEV
                        return nil
                    }
                    link = SelectedLink(.dpdk(port.queues[cpu], port))
                }
            } catch {
                report("mtcp_create_context: cannot open \(options.interface): \(error)")
                errno = ENODEV
                return nil
            }
            let stack = NetworkStack(io: link, configuration: options.stackConfiguration, secret: HostSecret.load())
            HostSecret.configure(stack)
            stack.log = { report($0) }
            if settings.numCores > 1 {
                if neighbours == nil { neighbours = SharedNeighbours() }
                stack.sharedNeighbours = neighbours
            }
            stack.announce()
            let context = MTCPContext(cpu: cpu, stack: stack, maxIDs: settings.maxConcurrency)
            contexts[cpu] = context
            return context
        }
    }

    /// Closes every id, lets closing connections finish their exchange for a moment (so the
    /// last responses and FINs leave), and forgets the context.
    static func destroy(_ context: MTCPContext) {
        context.lock()
        for id in (0..<context.entries.count).reversed() where context.entries[id] != nil {
            try? context.close(Int32(id))
        }
        let stack = context.stack
        let limit = stack.clock() + .milliseconds(500)
        while stack.clock() < limit {
            let open = stack.endpoint.connectionCount - stack.endpoint.countConnections(in: .timeWait)
            if open == 0 { break }
            _ = try? context.wait(until: min(limit, stack.clock() + .milliseconds(5))) { false }
        }
        context.unlock()
        locked {
            if contexts[context.cpu] === context { contexts.removeValue(forKey: context.cpu) }
        }
    }
}
