import CShim
import Glibc
import Telemetry

/// One capture stream's pcapng file with a size cap and rotation: when the next write would
/// pass `limit` bytes, FILE becomes FILE.1 (FILE.1 becomes FILE.2 ..., the oldest of `files`
/// goes) and a new FILE starts with its own section and interface blocks, as tcpdump -C -W.
/// The descriptor is opened once, while the process may still be root (nginx's workers drop
/// to www-data after fork), in the private descriptor range the preload library keeps for
/// itself; a rotation that can no longer create files starts the same file over.
public final class CaptureFile {
    public let path: String
    let header: [UInt8]
    let limit: Int
    let files: Int
    var fd: Int32
    public private(set) var written = 0
    public private(set) var rotations = 0
    public private(set) var writeErrors = 0

    /// `%p` and `%i` in FILE are the pid and instance.
    public static func patterned(_ requested: String, pid: Int32, instance: Int) -> String? {
        guard requested.contains("%p") || requested.contains("%i") else { return nil }
        return requested.replacingEvery("%p", with: "\(pid)").replacingEvery("%i", with: "\(instance)")
    }

    /// FILE with `.PID.INSTANCE` before its extension (`cap.pcapng` → `cap.123.0.pcapng`).
    public static func suffixed(_ requested: String, pid: Int32, instance: Int) -> String {
        let slash = requested.lastIndex(of: "/")
        if let dot = requested.lastIndex(of: "."), slash.map({ dot > $0 }) ?? true, dot != requested.startIndex {
            return "\(requested[..<dot]).\(pid).\(instance)\(requested[dot...])"
        }
        return "\(requested).\(pid).\(instance)"
    }

    /// Starts the stream's file: FILE with `%p`/`%i` filled in; else FILE itself, which with
    /// `exclusive` (several processes of one program capture at once) only the first stream
    /// that finds it absent takes, the others writing the suffixed name.
    public init(
        requested: String, pid: Int32, instance: Int, header: [UInt8], limit: Int, files: Int, exclusive: Bool
    ) throws(StatsRegionError) {
        self.header = header
        self.limit = max(limit, header.count + 4096)
        self.files = max(files, 1)
        let flags = O_WRONLY | O_APPEND | O_CLOEXEC
        var chosen = Self.patterned(requested, pid: pid, instance: instance) ?? requested
        var opened: Int32 = -1
        if chosen != requested || !exclusive {
            opened = open(chosen, flags | O_CREAT | O_TRUNC, 0o644)
        } else if instance == 0 {
            opened = open(chosen, flags | O_CREAT | O_EXCL, 0o644)
        }
        if opened < 0 && chosen == requested {
            chosen = Self.suffixed(requested, pid: pid, instance: instance)
            opened = open(chosen, flags | O_CREAT | O_TRUNC, 0o644)
        }
        guard opened >= 0 else {
            throw StatsRegionError(description: "cannot create capture file \(chosen): errno \(errno)")
        }
        path = chosen
        fd = mtcp_shim_move_to_private_range(opened)
        guard Self.writeAll(fd, header) else {
            Glibc.close(fd)
            throw StatsRegionError(description: "cannot write capture file \(chosen): errno \(errno)")
        }
        written = header.count
    }

    deinit { close() }

    /// Appends `bytes` (whole blocks), rotating first when they would pass the limit.
    public func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty, fd >= 0 else { return }
        if written + bytes.count > limit { rotate() }
        if Self.writeAll(fd, bytes) { written += bytes.count } else { writeErrors += 1 }
    }

    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    func rotate() {
        rotations += 1
        var fresh: Int32 = -1
        if files > 1 {
            for n in stride(from: files - 1, through: 1, by: -1) {
                rename(n == 1 ? path : "\(path).\(n - 1)", "\(path).\(n)")
            }
            fresh = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_CREAT | O_TRUNC, 0o644)
        }
        if fresh >= 0 {
            Glibc.close(fd)
            fd = mtcp_shim_move_to_private_range(fresh)
        } else if ftruncate(fd, 0) != 0 {
            writeErrors += 1
        }
        written = Self.writeAll(fd, header) ? header.count : 0
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                offset += n
            }
            return true
        }
    }
}

extension String {
    /// Every `target` replaced (no Foundation here).
    func replacingEvery(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
