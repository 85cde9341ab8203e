import Foundation

/// Runs `ip`, `ethtool` and friends for the tests that need the real kernel, and builds
/// throwaway veth pairs in their own network namespaces.
enum KernelHarness {
    /// Where `ip` lives, if anywhere.
    static let ipTool = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    static let ethtool = ["/usr/sbin/ethtool", "/sbin/ethtool", "/usr/bin/ethtool"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    static let bash = ["/usr/bin/bash", "/bin/bash"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Root and `ip` are both needed to build namespaces and veths.
    static let available = getuid() == 0 && ipTool != nil

    struct CommandFailed: Error, CustomStringConvertible {
        var command: String
        var output: String
        var description: String { "\(command) failed: \(output)" }
    }

    /// Runs a program to completion; throws when it exits non-zero (unless `check` is false).
    @discardableResult
    static func run(_ path: String, _ arguments: [String], check: Bool = true) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        if check && process.terminationStatus != 0 {
            throw CommandFailed(command: ([path] + arguments).joined(separator: " "), output: output)
        }
        return output
    }

    @discardableResult
    static func ip(_ arguments: String...) throws -> String {
        try run(ipTool ?? "/usr/sbin/ip", arguments)
    }

    /// Reads a kernel counter file such as /sys/class/net/<dev>/statistics/rx_packets.
    static func counter(_ path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// A veth pair: `outer` stays in the root namespace without an address (the stack's side);
/// `inner` lives in namespace `namespace` with `innerAddress`/24 (the kernel peer).
struct VethPair {
    let namespace: String
    let outer: String
    let inner: String
    /// Third octet of 10.213.x.0/24.
    let subnet: UInt8
    var innerAddress: String { "10.213.\(subnet).1" }

    /// Names unique per process and tag (interface names are at most 15 bytes).
    init(tag: String) {
        let pid = Int(getpid()) % 1_000_000
        namespace = "mtpio\(pid)\(tag)"
        outer = "mtp\(pid)\(tag)o"
        inner = "mtp\(pid)\(tag)i"
        subnet = UInt8(pid % 250)
    }

    /// Builds the pair; with `offloadsOff`, turns checksum/segmentation offloads off on
    /// both ends (when ethtool exists) so the kernel hands over finished, MTU-sized frames.
    func create(offloadsOff: Bool = true) throws {
        destroy()
        try KernelHarness.ip("netns", "add", namespace)
        try KernelHarness.ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        try KernelHarness.ip("link", "set", inner, "netns", namespace)
        try KernelHarness.ip("-n", namespace, "addr", "add", "\(innerAddress)/24", "dev", inner)
        try KernelHarness.ip("-n", namespace, "link", "set", "lo", "up")
        try KernelHarness.ip("-n", namespace, "link", "set", inner, "up")
        // No IPv6 chatter (router solicitations, MLD) on the stack's side.
        try? "1".write(
            toFile: "/proc/sys/net/ipv6/conf/\(outer)/disable_ipv6", atomically: false, encoding: .utf8)
        try KernelHarness.ip("link", "set", outer, "up")
        if offloadsOff, let ethtool = KernelHarness.ethtool {
            let features = ["tx", "off", "tso", "off", "gso", "off", "gro", "off"]
            try KernelHarness.run(ethtool, ["-K", outer] + features, check: false)
            try KernelHarness.run(
                KernelHarness.ipTool!, ["netns", "exec", namespace, ethtool, "-K", inner] + features, check: false)
        }
    }

    /// Removes the namespace (taking the veth pair with it); safe to call repeatedly.
    func destroy() {
        guard let ip = KernelHarness.ipTool else { return }
        _ = try? KernelHarness.run(ip, ["netns", "del", namespace], check: false)
        _ = try? KernelHarness.run(ip, ["link", "del", outer], check: false)
    }
}
