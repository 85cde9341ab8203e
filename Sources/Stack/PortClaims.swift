import CShim
import Glibc
import PacketIO

/// Which process owns which local TCP port, in memory that forked processes share.
///
/// After fork() every process runs its own stack instance on its own packet socket and so sees
/// every frame; this table makes exactly one of them answer each flow. It holds one owner pid
/// per port; slot 0 (port 0 is never a flow's port) names the primary process, which answers
/// ARP and ICMP echo and resets segments for ports nobody owns. Every change is a
/// compare-and-swap, so processes need no lock; a pid that no longer runs owns nothing.
///
/// One view per process and stack instance: the view itself (its liveness cache) is used by
/// its stack's owner only, and `activate` counts each view as one process.
public final class PortClaims {
    /// Bytes the shared table takes: one Int32 per port, then the activation counter.
    public static let byteCount = 65536 * 4 + 64
    static let activationsOffset = 65536 * 4

    /// A zeroed MAP_SHARED|MAP_ANONYMOUS mapping of `byteCount` bytes (create it before fork).
    public static func mapShared() -> UnsafeMutableRawPointer? {
        mtcp_shim_map_shared_anonymous(byteCount)
    }

    public let pid: Int32
    let owners: UnsafeMutablePointer<Int32>
    let activations: UnsafeMutablePointer<Int32>
    let isAlive: (Int32) -> Bool
    var activated = false
    /// Recently seen live pids and how many more lookups trust that answer, so that dropping
    /// another process's segments costs no kill(2) per frame.
    var liveCache: [(pid: Int32, uses: Int)] = []
    static let liveCacheUses = 4096

    /// A view of the table at `memory` for process `pid` (a forked child makes its own with its
    /// pid). `isAlive` tells whether a pid still runs; tests inject their own.
    public init(
        memory: UnsafeMutableRawPointer, pid: Int32,
        isAlive: @escaping (Int32) -> Bool = ProcessLiveness.isRunning
    ) {
        owners = memory.bindMemory(to: Int32.self, capacity: 65536)
        activations = (memory + Self.activationsOffset).bindMemory(to: Int32.self, capacity: 1)
        self.pid = pid
        self.isAlive = isAlive
    }

    /// Counts this process as a user of the table (once) and takes the primary role if no live
    /// process holds it.
    public func activate() {
        if !activated {
            activated = true
            _ = mtcp_shim_atomic_add_i32(activations, 1)
        }
        _ = takePrimaryIfVacant()
    }

    /// More than one process ever activated: only then do the ownership checks apply.
    public var isShared: Bool { mtcp_shim_atomic_load_i32(activations) > 1 }

    /// This process holds the primary role now.
    public var isPrimary: Bool { mtcp_shim_atomic_load_i32(owners) == pid }

    /// True when this process is primary, or became it because the role was vacant or its
    /// holder no longer runs.
    public func takePrimaryIfVacant() -> Bool {
        claim(slot: 0, replacing: nil, cached: false)
    }

    /// `takePrimaryIfVacant` that trusts a recent "alive" answer: for the frame path.
    func isOrBecomesPrimary() -> Bool {
        claim(slot: 0, replacing: nil, cached: true)
    }

    /// The pid owning `port`, 0 for none.
    public func owner(of port: UInt16) -> Int32 {
        mtcp_shim_atomic_load_i32(owners + Int(port))
    }

    /// Takes `port` if it is free, owned by a pid that no longer runs, by us, or by
    /// `predecessor` (a parent handing an inherited listener to its child); false when another
    /// live process owns it.
    @discardableResult
    public func claim(_ port: UInt16, replacing predecessor: Int32? = nil) -> Bool {
        guard port != 0 else { return false }
        return claim(slot: Int(port), replacing: predecessor, cached: false)
    }

    /// Takes `port` only when it is free or ours, without asking whether owners still run.
    func claimIfFree(_ port: UInt16) -> Bool {
        guard port != 0 else { return false }
        let address = owners + Int(port)
        while true {
            let current = mtcp_shim_atomic_load_i32(address)
            if current == pid { return true }
            if current != 0 { return false }
            if mtcp_shim_atomic_cas_i32(address, 0, pid) { return true }
        }
    }

    /// Gives `port` back if we own it.
    public func release(_ port: UInt16) {
        guard port != 0 else { return }
        _ = mtcp_shim_atomic_cas_i32(owners + Int(port), pid, 0)
    }

    /// Nobody that still runs owns `port` (free, or its owner is gone); live owners are
    /// remembered for a while, as this is asked for every segment of other processes' flows.
    func isVacant(_ port: UInt16) -> Bool {
        let owner = owner(of: port)
        return owner == 0 || (owner != pid && !isAliveCached(owner))
    }

    func claim(slot: Int, replacing predecessor: Int32?, cached: Bool) -> Bool {
        let address = owners + slot
        while true {
            let current = mtcp_shim_atomic_load_i32(address)
            if current == pid { return true }
            let vacant =
                current == 0 || current == predecessor
                || !(cached ? isAliveCached(current) : isAlive(current))
            guard vacant else { return false }
            if mtcp_shim_atomic_cas_i32(address, current, pid) { return true }
        }
    }

    func isAliveCached(_ other: Int32) -> Bool {
        if let k = liveCache.firstIndex(where: { $0.pid == other }) {
            if liveCache[k].uses > 0 {
                liveCache[k].uses -= 1
                return true
            }
            liveCache.remove(at: k)
        }
        guard isAlive(other) else { return false }
        if liveCache.count >= 16 { liveCache.removeFirst() }
        liveCache.append((other, Self.liveCacheUses))
        return true
    }
}
