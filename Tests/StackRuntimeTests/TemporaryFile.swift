import Glibc

/// A file in /tmp with the given text, removed when the test drops it.
final class TemporaryFile {
    let path: String

    init(_ text: String) {
        var template = Array("/tmp/mtcp-config-test.XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        precondition(fd >= 0, "mkstemp failed")
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        precondition(written == bytes.count, "short write")
        close(fd)
    }

    deinit { unlink(path) }
}
