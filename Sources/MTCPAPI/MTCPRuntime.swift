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
    /// With num_cores > 1 on AF_PACKET: ring i is context i's, all opened together at the first
    /// context so that fanout member i is ring i whatever order contexts come in. They live
    /// until mtcp_destroy: a ring leaving the group would reorder the members behind it.
    nonisolated(unsafe) static var fanoutRings: [AFPacketRing] = []
    /// The process's statistics region, capture and stat_print lines (made with the first context).
    nonisolated(unsafe) static var observation: StackObservation?
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

    /// Writes a line to stderr or MTCP_LOG_FILE (mtcp_init's errors, backend failures).
    static func report(_ line: String, context: Int? = nil) {
        LogLine.emit(program: "mtcp", instance: context, line, file: observation?.options.logFile ?? logFile)
    }

    /// MTCP_LOG_FILE before a context exists.
    static var logFile: String? { getenv("MTCP_LOG_FILE").map { String(cString: $0) } }

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
    /// process's contexts, steered by the TCP port mix as the launcher's instances are), TAP
    /// queue or DPDK queue. Contexts that share a steered link pick source ports whose replies
    /// come back to them (mTCP's per-core port pools).
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
            var options = settings.options
            do { try options.applyObservationSettings(from: StackOptions.processEnvironment()) } catch {
                report("mtcp_create_context: \(error)")
                errno = EINVAL
                return nil
            }
            // mTCP's stat_print: a line of each context's rates every second.
            if settings.statPrint != nil && options.statPrintSeconds == 0 { options.statPrintSeconds = 1 }
            let link: SelectedLink
            var steering: ActiveOpenSteering?
            do {
                switch options.backend {
                case .afpacket where settings.numCores == 1:
                    link = SelectedLink(.ring(try AFPacketRing(interface: options.interface)))
                case .afpacket:
                    guard let ring = try fanoutRing(cpu, of: settings.numCores, on: options.interface) else {
                        report(
                            "mtcp_create_context: num_cores changed to \(settings.numCores) while contexts of "
                                + "\(fanoutRings.count) cores live")
                        errno = EINVAL
                        return nil
                    }
                    link = SelectedLink(.ring(ring))
                    steering = .portSum(index: cpu, count: settings.numCores)
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
                    steering = port.rssSteering.map { .rss($0, queue: cpu) }
                }
            } catch {
                report("mtcp_create_context: cannot open \(options.interface): \(error)")
                errno = ENODEV
                return nil
            }
            let stack = NetworkStack(
                io: SelectedLink.impaired(link, by: options, index: cpu), configuration: options.stackConfiguration,
                secret: HostSecret.load())
            HostSecret.configure(stack)
            stack.log = { report($0, context: cpu) }
            if observation == nil {
                let logFile = options.logFile
                observation = StackObservation(options: options, host: "capi", instances: settings.numCores) { line in
                    LogLine.emit(program: "mtcp", instance: nil, line, file: logFile)
                }
            }
            observation?.attach(stack, instance: cpu)
            stack.activeOpenSteering = steering
            if settings.numCores > 1 {
                if neighbours == nil { neighbours = SharedNeighbours() }
                stack.sharedNeighbours = neighbours
            }
            stack.announce()
            let context = MTCPContext(
                cpu: cpu, stack: stack, maxIDs: settings.maxConcurrency, sharesLink: settings.numCores > 1)
            contexts[cpu] = context
            return context
        }
    }

    /// Ring `cpu` of the process's fanout group of `count` rings, opening all of them (in
    /// member order, steered by the port mix) the first time; nil when the group has another
    /// size and contexts still use it.
    static func fanoutRing(_ cpu: Int, of count: Int, on interface: String) throws(PacketIOError) -> AFPacketRing? {
        if fanoutRings.count != count {
            guard contexts.isEmpty else { return nil }
            fanoutRings = []
            fanoutRings = try LinkOpening.afPacketRings(interface: interface, count: count)
        }
        return fanoutRings[cpu]
    }

    /// Closes every id, lets closing connections finish their exchange for a moment (so the
    /// last responses and FINs leave), and forgets the context.
    static func destroy(_ context: MTCPContext) {
        let printCounters = locked { settings?.statPrint != nil }
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
        // The region's last word is the final state, not the last periodic one.
        stack.publishStatisticsNow(sockets: true)
        if printCounters {
            let tcp = stack.endpoint.statistics
            report(
                "context \(context.cpu): active_opens=\(tcp.activeOpens) passive_opens=\(tcp.passiveOpens)"
                    + " resets_for_unknown_flows=\(tcp.resetsSentForUnknownFlows) \(stack.statistics.summary)")
        }
        context.unlock()
        locked {
            if contexts[context.cpu] === context { contexts.removeValue(forKey: context.cpu) }
        }
    }
}
