import Glibc
import Telemetry

/// One capture stream's pcapng file with a size cap and rotation: when the next write would
/// pass `limit` bytes, FILE becomes FILE.1 (FILE.1 becomes FILE.2 ..., the oldest of `files`
/// goes) and a new FILE starts with its own section and interface blocks, as tcpdump -C -W.
/// The file is opened for each write and closed again: no descriptor of ours stays in the
/// program's table (a daemon closing its descriptors cannot cut the capture).
public final class CaptureFile {
    public let path: String
    let header: [UInt8]
    let limit: Int
    let files: Int
    public private(set) var written = 0
    public private(set) var rotations = 0
    public private(set) var writeErrors = 0

    /// The file for instance `instance` of process `pid` when FILE was asked for: `%p` and
    /// `%i` in FILE are the pid and instance; otherwise the first stream that finds FILE
    /// free takes it (`exclusive`: created only if absent) and the others get
    /// FILE's name with `.PID.INSTANCE` before its extension.
    public static func name(requested: String, pid: Int32, instance: Int) -> (path: String, patterned: Bool) {
        if requested.contains("%p") || requested.contains("%i") {
            let path = requested.replacingEvery("%p", with: "\(pid)").replacingEvery("%i", with: "\(instance)")
            return (path, true)
        }
        return (requested, false)
    }

    /// FILE with `.PID.INSTANCE` before its extension (`cap.pcapng` → `cap.123.0.pcapng`).
    public static func suffixed(_ requested: String, pid: Int32, instance: Int) -> String {
        let slash = requested.lastIndex(of: "/")
        if let dot = requested.lastIndex(of: "."), slash.map({ dot > $0 }) ?? true, dot != requested.startIndex {
            return "\(requested[..<dot]).\(pid).\(instance)\(requested[dot...])"
        }
        return "\(requested).\(pid).\(instance)"
    }

    /// Starts the stream's file. `exclusive`: FILE is taken only when no other stream has it
    /// (several processes of one program capture at once); else the suffixed name is used.
    public init(
        requested: String, pid: Int32, instance: Int, header: [UInt8], limit: Int, files: Int, exclusive: Bool
    ) throws(StatsRegionError) {
        self.header = header
        self.limit = max(limit, header.count + 4096)
        self.files = max(files, 1)
        let (named, patterned) = Self.name(requested: requested, pid: pid, instance: instance)
        var chosen = named
        var fd: Int32 = -1
        if patterned || !exclusive {
            fd = open(named, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        } else if instance == 0 {
            fd = open(named, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        }
        if fd < 0 && !patterned {
            chosen = Self.suffixed(requested, pid: pid, instance: instance)
            fd = open(chosen, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        }
        guard fd >= 0 else {
            throw StatsRegionError(description: "cannot create capture file \(chosen): errno \(errno)")
        }
        path = chosen
        let ok = Self.writeAll(fd, header)
        close(fd)
        guard ok else { throw StatsRegionError(description: "cannot write capture file \(chosen): errno \(errno)") }
        written = header.count
    }

    /// Appends `bytes` (whole blocks), rotating first when they would pass the limit.
    public func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        if written + bytes.count > limit { rotate() }
        let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else {
            writeErrors += 1
            return
        }
        if Self.writeAll(fd, bytes) { written += bytes.count } else { writeErrors += 1 }
        close(fd)
    }

    func rotate() {
        rotations += 1
        if files > 1 {
            for n in stride(from: files - 1, through: 1, by: -1) {
                let from = n == 1 ? path : "\(path).\(n - 1)"
                rename(from, "\(path).\(n)")
            }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            writeErrors += 1
            return
        }
        written = Self.writeAll(fd, header) ? header.count : 0
        close(fd)
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
