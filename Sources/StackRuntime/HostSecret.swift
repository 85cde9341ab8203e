import Glibc
import Stack

/// The 128-bit secret that keys ISNs, timestamp offsets and SYN cookies, shared by every
/// stack process on this host (the kernel keeps one per boot). With one secret, a process
/// that reconnects on a 4-tuple another process used sends newer ISNs and timestamps, which
/// is what lets a server holding that 4-tuple in TIME-WAIT take the new SYN. Kept in
/// /dev/shm (root-only, gone at reboot); a random one when it cannot be read or made.
public enum HostSecret {
    public static let path = "/dev/shm/mtcp-host-secret"

    public static func load() -> (UInt64, UInt64) {
        if let secret = read() { return secret }
        var fresh = (UInt64.random(in: 0...UInt64.max), UInt64.random(in: 0...UInt64.max))
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 {
            _ = withUnsafeBytes(of: &fresh) { write(fd, $0.baseAddress, 16) }
            close(fd)
        }
        // Another process may have won the race to make it: use what is there.
        return read() ?? fresh
    }

    /// A stack for this host: the shared secret, and an ephemeral port search of its own.
    public static func configure<IO>(_ stack: NetworkStack<IO>) {
        stack.endpoint.startEphemeralSearch(at: UInt16.random(in: 0...UInt16.max))
    }

    static func read() -> (UInt64, UInt64)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var secret: (UInt64, UInt64) = (0, 0)
        let n = withUnsafeMutableBytes(of: &secret) { Glibc.read(fd, $0.baseAddress, 16) }
        return n == 16 ? secret : nil
    }
}
