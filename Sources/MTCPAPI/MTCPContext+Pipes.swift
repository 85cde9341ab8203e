import Stack
import TCP

/// mtcp_pipe: a pair of ids inside the context, readable, writable and pollable like a socket.
extension MTCPContext {
    func pipe() throws(Errno) -> (read: Int32, write: Int32) {
        let pipe = ContextPipe()
        let readID = try allocate(.pipeRead(pipe))
        let writeID: Int32
        do { writeID = try allocate(.pipeWrite(pipe)) } catch {
            release(readID)
            throw error
        }
        pipe.readID = readID
        pipe.writeID = writeID
        return (readID, writeID)
    }

    func readPipe(
        _ id: Int32, _ pipe: ContextPipe, into buffer: UnsafeMutableRawBufferPointer, nonBlocking: Bool, peek: Bool
    ) throws(Errno) -> Int {
        guard !peek else { throw .ENOTSOCK }
        if buffer.count == 0 { return 0 }
        while true {
            let n = pipe.read(into: buffer)
            if n > 0 {
                armPipe(pipe.writeID, edges: EpollFlags.EPOLLOUT)
                wakeSleepers()
                return n
            }
            if !pipe.writerOpen { return 0 }
            if nonBlocking { throw .EAGAIN }
            _ = try wait(until: .never) { pipe.count > 0 || !pipe.writerOpen }
        }
    }

    func writePipe(_ id: Int32, _ pipe: ContextPipe, _ bytes: UnsafeRawBufferPointer, nonBlocking: Bool)
        throws(Errno) -> Int
    {
        var written = 0
        while true {
            guard pipe.readerOpen else {
                if written > 0 { return written }
                throw .EPIPE
            }
            let rest = UnsafeRawBufferPointer(rebasing: bytes[written...])
            let n = pipe.write(rest)
            written += n
            if n > 0 {
                armPipe(pipe.readID, edges: EpollFlags.EPOLLIN)
                wakeSleepers()
            }
            if written == bytes.count { return written }
            if nonBlocking {
                if written > 0 { return written }
                throw .EAGAIN
            }
            _ = try wait(until: .never) { pipe.space > 0 || !pipe.readerOpen }
        }
    }

    /// The current epoll bits of a pipe end's id (0 for anything else).
    func pipeReadiness(_ id: Int32) -> UInt32 {
        guard id >= 0, Int(id) < entries.count, let entry = entries[Int(id)] else { return 0 }
        switch entry.descriptor {
        case .pipeRead(let pipe): return pipe.readiness(reading: true)
        case .pipeWrite(let pipe): return pipe.readiness(reading: false)
        case .socket, .epoll: return 0
        }
    }

    /// Records readiness edges of pipe end `id` in every epoll set watching it.
    func armPipe(_ id: Int32, edges: UInt32) {
        guard id >= 0 else { return }
        for set in epollSets where set.pipes[id] != nil { set.pipes[id]!.pendingEdges |= edges }
    }

    /// Drops `id`'s pipe registrations from every epoll set (on close).
    func forgetPipeRegistrations(of id: Int32) {
        for set in epollSets { set.pipes.removeValue(forKey: id) }
    }
}
