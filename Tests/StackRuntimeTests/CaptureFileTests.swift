import Glibc
import StackRuntime
import Testing

/// A fresh directory, removed with what is in it.
final class ScratchDirectory {
    let path: String
    init() {
        var template = Array("/tmp/mtcp-capture-test.XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    var names: [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var found: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { found.append(name) }
        }
        return found.sorted()
    }
    func contents(_ name: String) -> [UInt8] {
        let fd = open("\(path)/\(name)", O_RDONLY)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            out += buffer[..<n]
        }
        return out
    }
    deinit {
        for name in names { unlink("\(path)/\(name)") }
        rmdir(path)
    }
}

@Suite struct CaptureFileTests {
    let header = [UInt8](repeating: 0xAA, count: 32)

    @Test func aFileRotatesAtItsLimitKeepingTheNewestFiles() throws {
        let dir = ScratchDirectory()
        let file = try CaptureFile(
            requested: "\(dir.path)/cap.pcapng", pid: 1, instance: 0, header: header, limit: 8192, files: 3,
            exclusive: false)
        // 4,000-byte blocks: two fit after the header, the third starts a new file.
        for n in 0..<7 { file.append([UInt8](repeating: UInt8(n), count: 4000)) }
        file.close()
        #expect(file.rotations == 3)
        #expect(file.writeErrors == 0)
        #expect(dir.names == ["cap.pcapng", "cap.pcapng.1", "cap.pcapng.2"])
        // Every file starts with the header; the newest holds the last block, the oldest
        // kept the blocks before the two newer files.
        #expect(Array(dir.contents("cap.pcapng").prefix(32)) == header)
        #expect(dir.contents("cap.pcapng").count == 32 + 4000)
        #expect(dir.contents("cap.pcapng")[32] == 6)
        #expect(dir.contents("cap.pcapng.1")[32] == 4)
        #expect(dir.contents("cap.pcapng.2")[32] == 2)
    }

    @Test func onlyTheFirstStreamTakesTheAskedNameWhenExclusive() throws {
        let dir = ScratchDirectory()
        let requested = "\(dir.path)/nginx.pcapng"
        let first = try CaptureFile(
            requested: requested, pid: 10, instance: 0, header: header, limit: 1 << 20, files: 1, exclusive: true)
        let second = try CaptureFile(
            requested: requested, pid: 11, instance: 0, header: header, limit: 1 << 20, files: 1, exclusive: true)
        let otherInstance = try CaptureFile(
            requested: requested, pid: 10, instance: 1, header: header, limit: 1 << 20, files: 1, exclusive: true)
        #expect(first.path == requested)
        #expect(second.path == "\(dir.path)/nginx.11.0.pcapng")
        #expect(otherInstance.path == "\(dir.path)/nginx.10.1.pcapng")
        let patterned = try CaptureFile(
            requested: "\(dir.path)/c-%p-%i.pcapng", pid: 12, instance: 3, header: header, limit: 1 << 20, files: 1,
            exclusive: true)
        #expect(patterned.path == "\(dir.path)/c-12-3.pcapng")
        #expect(CaptureFile.suffixed("/a.b/cap", pid: 1, instance: 2) == "/a.b/cap.1.2")
    }
}

@Suite struct LogLineTests {
    @Test func linesCarryPidAndInstanceAndGoToTheLogFile() throws {
        #expect(LogLine.format(program: "mtcp", pid: 42, instance: 1, "hello") == "mtcp[42] instance 1: hello\n")
        #expect(LogLine.format(program: "mtcp", pid: 42, instance: nil, "hello") == "mtcp[42]: hello\n")
        let dir = ScratchDirectory()
        let path = "\(dir.path)/log"
        LogLine.emit(program: "mtcp", instance: 0, "first", file: path)
        LogLine.emit(program: "mtcp", instance: nil, "second", file: path)
        let text = String(decoding: dir.contents("log"), as: UTF8.self)
        #expect(text == "mtcp[\(getpid())] instance 0: first\nmtcp[\(getpid())]: second\n")
    }
}
