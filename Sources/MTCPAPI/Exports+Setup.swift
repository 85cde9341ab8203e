import CShim
import Glibc
import Stack
import StackRuntime
import Wire

// mTCP's set-up calls: mtcp_init, configuration, contexts, affinity and signals.
// Every call returns -1 (or NULL) with errno set on failure, as mTCP's do.

/// The context behind an mctx_t (an unretained pointer to the MTCPContext object).
func context(_ mctx: OpaquePointer?) -> MTCPContext? {
    guard let mctx else { return nil }
    return Unmanaged<MTCPContext>.fromOpaque(UnsafeRawPointer(mctx)).takeUnretainedValue()
}

/// Sets errno and returns -1.
func failure(_ error: Errno) -> Int32 {
    errno = error.rawValue
    return -1
}

@_cdecl("mtcp_init")
public func mtcp_init(_ path: UnsafePointer<CChar>?) -> Int32 {
    guard let path else {
        MTCPRuntime.report("mtcp_init: no config file given")
        return failure(.EINVAL)
    }
    return MTCPRuntime.initialize(path: String(cString: path))
}

@_cdecl("mtcp_destroy")
public func mtcp_destroy() {
    let remaining = MTCPRuntime.locked { Array(MTCPRuntime.contexts.values) }
    for context in remaining { MTCPRuntime.destroy(context) }
    let observation = MTCPRuntime.locked {
        MTCPRuntime.settings = nil
        MTCPRuntime.neighbours = nil
        MTCPRuntime.fanoutRings = []
        defer { MTCPRuntime.observation = nil }
        return MTCPRuntime.observation
    }
    observation?.finish()
}

/// struct mtcp_conf: seven ints in mTCP's order.
enum ConfField: Int {
    case numCores, maxConcurrency, maxNumBuffers, rcvbufSize, sndbufSize, tcpTimewait, tcpTimeout
}

@_cdecl("mtcp_getconf")
public func mtcp_getconf(_ conf: UnsafeMutablePointer<Int32>?) -> Int32 {
    guard let conf else { return failure(.EINVAL) }
    let settings = MTCPRuntime.locked { MTCPRuntime.settings ?? MTCPSettings() }
    conf[ConfField.numCores.rawValue] = Int32(settings.numCores)
    conf[ConfField.maxConcurrency.rawValue] = Int32(settings.maxConcurrency)
    conf[ConfField.maxNumBuffers.rawValue] = Int32(settings.maxNumBuffers)
    conf[ConfField.rcvbufSize.rawValue] = Int32(settings.receiveBuffer)
    conf[ConfField.sndbufSize.rawValue] = Int32(settings.sendBuffer)
    conf[ConfField.tcpTimewait.rawValue] = Int32(settings.tcpTimewait)
    conf[ConfField.tcpTimeout.rawValue] = Int32(settings.tcpTimeout)
    return 0
}

/// Changes the settings for contexts created afterwards; fields <= 0 are left as they are
/// (as mTCP's mtcp_setconf does).
@_cdecl("mtcp_setconf")
public func mtcp_setconf(_ conf: UnsafePointer<Int32>?) -> Int32 {
    guard let conf else { return failure(.EINVAL) }
    return MTCPRuntime.locked {
        guard var settings = MTCPRuntime.settings else { return failure(.EINVAL) }
        func field(_ f: ConfField) -> Int? {
            let v = conf[f.rawValue]
            return v > 0 ? Int(v) : nil
        }
        if let n = field(.numCores) { settings.numCores = min(n, 64) }
        if let n = field(.maxConcurrency) { settings.maxConcurrency = max(n, 16) }
        if let n = field(.maxNumBuffers) { settings.maxNumBuffers = n }
        if let n = field(.rcvbufSize) { settings.receiveBuffer = max(n, 2048) }
        if let n = field(.sndbufSize) { settings.sendBuffer = max(n, 2048) }
        if let n = field(.tcpTimewait) { settings.tcpTimewait = n }
        if let n = field(.tcpTimeout) { settings.tcpTimeout = n }
        settings.syncTCP()
        MTCPRuntime.settings = settings
        return 0
    }
}

@_cdecl("mtcp_core_affinitize")
public func mtcp_core_affinitize(_ cpu: Int32) -> Int32 {
    let present = max(Int32(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 1)
    guard cpu >= 0 else { return failure(.EINVAL) }
    return mtcp_shim_pin_to_cpu(cpu % present) == 0 ? 0 : -1
}

@_cdecl("mtcp_create_context")
public func mtcp_create_context(_ cpu: Int32) -> OpaquePointer? {
    guard let context = MTCPRuntime.createContext(cpu: Int(cpu)) else { return nil }
    return OpaquePointer(Unmanaged.passRetained(context).toOpaque())
}

@_cdecl("mtcp_destroy_context")
public func mtcp_destroy_context(_ mctx: OpaquePointer?) {
    guard let mctx else { return }
    let unmanaged = Unmanaged<MTCPContext>.fromOpaque(UnsafeRawPointer(mctx))
    MTCPRuntime.destroy(unmanaged.takeUnretainedValue())
    unmanaged.release()
}

@_cdecl("mtcp_register_signal")
public func mtcp_register_signal(
    _ signum: Int32, _ handler: (@convention(c) (Int32) -> Void)?
) -> (@convention(c) (Int32) -> Void)? {
    signal(signum, handler)
}

/// mTCP's mtcp_init_rss prepared the calling core's pool of source ports for active opens to
/// `daddr:dport` from `count` addresses at `base` (network byte order; INADDR_ANY: the
/// interface's address). A context here has one address, and its steering (set when it was
/// created) picks each connect's port; this checks the source range holds the context's
/// address, sizes the context's pool for the destination (ports whose replies come back to
/// it) and records it. EADDRNOTAVAIL when the range misses the address or the pool is empty.
@_cdecl("mtcp_init_rss")
public func mtcp_init_rss(_ mctx: OpaquePointer?, _ base: UInt32, _ count: Int32, _ daddr: UInt32, _ dport: UInt32)
    -> Int32
{
    guard let context = context(mctx) else { return failure(.EBADF) }
    guard count >= 1, dport <= 0xFFFF else { return failure(.EINVAL) }
    let destination = IPv4Address(rawValue: UInt32(bigEndian: daddr))
    let port = UInt16(bigEndian: UInt16(truncatingIfNeeded: dport))
    context.lock()
    defer { context.unlock() }
    let result = context.prepareSourcePool(
        base: IPv4Address(rawValue: UInt32(bigEndian: base)), count: Int(count), destination: destination, port: port)
    guard case .success(let pool) = result else {
        if case .failure(let error) = result { return failure(error) }
        return -1
    }
    if !pool.steered && context.rss == nil {
        MTCPRuntime.report(
            "mtcp_init_rss: context \(context.cpu) shares its link with contexts whose queue the device picks by its"
                + " own hash; replies to its active opens may reach a sibling")
    }
    context.rss = pool
    return 0
}
