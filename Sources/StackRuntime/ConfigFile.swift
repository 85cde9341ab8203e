import Glibc

/// A stack configuration file: `KEY = value` lines, the keys the MTCP_* variable names or
/// the same lower-case without the prefix (`MTCP_IFACE = veth0` or `iface = veth0`).
/// `#` starts a comment at the beginning of a line or after a space; blank lines and spaces
/// around keys and values are ignored; a value may be put in double quotes. Later lines win.
/// The same reader takes other dialects with a fixed key list (`init(path:keys:)`): mTCP's
/// configuration files for the C API (`MTCPSettings`).
public struct ConfigFile: Sendable {
    /// One setting: the key in its MTCP_* form, the value, and the 1-based line it came from.
    public struct Setting: Sendable, Equatable {
        public var key: String
        public var value: String
        public var line: Int

        public init(key: String, value: String, line: Int) {
            self.key = key
            self.value = value
            self.line = line
        }
    }

    /// Keys a file may set, in MTCP_* form (MTCP_CONFIG itself is not one of them).
    public static let keys = [
        "MTCP_ENABLE", "MTCP_IFACE", "MTCP_ADDR", "MTCP_GATEWAY", "MTCP_BACKEND", "MTCP_CORES", "MTCP_LOG",
        "MTCP_KERNEL_LISTEN", "MTCP_STEERING", "MTCP_STATS", "MTCP_IMPAIR", "MTCP_IMPAIR_TX", "MTCP_IMPAIR_RX",
        "MTCP_DPDK_ARGS", "MTCP_BUSY_POLL", "MTCP_STATS_SHM", "MTCP_STATS_DIR", "MTCP_STATS_KEEP", "MTCP_PCAP",
        "MTCP_PCAP_SIZE", "MTCP_PCAP_FILES", "MTCP_PCAP_SNAPLEN", "MTCP_LOG_FILE", "MTCP_STAT_PRINT",
    ]

    /// The file's name as errors show it.
    public var path: String
    public var settings: [Setting]

    /// Reads and parses the file at `path`.
    public init(path: String) throws(OptionsError) {
        try self.init(text: try ConfigFile.read(path), path: path)
    }

    /// Parses `text`; errors name `path` and the line.
    public init(text: String, path: String) throws(OptionsError) {
        try self.init(text: text, path: path, keys: ConfigFile.keys, canonical: ConfigFile.canonicalKey)
    }

    /// Reads the file at `path` in another dialect: only the exact `keys` are accepted
    /// (mTCP's own configuration files, for the C API).
    public init(path: String, keys: [String]) throws(OptionsError) {
        try self.init(text: try ConfigFile.read(path), path: path, keys: keys)
    }

    /// Parses `text` accepting exactly `keys`.
    public init(text: String, path: String, keys: [String]) throws(OptionsError) {
        try self.init(text: text, path: path, keys: keys) { keys.contains(String($0)) ? String($0) : nil }
    }

    /// Parses `text`; `canonical` maps a key as written to the key stored, nil for an unknown
    /// key (errors list `keys`).
    init(
        text: String, path: String, keys: [String], canonical: (Substring) -> String?
    ) throws(OptionsError) {
        self.path = path
        settings = []
        var number = 0
        // Split on "\n" only: a "\r\n" file keeps its "\r", which trimming removes.
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = ConfigFile.trim(ConfigFile.uncomment(raw))
            if line.isEmpty { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw OptionsError("\(path):\(number): expected KEY = value, not '\(line)'")
            }
            let name = ConfigFile.trim(line[..<equals])
            var value = ConfigFile.trim(line[line.index(after: equals)...])
            guard let key = canonical(name) else {
                throw OptionsError(
                    "\(path):\(number): unknown key '\(name)' (known: \(keys.joined(separator: ", ")))")
            }
            if value.count >= 2, value.first == "\"", value.last == "\"" {
                value = value.dropFirst().dropLast()
            }
            guard !value.isEmpty else { throw OptionsError("\(path):\(number): \(name) has no value") }
            settings.append(Setting(key: key, value: String(value), line: number))
        }
    }

    /// `MTCP_IFACE` for `MTCP_IFACE` or `iface`; nil for anything else.
    public static func canonicalKey(_ name: Substring) -> String? {
        if keys.contains(String(name)) { return String(name) }
        guard name == name.lowercased()[...] else { return nil }
        let candidate = "MTCP_" + name.uppercased()
        return keys.contains(candidate) ? candidate : nil
    }

    /// The line up to a `#` that begins it or follows white space (so `a#b` stays whole).
    static func uncomment(_ line: Substring) -> Substring {
        var previous: Character = " "
        for index in line.indices {
            let c = line[index]
            if c == "#" && (previous == " " || previous == "\t") { return line[..<index] }
            previous = c
        }
        return line
    }

    static func trim(_ text: Substring) -> Substring {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = text.firstIndex(where: { !blank($0) }) else { return text[text.endIndex...] }
        let last = text.lastIndex(where: { !blank($0) })!
        return text[first...last]
    }

    /// The whole file as text, read with open/read (no Foundation in this layer).
    static func read(_ path: String) throws(OptionsError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw OptionsError("cannot open config file \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else {
                throw OptionsError("cannot read config file \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            // A configuration is a few lines; a huge "file" is a mistake (e.g. a device).
            guard bytes.count <= 1 << 20 else { throw OptionsError("config file \(path) is larger than 1 MiB") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw OptionsError("config file \(path) is not UTF-8 text")
        }
        return text
    }
}
