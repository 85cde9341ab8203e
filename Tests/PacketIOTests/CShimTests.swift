import CShim
import Glibc
import Testing

/// The shim makes the Linux interfaces Swift's Glibc module hides callable.
@Suite struct CShimTests {
    @Test func epollSeesAnEventfd() throws {
        let events = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        try #require(events >= 0 && epoll >= 0)
        defer {
            close(events)
            close(epoll)
        }
        #expect(mtcp_shim_epoll_ctl(epoll, EPOLL_CTL_ADD, events, EPOLLIN.rawValue, 0xDEAD_BEEF) == 0)
        var ready = [epoll_event](repeating: epoll_event(), count: 4)
        #expect(epoll_wait(epoll, &ready, 4, 0) == 0)
        #expect(eventfd_write(events, 1) == 0)
        #expect(epoll_wait(epoll, &ready, 4, 0) == 1)
        #expect(ready[0].data.u64 == 0xDEAD_BEEF)
    }

    @Test func timerfdFiresAndClockAdvances() throws {
        let timer = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        try #require(timer >= 0)
        defer { close(timer) }
        let start = mtcp_shim_monotonic_ns()
        #expect(mtcp_shim_timerfd_set_ns(timer, 1_000_000, 0) == 0)
        var fds = [pollfd(fd: timer, events: Int16(POLLIN), revents: 0)]
        #expect(poll(&fds, 1, 5_000) == 1)
        #expect(mtcp_shim_monotonic_ns() - start >= 1_000_000)
    }

    @Test func errnoAndNonblocking() {
        #expect(close(-1) == -1)
        #expect(mtcp_shim_errno() == EBADF)
        #expect(mtcp_shim_set_nonblocking(-1) == -1)
        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        #expect(mtcp_shim_set_nonblocking(pipeEnds[0]) == 0)
        var byte: UInt8 = 0
        #expect(read(pipeEnds[0], &byte, 1) == -1)
        #expect(mtcp_shim_errno() == EAGAIN)
        close(pipeEnds[0])
        close(pipeEnds[1])
    }
}

@Suite struct CShimRingLayoutTests {
    @Test func ringOffsetsMatchTheKernelABI() {
        #expect(mtcp_shim_tpacket_align(1) == 16)
        #expect(mtcp_shim_tpacket_align(32) == 32)
        // tpacket3_hdr is 48 bytes and tpacket2_hdr 32 on every architecture Linux has.
        #expect(mtcp_shim_v3_sockaddr_offset() == 48)
        #expect(mtcp_shim_v2_tx_data_offset() == 32)
    }
}
