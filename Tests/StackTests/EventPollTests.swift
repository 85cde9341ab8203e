import PacketIO
import Stack
import TCP
import Testing
import Wire

/// Waits once without blocking and returns what was reported.
func wait(_ stack: NetworkStack<MemoryPort>, _ epfd: Int32, capacity: Int = 16) throws -> [EpollEvent] {
    var events = [EpollEvent](repeating: EpollEvent(), count: capacity)
    let n = try events.withUnsafeMutableBufferPointer { try stack.epollWait(epfd, into: $0, timeout: 0) }
    return Array(events[0..<n])
}

let IN = EpollFlags.EPOLLIN
let OUT = EpollFlags.EPOLLOUT

@Suite struct EventPollTests {
    @Test func levelTriggeredReportsWhileReadable() throws {
        let hosts = TwoHosts()
        let (client, server, _) = try hosts.connectedPair()
        let ep = hosts.b.epollCreate()
        try hosts.b.epollControl(ep, op: .add, socket: server, events: IN, data: 42)
        #expect(try wait(hosts.b, ep).isEmpty)
        _ = try pattern(100, seed: 1).withUnsafeBytes { try hosts.a.write(client, $0) }
        hosts.run(for: .milliseconds(10))
        for _ in 0..<3 {
            let events = try wait(hosts.b, ep)
            #expect(events == [EpollEvent(events: IN, data: 42)])
        }
        var buffer = [UInt8](repeating: 0, count: 200)
        #expect(try buffer.withUnsafeMutableBytes { try hosts.b.read(server, into: $0) } == 100)
        #expect(try wait(hosts.b, ep).isEmpty)
        #expect(throws: Errno.EEXIST) { try hosts.b.epollControl(ep, op: .add, socket: server, events: IN) }
        try hosts.b.epollControl(ep, op: .delete, socket: server)
        #expect(throws: Errno.ENOENT) { try hosts.b.epollControl(ep, op: .modify, socket: server, events: IN) }
    }

    @Test func readyCollectsWithoutRunningARound() throws {
        let hosts = TwoHosts()
        let (client, server, _) = try hosts.connectedPair()
        let ep = hosts.b.epollCreate()
        try hosts.b.epollControl(ep, op: .add, socket: server, events: IN, data: 5)
        var events = [EpollEvent](repeating: EpollEvent(), count: 4)
        func ready() throws -> [EpollEvent] {
            let n = try events.withUnsafeMutableBufferPointer { try hosts.b.epollReady(ep, into: $0) }
            return Array(events[0..<n])
        }
        #expect(!hosts.b.epollHasReady(ep))
        #expect(try ready().isEmpty)
        _ = try pattern(100, seed: 1).withUnsafeBytes { try hosts.a.write(client, $0) }
        hosts.a.poll()
        #expect(hosts.link.b.pending > 0)
        // The segment waits on the link: nothing is ready until a round receives it.
        #expect(!hosts.b.epollHasReady(ep))
        #expect(try ready().isEmpty)
        #expect(hosts.link.b.pending > 0)
        hosts.b.poll()
        #expect(hosts.b.epollHasReady(ep))
        #expect(try ready() == [EpollEvent(events: IN, data: 5)])
        var buffer = [UInt8](repeating: 0, count: 200)
        #expect(try buffer.withUnsafeMutableBytes { try hosts.b.read(server, into: $0) } == 100)
        // Level-triggered: still listed until a collect finds it no longer ready.
        #expect(try ready().isEmpty)
        #expect(!hosts.b.epollHasReady(ep))
        #expect(throws: Errno.EBADF) {
            _ = try events.withUnsafeMutableBufferPointer { try hosts.b.epollReady(99, into: $0) }
        }
        #expect(!hosts.b.epollHasReady(99))
    }

    @Test func edgeTriggeredReportsOncePerArrival() throws {
        let hosts = TwoHosts()
        let (client, server, _) = try hosts.connectedPair()
        let ep = hosts.b.epollCreate()
        try hosts.b.epollControl(ep, op: .add, socket: server, events: IN | EpollFlags.EPOLLET, data: 7)
        _ = try pattern(100, seed: 1).withUnsafeBytes { try hosts.a.write(client, $0) }
        hosts.run(for: .milliseconds(10))
        #expect(try wait(hosts.b, ep) == [EpollEvent(events: IN, data: 7)])
        // Not read, no new data: no new edge.
        #expect(try wait(hosts.b, ep).isEmpty)
        // New data is a new edge even though the socket was readable all along.
        _ = try pattern(50, seed: 2).withUnsafeBytes { try hosts.a.write(client, $0) }
        // Long enough for Nagle to release the small segment after the delayed ACK.
        hosts.run(for: .milliseconds(100))
        #expect(try wait(hosts.b, ep) == [EpollEvent(events: IN, data: 7)])
        #expect(try wait(hosts.b, ep).isEmpty)
    }

    @Test func oneShotFiresOnceUntilModified() throws {
        let hosts = TwoHosts()
        let (client, server, _) = try hosts.connectedPair()
        let ep = hosts.b.epollCreate()
        try hosts.b.epollControl(ep, op: .add, socket: server, events: IN | EpollFlags.EPOLLONESHOT, data: 1)
        _ = try pattern(10, seed: 1).withUnsafeBytes { try hosts.a.write(client, $0) }
        hosts.run(for: .milliseconds(10))
        #expect(try wait(hosts.b, ep).count == 1)
        _ = try pattern(10, seed: 1).withUnsafeBytes { try hosts.a.write(client, $0) }
        hosts.run(for: .milliseconds(10))
        #expect(try wait(hosts.b, ep).isEmpty)
        try hosts.b.epollControl(ep, op: .modify, socket: server, events: IN | EpollFlags.EPOLLONESHOT, data: 2)
        #expect(try wait(hosts.b, ep) == [EpollEvent(events: IN, data: 2)])
        #expect(try wait(hosts.b, ep).isEmpty)
    }

    @Test func listenerReadableWhenAcceptWouldSucceedAndNoDuplicates() throws {
        let hosts = TwoHosts()
        let listener = try hosts.b.socket()
        try hosts.b.bind(listener, address: .any, port: 80)
        try hosts.b.listen(listener, backlog: 8)
        try hosts.b.setNonBlocking(listener)
        let ep = hosts.b.epollCreate()
        try hosts.b.epollControl(ep, op: .add, socket: listener, events: IN, data: 80)
        #expect(try wait(hosts.b, ep).isEmpty)
        var clients: [Int32] = []
        for _ in 0..<3 {
            let c = try hosts.a.socket()
            try hosts.a.setNonBlocking(c)
            #expect(throws: Errno.EINPROGRESS) { try hosts.a.connect(c, address: addressB, port: 80) }
            clients.append(c)
        }
        hosts.run(for: .milliseconds(20))
        // Three connections waiting, one event for the listener, reported once per wait.
        #expect(try wait(hosts.b, ep) == [EpollEvent(events: IN, data: 80)])
        var accepted = 0
        while (try? hosts.b.accept(listener)) != nil { accepted += 1 }
        #expect(accepted == 3)
        #expect(try wait(hosts.b, ep).isEmpty)
        // Client side: connect completion shows as EPOLLOUT, each socket exactly once per wait.
        let epA = hosts.a.epollCreate()
        for (k, c) in clients.enumerated() {
            try hosts.a.epollControl(epA, op: .add, socket: c, events: IN | OUT, data: UInt64(k))
        }
        let events = try wait(hosts.a, epA)
        #expect(events.count == 3)
        #expect(Set(events.map(\.data)) == [0, 1, 2])
        #expect(events.allSatisfy { $0.events == OUT })
        // A small buffer gets the rest on the next wait (level-triggered rotation).
        let few = try wait(hosts.a, epA, capacity: 2)
        #expect(few.count == 2)
    }

    /// A connection reset by the peer reports what Linux's tcp_poll does: readable, writable,
    /// error, hang-up and read hang-up (nginx closes such a connection on EPOLLRDHUP).
    @Test func aResetReportsReadHangupAsLinuxDoes() throws {
        let hosts = TwoHosts()
        let (client, server, _) = try hosts.connectedPair(port: 82)
        let ep = hosts.a.epollCreate()
        try hosts.a.epollControl(ep, op: .add, socket: client, events: IN | OUT | EpollFlags.EPOLLRDHUP, data: 3)
        #expect(try wait(hosts.a, ep) == [EpollEvent(events: OUT, data: 3)])
        var linger: [Int32] = [1, 0]
        try linger.withUnsafeBytes {
            try hosts.b.setsockopt(server, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_LINGER, value: $0)
        }
        try hosts.b.close(server)
        hosts.run(for: .milliseconds(10))
        let all = IN | OUT | EpollFlags.EPOLLERR | EpollFlags.EPOLLHUP | EpollFlags.EPOLLRDHUP
        #expect(try wait(hosts.a, ep) == [EpollEvent(events: all, data: 3)])
        // Level-triggered: still so on the next wait (until the error is read, ERR stays).
        #expect(try wait(hosts.a, ep).first.map { $0.events & EpollFlags.EPOLLRDHUP != 0 } == true)
    }

    @Test func hangupsAndErrors() throws {
        let hosts = TwoHosts()
        let (client, server, _) = try hosts.connectedPair()
        let ep = hosts.a.epollCreate()
        try hosts.a.epollControl(ep, op: .add, socket: client, events: IN | EpollFlags.EPOLLRDHUP, data: 5)
        // Peer FIN: readable with RDHUP, not yet HUP.
        try hosts.b.shutdown(server, how: SocketConstant.SHUT_WR)
        hosts.run(for: .milliseconds(10))
        #expect(try wait(hosts.a, ep) == [EpollEvent(events: IN | EpollFlags.EPOLLRDHUP, data: 5)])
        // Our side shuts down too: both directions closed, HUP.
        try hosts.a.shutdown(client, how: SocketConstant.SHUT_WR)
        hosts.run(for: .milliseconds(10))
        #expect(
            try wait(hosts.a, ep)
                == [EpollEvent(events: IN | EpollFlags.EPOLLRDHUP | EpollFlags.EPOLLHUP, data: 5)])
        // A reset makes EPOLLERR.
        let (c2, s2, _) = try hosts.connectedPair(port: 81)
        let ep2 = hosts.a.epollCreate()
        try hosts.a.epollControl(ep2, op: .add, socket: c2, events: IN | EpollFlags.EPOLLET, data: 9)
        #expect(try wait(hosts.a, ep2).isEmpty)
        try hosts.b.setsockopt(s2, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_KEEPALIVE, 0)
        var linger: [Int32] = [1, 0]
        try linger.withUnsafeBytes {
            try hosts.b.setsockopt(s2, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_LINGER, value: $0)
        }
        try hosts.b.close(s2)
        hosts.run(for: .milliseconds(10))
        let events = try wait(hosts.a, ep2)
        #expect(events.count == 1)
        #expect(events.first.map { $0.events & EpollFlags.EPOLLERR != 0 } == true)
        #expect(events.first.map { $0.events & EpollFlags.EPOLLHUP != 0 } == true)
        #expect(try hosts.a.getsockopt(c2, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_ERROR) == 104)
        // Edge-triggered: the error was reported once.
        #expect(try wait(hosts.a, ep2).isEmpty)
    }

    @Test func failedConnectReportsErrorAndBlockingWaitTimesOut() throws {
        let hosts = TwoHosts()
        let c = try hosts.a.socket()
        try hosts.a.setNonBlocking(c)
        let ep = hosts.a.epollCreate()
        try hosts.a.epollControl(ep, op: .add, socket: c, events: OUT, data: 3)
        // A fresh socket reads as writable and hung up, as on Linux.
        #expect(try wait(hosts.a, ep) == [EpollEvent(events: OUT | EpollFlags.EPOLLHUP, data: 3)])
        #expect(throws: Errno.EINPROGRESS) { try hosts.a.connect(c, address: addressB, port: 9999) }
        #expect(try wait(hosts.a, ep).isEmpty)
        hosts.run(for: .milliseconds(10))
        let events = try wait(hosts.a, ep)
        #expect(events.count == 1 && events[0].events & EpollFlags.EPOLLERR != 0)
        #expect(try hosts.a.getsockopt(c, level: SocketConstant.SOL_SOCKET, name: SocketConstant.SO_ERROR) == 111)
        // A blocking wait with nothing to report returns 0 after its timeout.
        let quiet = hosts.a.epollCreate()
        var out = [EpollEvent](repeating: EpollEvent(), count: 4)
        let start = hosts.clock.now
        let n = try out.withUnsafeMutableBufferPointer { try hosts.a.epollWait(quiet, into: $0, timeout: 500) }
        #expect(n == 0)
        #expect(hosts.clock.now - start >= .milliseconds(500))
        try hosts.a.epollClose(quiet)
        #expect(throws: Errno.EBADF) {
            _ = try out.withUnsafeMutableBufferPointer { try hosts.a.epollWait(quiet, into: $0, timeout: 0) }
        }
    }

    @Test func exclusiveGoesWithAddOnlyAndIsNeverModified() throws {
        let hosts = TwoHosts()
        let (_, server, _) = try hosts.connectedPair()
        let ep = hosts.b.epollCreate()
        let exclusive = EpollFlags.EPOLLEXCLUSIVE
        #expect(throws: Errno.EINVAL, "not with EPOLLONESHOT") {
            try hosts.b.epollControl(ep, op: .add, socket: server, events: IN | exclusive | EpollFlags.EPOLLONESHOT)
        }
        #expect(throws: Errno.EINVAL, "not with MOD, even unregistered") {
            try hosts.b.epollControl(ep, op: .modify, socket: server, events: IN | exclusive)
        }
        try hosts.b.epollControl(
            ep, op: .add, socket: server, events: IN | OUT | EpollFlags.EPOLLET | exclusive, data: 1)
        #expect(try wait(hosts.b, ep) == [EpollEvent(events: OUT, data: 1)], "it reports as any registration")
        #expect(throws: Errno.EINVAL, "a registration made with it") {
            try hosts.b.epollControl(ep, op: .modify, socket: server, events: IN)
        }
        try hosts.b.epollControl(ep, op: .delete, socket: server)
        try hosts.b.epollControl(ep, op: .add, socket: server, events: IN)
        try hosts.b.epollControl(ep, op: .modify, socket: server, events: OUT)
    }
}
