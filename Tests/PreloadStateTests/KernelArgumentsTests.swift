import Glibc
import PreloadState
import Testing

/// In the kernel's half of the address space.
var kernelHalf: UnsafeRawPointer? { UnsafeRawPointer(bitPattern: UInt(0xffff_8800_0000_0000)) }

@Suite struct UserMemoryTests {
    let heap = UnsafeRawPointer(bitPattern: 0x5555_0000_0000)!

    @Test func rangesMustEndInUserSpace() {
        #expect(UserMemory.inUserSpace(heap, 100))
        #expect(UserMemory.inUserSpace(nil, 100), "NULL passes access_ok: the copy faults")
        #expect(!UserMemory.inUserSpace(heap, UInt.max), "SIZE_MAX wraps around")
        #expect(!UserMemory.inUserSpace(heap, UInt(Int.max)))
        #expect(!UserMemory.inUserSpace(kernelHalf, 1), "the kernel's half")
        #expect(UserMemory.inUserSpace(heap, UInt(UserMemory.transferLimit)))
    }

    @Test func nullAndTheFirstPageFaultWhenTouched() {
        #expect(UserMemory.faults(nil))
        #expect(UserMemory.faults(UnsafeRawPointer(bitPattern: 1)))
        #expect(UserMemory.faults(UnsafeRawPointer(bitPattern: 4095)))
        #expect(!UserMemory.faults(UnsafeRawPointer(bitPattern: 4096)))
        #expect(!UserMemory.faults(heap))
        #expect(UserMemory.usable(nil, 0), "nothing to touch")
        #expect(!UserMemory.usable(nil, 1))
    }
}

@Suite struct TransferTests {
    let heap = UnsafeRawPointer(bitPattern: 0x5555_0000_0000)!

    @Test func readAndWriteCheckTheWholeCountThenCutIt() {
        #expect(Transfer.whole(heap, 10) == .move(length: 10, faults: false))
        #expect(Transfer.whole(heap, UInt.max) == .fail(KernelError(EFAULT)))
        #expect(Transfer.whole(heap, UInt(Int.max)) == .fail(KernelError(EFAULT)))
        #expect(Transfer.whole(heap, 1 << 40) == .move(length: UserMemory.transferLimit, faults: false))
        #expect(Transfer.whole(nil, 10) == .move(length: 10, faults: true))
        #expect(Transfer.whole(nil, 0) == .move(length: 0, faults: false))
    }

    @Test func recvAndSendCutTheCountFirst() {
        #expect(Transfer.single(heap, UInt.max) == .move(length: UserMemory.transferLimit, faults: false))
        #expect(
            Transfer.single(kernelHalf, UInt.max) == .fail(KernelError(EFAULT))
        )
        #expect(Transfer.single(UnsafeRawPointer(bitPattern: 1), 10) == .move(length: 10, faults: true))
    }

    func vector(_ buffers: [(UInt, Int)], tooMany: Int32 = EINVAL) -> Transfer {
        let iov = buffers.map { iovec(iov_base: UnsafeMutableRawPointer(bitPattern: $0.0), iov_len: $0.1) }
        return iov.withUnsafeBufferPointer { Transfer.vector($0.baseAddress, UInt(iov.count), tooMany: tooMany) }
    }

    @Test func vectorsAsImportIovecTakesThem() {
        let base = UInt(bitPattern: heap)
        #expect(vector([]) == .move(length: 0, faults: false))
        #expect(vector([(base, 5), (base, 7)]) == .move(length: 12, faults: false))
        #expect(vector([(base, 5), (base, -1)]) == .fail(KernelError(EINVAL)), "SIZE_MAX is a negative length")
        #expect(vector([(0, 5), (base, -1)]) == .fail(KernelError(EINVAL)), "lengths are checked before addresses")
        #expect(vector([(base, Int.max)]) == .move(length: UserMemory.transferLimit, faults: false), "one is cut first")
        #expect(vector([(base, Int.max), (base, 1)]) == .fail(KernelError(EFAULT)), "several are checked whole")
        #expect(vector([(base, 5), (0, 10)]) == .move(length: 15, faults: true))
        #expect(
            vector([(0, 0), (base, 3)]) == .move(length: 3, faults: false), "an empty NULL buffer is never touched")
        #expect(
            vector([(base, UserMemory.transferLimit), (0, 10)])
                == .move(length: UserMemory.transferLimit, faults: false),
            "past the limit nothing is copied")
    }

    @Test func vectorCountsAndArrays() {
        #expect(Transfer.vector(nil, 0, tooMany: EINVAL) == .move(length: 0, faults: false))
        #expect(Transfer.vector(nil, 1, tooMany: EINVAL) == .fail(KernelError(EFAULT)))
        #expect(
            Transfer.vector(nil, UInt(UserMemory.vectorLimit) + 1, tooMany: EMSGSIZE) == .fail(KernelError(EMSGSIZE)))
        #expect(Transfer.vector(nil, UInt(bitPattern: -1), tooMany: EINVAL) == .fail(KernelError(EINVAL)))
    }
}

@Suite struct SocketAddressCopyTests {
    @Test func addressesIn() {
        var storage = sockaddr_storage()
        withUnsafePointer(to: &storage) { pointer in
            #expect(SocketAddressCopy.inbound(pointer, 16) == nil)
            #expect(SocketAddressCopy.inbound(pointer, 128) == nil)
            #expect(SocketAddressCopy.inbound(pointer, 129) == KernelError(EINVAL))
            #expect(SocketAddressCopy.inbound(pointer, socklen_t.max) == KernelError(EINVAL), "-1")
        }
        #expect(SocketAddressCopy.inbound(nil, 16) == KernelError(EFAULT))
        #expect(SocketAddressCopy.inbound(nil, 0) == nil, "nothing copied; the protocol says EINVAL")
    }

    @Test func addressesOut() {
        var storage = sockaddr_storage()
        var length: socklen_t = 128
        withUnsafeMutablePointer(to: &storage) { pointer in
            let raw = UnsafeMutableRawPointer(pointer)
            #expect(SocketAddressCopy.outbound(raw, &length, size: 16) == .success(16))
            length = 4
            #expect(SocketAddressCopy.outbound(raw, &length, size: 16) == .success(4), "cut to the room given")
            length = socklen_t.max
            #expect(SocketAddressCopy.outbound(raw, &length, size: 16) == .failure(KernelError(EINVAL)))
            #expect(SocketAddressCopy.outbound(raw, nil, size: 16) == .failure(KernelError(EFAULT)))
        }
        length = 16
        #expect(SocketAddressCopy.outbound(nil, &length, size: 16) == .failure(KernelError(EFAULT)))
        length = 0
        #expect(SocketAddressCopy.outbound(nil, &length, size: 16) == .success(0), "no room, nothing written")
        length = 16
        #expect(SocketAddressCopy.outbound(nil, &length, size: 0) == .success(0), "TCP's recvfrom has no address")
    }
}

@Suite struct SocketOptionRulesTests {
    @Test func setsockoptChecksLengthThenValue() {
        var one: Int32 = 1
        withUnsafePointer(to: &one) { value in
            #expect(SocketOptionRules.set(level: SOL_SOCKET, name: SO_REUSEADDR, value: value, length: 4) == nil)
            #expect(
                SocketOptionRules.set(level: SOL_SOCKET, name: SO_REUSEADDR, value: value, length: 2)
                    == KernelError(EINVAL))
            #expect(
                SocketOptionRules.set(level: SOL_SOCKET, name: SO_REUSEADDR, value: value, length: socklen_t.max)
                    == KernelError(EINVAL))
            #expect(
                SocketOptionRules.set(level: Int32(IPPROTO_TCP), name: 9999, value: value, length: 1)
                    == KernelError(EINVAL))
            #expect(SocketOptionRules.set(level: 9999, name: 1, value: value, length: 4) == nil, "the option decides")
        }
        #expect(
            SocketOptionRules.set(level: SOL_SOCKET, name: SO_REUSEADDR, value: nil, length: 4) == KernelError(EFAULT))
        #expect(
            SocketOptionRules.set(level: SOL_SOCKET, name: SO_REUSEADDR, value: nil, length: 0) == KernelError(EINVAL))
        #expect(
            SocketOptionRules.set(level: Int32(IPPROTO_TCP), name: TCP_CONGESTION, value: nil, length: 0)
                == KernelError(EINVAL))
        #expect(
            SocketOptionRules.set(level: Int32(IPPROTO_TCP), name: TCP_CONGESTION, value: nil, length: 5)
                == KernelError(EFAULT))
        #expect(
            SocketOptionRules.set(level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY, value: nil, length: 4) == nil,
            "NULL is 0")
        #expect(SocketOptionRules.set(level: 9999, name: 1, value: nil, length: 4) == nil)
    }

    @Test func valuesAreReadAtTheOptionsOwnSize() {
        #expect(SocketOptionRules.valueSize(level: SOL_SOCKET, name: SO_REUSEADDR, length: 1 << 30) == 4)
        #expect(SocketOptionRules.valueSize(level: SOL_SOCKET, name: SO_LINGER, length: 100) == 8)
        #expect(SocketOptionRules.valueSize(level: SOL_SOCKET, name: SO_RCVTIMEO, length: 8) == 8)
        #expect(SocketOptionRules.valueSize(level: Int32(IPPROTO_TCP), name: TCP_CONGESTION, length: 100) == 15)
    }

    @Test func getsockoptLevelsAndLengths() {
        var length: socklen_t = 4
        #expect(SocketOptionRules.get(level: SOL_SOCKET, length: &length, inet6: false) == nil)
        #expect(SocketOptionRules.get(level: 9999, length: &length, inet6: false) == KernelError(EOPNOTSUPP))
        #expect(SocketOptionRules.get(level: 9999, length: &length, inet6: true) == KernelError(ENOPROTOOPT))
        #expect(
            SocketOptionRules.get(level: Int32(IPPROTO_IPV6), length: &length, inet6: false) == KernelError(EOPNOTSUPP))
        #expect(SocketOptionRules.get(level: 9999, length: nil, inet6: false) == KernelError(EOPNOTSUPP), "level first")
        #expect(SocketOptionRules.get(level: SOL_SOCKET, length: nil, inet6: false) == KernelError(EFAULT))
        length = socklen_t.max
        #expect(SocketOptionRules.get(level: Int32(IPPROTO_TCP), length: &length, inet6: false) == KernelError(EINVAL))
    }

    func timeout(_ seconds: Int64, _ microseconds: Int64, count: Int = 16) -> Result<
        SocketOptionRules.Timeout, KernelError
    > {
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes.withUnsafeMutableBytes {
            $0.storeBytes(of: seconds, as: Int64.self)
            $0.storeBytes(of: microseconds, toByteOffset: 8, as: Int64.self)
        }
        return bytes.withUnsafeBytes { SocketOptionRules.timeout(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    }

    @Test func socketTimeoutsAsSockSetTimeoutTakesThem() {
        #expect(timeout(1, 500_000) == .success(.after(seconds: 1, microseconds: 500_000)))
        #expect(timeout(0, 0) == .success(.none))
        #expect(timeout(-1, 0) == .success(.immediately))
        #expect(timeout(0, 1_000_000) == .failure(KernelError(EDOM)))
        #expect(timeout(0, -1) == .failure(KernelError(EDOM)))
        #expect(timeout(1, 0, count: 8) == .failure(KernelError(EINVAL)))
        #expect(SocketOptionRules.Timeout.after(seconds: 2, microseconds: 1).nanoseconds == 2_000_001_000)
        #expect(SocketOptionRules.Timeout.immediately.nanoseconds > 0, "a wait of nothing, not none")
        #expect(SocketOptionRules.Timeout.immediately.shown == (0, 0))
        #expect(SocketOptionRules.Timeout.after(seconds: Int64.max, microseconds: 0).nanoseconds == Int64.max)
        // Just under the limit the sum wrapped to a negative wait (found by the preload fuzz target).
        #expect(
            SocketOptionRules.Timeout.after(seconds: 9_223_372_036, microseconds: 999_999).nanoseconds == Int64.max)
    }
}

@Suite struct ControlMessagesTests {
    func check(_ words: [Int], length: Int? = nil) -> (KernelError?, Bool) {
        words.withUnsafeBytes { bytes in
            let found = ControlMessages.check(bytes.baseAddress, length ?? bytes.count)
            return (found.error, found.socketLevel)
        }
    }

    @Test func messagesAsTCPReadsThem() {
        // cmsghdr: cmsg_len (8 bytes), cmsg_level and cmsg_type (4 each), data padded to 8.
        let ttl = [20, Int(IPPROTO_IP) | Int(IP_TTL) << 32, 64]
        #expect(check(ttl) == (nil, false), "other levels are skipped")
        #expect(check([0, 0]) == (KernelError(EINVAL), false), "a zeroed header")
        #expect(check([1000, Int(IPPROTO_IP), 0]) == (KernelError(EINVAL), false), "longer than the buffer")
        #expect(check([0], length: 8) == (nil, false), "no room for a header")
        #expect(check([20, Int(SOL_SOCKET) | 37 << 32, 0]) == (nil, true))
        #expect(check(ttl + [20, Int(SOL_SOCKET), 0]) == (nil, true), "the second one too")
    }

    @Test func theBufferItself() {
        #expect(ControlMessages.check(nil, 0).error == nil)
        #expect(ControlMessages.check(nil, 16).error == KernelError(EFAULT))
        #expect(ControlMessages.check(nil, Int(Int32.max) + 1).error == KernelError(ENOBUFS))
        #expect(ControlMessages.check(nil, -1).error == KernelError(ENOBUFS), "a huge size_t")
    }
}

@Suite struct WaitTimeoutTests {
    @Test func selectAsGlibcTakesIt() {
        #expect(WaitTimeout.select(seconds: 1, microseconds: 2) == .success(1_000_002_000))
        #expect(WaitTimeout.select(seconds: 0, microseconds: 2_000_000) == .success(2_000_000_000), "carried")
        #expect(WaitTimeout.select(seconds: -1, microseconds: 0) == .failure(KernelError(EINVAL)))
        #expect(WaitTimeout.select(seconds: 0, microseconds: -1) == .failure(KernelError(EINVAL)))
        #expect(WaitTimeout.select(seconds: Int.max, microseconds: 999_999_999) == .success(Int64.max))
    }

    @Test func timespecsAsPollSelectSetTimeoutTakesThem() {
        #expect(WaitTimeout.timespec(seconds: 0, nanoseconds: 5) == .success(5))
        #expect(WaitTimeout.timespec(seconds: -1, nanoseconds: 0) == .failure(KernelError(EINVAL)))
        #expect(WaitTimeout.timespec(seconds: 0, nanoseconds: 1_000_000_000) == .failure(KernelError(EINVAL)))
        #expect(WaitTimeout.timespec(seconds: 0, nanoseconds: -1) == .failure(KernelError(EINVAL)))
        #expect(WaitTimeout.timespec(seconds: 9_223_372_036, nanoseconds: 999_999_999) == .success(Int64.max))
        #expect(WaitTimeout.select(seconds: 9_223_372_036, microseconds: 999_999) == .success(Int64.max))
    }
}

@Suite struct RecordSerialTests {
    @Test func aReusedSlotHoldsARecordWithAnotherSerial() {
        var table = RecordTable(instance: 0)
        let a = table.add(SocketRecord(stackID: 1, proto: 0))
        let first = table[Int(a)]!.serial
        table.release(Int(a))
        let b = table.add(SocketRecord(stackID: 1, proto: 0))
        #expect(b == a, "the same entry")
        #expect(table[Int(b)]!.serial != first, "a call waiting on the old record can tell")
    }
}
