import Stack

/// mtcp_pipe's byte channel inside one context: a fixed ring (Linux's default pipe size),
/// written through one id and read through the other. Only touched under the context's lock.
final class ContextPipe {
    static let capacity = 65536

    let storage: UnsafeMutableRawBufferPointer
    var head = 0
    var count = 0
    var readerOpen = true
    var writerOpen = true
    /// The context ids of the two ends.
    var readID: Int32 = -1
    var writeID: Int32 = -1

    init() {
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: ContextPipe.capacity, alignment: 8)
    }

    deinit { storage.deallocate() }

    var space: Int { ContextPipe.capacity - count }

    /// Copies up to `bytes.count` bytes in; how many fit.
    func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        let n = min(bytes.count, space)
        var done = 0
        while done < n {
            let tail = (head + count) % ContextPipe.capacity
            let chunk = min(n - done, ContextPipe.capacity - tail)
            UnsafeMutableRawBufferPointer(rebasing: storage[tail..<tail + chunk])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[done..<done + chunk]))
            count += chunk
            done += chunk
        }
        return n
    }

    /// Copies up to `buffer.count` bytes out; how many there were.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(buffer.count, count)
        var done = 0
        while done < n {
            let chunk = min(n - done, ContextPipe.capacity - head)
            UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + chunk])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: storage[head..<head + chunk]))
            head = (head + chunk) % ContextPipe.capacity
            count -= chunk
            done += chunk
        }
        if count == 0 { head = 0 }
        return n
    }

    /// The epoll bits of the read end (`reading`) or the write end, as Linux reports a pipe's.
    func readiness(reading: Bool) -> UInt32 {
        if reading {
            var mask: UInt32 = count > 0 ? EpollFlags.EPOLLIN : 0
            if !writerOpen { mask |= EpollFlags.EPOLLHUP }
            return mask
        }
        if !readerOpen { return EpollFlags.EPOLLERR }
        return space > 0 ? EpollFlags.EPOLLOUT : 0
    }
}
