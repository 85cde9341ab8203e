import Glibc
import PacketIO
import PacketIODPDK
import PreloadState
import Stack
import StackRuntime
import TCP
import Wire

// libFuzzer target: what the preload library does with the values a program hands it. The
// first byte picks the part: the descriptor table and its socket records under socket, dup,
// dup2, close, listen and fork, checked against a plain model after every step; the MTCP_*
// settings (environment, config files, mTCP's config file, impairment and DPDK argument
// texts), which must parse back from what they export; sockaddr_in and sockaddr_in6 read
// and written at the caller's lengths; iovec arrays walked by the receive and send loops; the
// kernel's argument rules the hooks apply first (KernelArguments: user memory, transfers,
// iovec arrays, address copies, control messages, wait timeouts); socket options set and read
// back as the hooks do it, through a stack socket; epoll_ctl's operations against a model of
// the registrations; kept options, listener copies and summed counter lines.


extension Reader {
    mutating func text(_ limit: Int) -> String {
        String(decoding: take(Int(byte()) % (limit + 1)).filter { $0 != 0 }, as: UTF8.self)
    }
    /// Mostly a value from `common`, sometimes any.
    mutating func pick<T>(_ common: [T], or any: (inout Reader) -> T) -> T {
        let b = byte()
        return Int(b) < common.count * 8 ? common[Int(b) % common.count] : any(&self)
    }
}

/// `count` bytes of their own allocation, so that address sanitizer sees any access past them.
final class Exact {
    let buffer: UnsafeMutableRawBufferPointer
    init(_ bytes: [UInt8]) {
        buffer = .allocate(byteCount: bytes.count, alignment: 8)
        buffer.copyBytes(from: bytes)
    }
    init(zeros count: Int) {
        buffer = .allocate(byteCount: count, alignment: 8)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
    }
    deinit { buffer.deallocate() }
    var raw: UnsafeRawBufferPointer { UnsafeRawBufferPointer(buffer) }
    var bytes: [UInt8] { Array(buffer) }
}

// MARK: Descriptor table and socket records

/// The descriptor table (an int32 per fd, as CPreload keeps it), the record tables of a few
/// instances, and epoll shadows, changed as the hooks change them; beside them the model: which
/// fd names which socket (by its stack id) or shadow, and what each socket is.
struct Descriptors {
    static let size = 48
    var table = [Int32](repeating: 0, count: size)
    var tables: [RecordTable]
    var shadows: [Int?] = []
    var freeShadows: [Int32] = []
    var shadowReferences: [Int: Int] = [:]

    enum Open: Equatable {
        case socket(Int32)
        case epoll(Int)
    }
    var model: [Int: Open] = [:]
    /// Each socket's table (position in `tables`), and what fork and listen made of it.
    var home: [Int32: Int] = [:]
    var inherited: Set<Int32> = []
    var listening: Set<Int32> = []
    var nextToken: Int32 = 100

    var serials: [Set<UInt64>]

    init(instances: [Int]) {
        tables = instances.map { RecordTable(instance: $0) }
        serials = instances.map { _ in [] }
    }

    func lowestFree() -> Int? { (0..<Self.size).first { model[$0] == nil } }

    mutating func socket(in p: Int) {
        guard let fd = lowestFree() else { return }
        let token = nextToken
        nextToken += 1
        let r = tables[p].add(SocketRecord(stackID: token, proto: 0))
        // A serial its table never gave before: a waiting call tells a reused entry by it.
        require(serials[p].insert(tables[p][Int(r)]!.serial).inserted, "a new serial per record")
        table[fd] = tables[p].entry(of: r)
        model[fd] = .socket(token)
        home[token] = p
    }

    mutating func epollCreate() {
        guard let fd = lowestFree() else { return }
        let token = Int(nextToken)
        nextToken += 1
        let index: Int32
        if let free = freeShadows.popLast() {
            shadows[Int(free)] = token
            index = free
        } else {
            shadows.append(token)
            index = Int32(shadows.count - 1)
        }
        shadowReferences[token] = 1
        table[fd] = DescriptorEntry.make(kind: DescriptorEntry.epollKind, index: index)
        model[fd] = .epoll(token)
    }

    /// `new` refers to what `fd` does (dup, dup2, F_DUPFD).
    mutating func share(_ fd: Int, with new: Int) {
        let entry = table[fd]
        switch DescriptorEntry.kind(entry) {
        case DescriptorEntry.socketKind:
            guard let p = tables.firstIndex(where: { $0.instance == DescriptorEntry.instance(entry) }),
                let r = tables[p].index(of: entry)
            else {
                require(false, "an open socket's entry names its record")
                return
            }
            tables[p][r]!.references += 1
        case DescriptorEntry.epollKind:
            guard let token = shadows[DescriptorEntry.index(entry)] else { return }
            shadowReferences[token]! += 1
        default:
            return
        }
        table[new] = entry
        model[new] = model[fd]
    }

    mutating func close(_ fd: Int) {
        let entry = table[fd]
        table[fd] = 0
        switch DescriptorEntry.kind(entry) {
        case DescriptorEntry.socketKind:
            guard case .socket(let token) = model[fd], let p = home[token], let r = tables[p].index(of: entry) else {
                require(false, "a closed socket's entry names its record")
                return
            }
            tables[p][r]!.references -= 1
            if tables[p][r]!.references == 0 {
                tables[p].release(r)
                home[token] = nil
                inherited.remove(token)
                listening.remove(token)
            }
        case DescriptorEntry.epollKind:
            let index = DescriptorEntry.index(entry)
            guard let token = shadows[index] else { return }
            shadowReferences[token]! -= 1
            if shadowReferences[token] == 0 {
                shadowReferences[token] = nil
                shadows[index] = nil
                freeShadows.append(Int32(index))
            }
        default:
            break
        }
        model[fd] = nil
    }

    mutating func fork() {
        for p in tables.indices { tables[p].markInherited() }
        inherited = Set(home.keys)
    }

    mutating func listen(_ fd: Int) {
        guard case .socket(let token) = model[fd], let p = home[token], let r = tables[p].index(of: table[fd]) else {
            return
        }
        tables[p][r]!.role = .listener
        tables[p][r]!.localPort = UInt16(truncatingIfNeeded: token)
        listening.insert(token)
    }

    /// Any entry: found in a table exactly when it is the entry of one of its live records.
    func lookUp(_ entry: Int32) {
        for table in tables {
            let found = table.index(of: entry)
            let expected = table.indices.first { table[$0] != nil && table.entry(of: Int32($0)) == entry }
            require(found == expected, "an entry finds exactly the live record it names")
        }
    }

    func check() {
        var references: [Int32: Int] = [:]
        for fd in 0..<Self.size {
            let entry = table[fd]
            switch model[fd] {
            case nil:
                require(entry == 0, "a closed fd has no entry")
            case .socket(let token):
                references[token, default: 0] += 1
                require(entry > 0 && DescriptorEntry.kind(entry) == DescriptorEntry.socketKind, "a socket's kind")
                let p = home[token]!
                require(DescriptorEntry.instance(entry) == tables[p].instance, "a socket's instance")
                guard let r = tables[p].index(of: entry) else {
                    require(false, "an open socket's record is found")
                    return
                }
                let record = tables[p][r]!
                require(record.stackID == token, "the entry names its own socket's record")
                require(record.inherited == inherited.contains(token), "inherited after fork, own before")
                require(record.listening == listening.contains(token), "the role stays")
            case .epoll(let token):
                require(entry > 0 && DescriptorEntry.kind(entry) == DescriptorEntry.epollKind, "an epoll fd's kind")
                require(shadows[DescriptorEntry.index(entry)] == token, "an epoll fd names its shadow")
            }
        }
        for (p, table) in tables.enumerated() {
            var live = 0
            for r in table.indices {
                guard let record = table[r] else { continue }
                live += 1
                require(home[record.stackID] == p, "a live record belongs to an open socket")
                require(record.references == references[record.stackID], "references count the socket's fds")
            }
            require(live == table.liveCount, "live count")
            require(live == home.values.filter { $0 == p }.count, "every open socket has its record")
        }
    }
}

func fuzzDescriptors(_ r: inout Reader) {
    // A few instances with distinct numbers, as MTCP_CORES makes them.
    var instances: [Int] = []
    for _ in 0..<(Int(r.byte() % 4) + 1) {
        let k = Int(r.byte()) % DescriptorEntry.instanceLimit
        if !instances.contains(k) { instances.append(k) }
    }
    var d = Descriptors(instances: instances)
    var steps = 0
    while !r.done && steps < 512 {
        steps += 1
        let op = r.byte()
        let fd = Int(r.byte()) % Descriptors.size
        switch op % 10 {
        case 0, 1, 2: d.socket(in: Int(r.byte()) % d.tables.count)
        case 3:
            if d.model[fd] != nil, let new = d.lowestFree() { d.share(fd, with: new) }
        case 4:
            // dup2: the target is closed first; onto itself it is nothing.
            let target = Int(r.byte()) % Descriptors.size
            if d.model[fd] != nil && target != fd {
                if d.model[target] != nil { d.close(target) }
                d.share(fd, with: target)
            }
        case 5, 6: if d.model[fd] != nil { d.close(fd) }
        case 7: d.fork()
        case 8: d.listen(fd)
        default:
            if op & 0x80 != 0 { d.epollCreate() } else { d.lookUp(Int32(bitPattern: r.long())) }
        }
        d.check()
    }
    for fd in 0..<Descriptors.size where d.model[fd] != nil { d.close(fd) }
    d.check()
    for table in d.tables { require(table.liveCount == 0, "every record freed with its last fd") }
}

/// Entries of any kind, instance and index in range decode to what they were made of.
func fuzzEntries(_ r: inout Reader) {
    while !r.done {
        let kind = r.byte() & 1 == 0 ? DescriptorEntry.socketKind : DescriptorEntry.epollKind
        let instance = Int(r.byte()) % DescriptorEntry.instanceLimit
        let index = Int32(r.long() % UInt32(DescriptorEntry.indexLimit))
        let entry = DescriptorEntry.make(kind: kind, instance: instance, index: index)
        require(entry > 0, "entries stay positive (0: not the library's)")
        require(DescriptorEntry.kind(entry) == kind, "kind decodes")
        require(DescriptorEntry.instance(entry) == instance, "instance decodes")
        require(DescriptorEntry.index(entry) == Int(index), "index decodes")
    }
}

// MARK: Records: kept options, listener copies, counter lines

func fuzzRecords(_ r: inout Reader) {
    var record = SocketRecord(stackID: 1, proto: 6)
    // The model: options in the order last set, each once.
    var kept: [(level: Int32, name: Int32, value: [UInt8])] = []
    var steps = 0
    while !r.done && steps < 128 {
        steps += 1
        switch r.byte() % 4 {
        case 0, 1:
            let level = r.pick([1, 6, 41, 0]) { Int32(bitPattern: $0.long()) }
            let name = r.pick([1, 2, 3, 7, 8, 9, 13, 20, 21, 26, 67]) { Int32(bitPattern: $0.long()) }
            let value = r.take(Int(r.byte() % 20))
            record.keep(level: level, name: name, value: value)
            if record.keepsOptions {
                kept.removeAll { $0.level == level && $0.name == name }
                kept.append((level, name, value))
            }
        case 2:
            record.keepsOptions.toggle()
        default:
            // A listener's copies by instance (-1: none there), and its home.
            record.copies = (0..<Int(r.byte() % 17)).map { _ in r.byte() & 3 == 0 ? -1 : Int32(r.byte()) }
            let home = Int(r.byte() % 17)
            let sockets = Array(record.stackSockets(home: home))
            let expected: [(Int, Int32)] =
                record.copies.isEmpty
                ? [(home, record.stackID)]
                : record.copies.enumerated().filter { $0.element >= 0 }.map { ($0.offset, $0.element) }
            require(sockets.count == expected.count, "one stack socket per copy (or the record's own)")
            for (a, b) in zip(sockets, expected) { require(a.instance == b.0 && a.id == b.1, "copies in order") }
            let others = record.otherCopies(home: home)
            require(others.count == expected.filter { $0.0 != home }.count, "other copies leave out home")
            require(others.allSatisfy { $0.instance != home }, "other copies are elsewhere")
        }
        require(record.replay.count == kept.count, "each option kept once")
        for (a, b) in zip(record.replay, kept) {
            require(a.level == b.level && a.name == b.name && a.value == b.value, "kept in the order last set")
        }
    }
}

/// Summed counter lines: keys once each in first-seen order; numbers add up (saturating).
func fuzzCounterLines(_ r: inout Reader) {
    let keys = ["frames_in", "frames_out", "tcp_in", "dropped", "x"]
    var lines: [String] = []
    var sums: [String: Int] = [:]
    var order: [String] = []
    for _ in 0..<(Int(r.byte() % 4) + 1) {
        var words: [String] = []
        for _ in 0..<Int(r.byte() % 6) {
            let key = keys[Int(r.byte()) % keys.count]
            let value: Int
            switch r.byte() % 4 {
            case 0: value = Int(bitPattern: UInt(r.quad()))
            case 1: value = Int.max - Int(r.byte())
            default: value = Int(r.word())
            }
            // A key once per line, as the stack's summary prints them.
            guard !words.contains(where: { $0.hasPrefix(key + "=") }) else { continue }
            words.append("\(key)=\(value)")
            if let sum = sums[key] {
                let (t, overflow) = sum.addingReportingOverflow(value)
                sums[key] = overflow ? (value > 0 ? Int.max : Int.min) : t
            } else {
                sums[key] = value
                order.append(key)
            }
        }
        lines.append(words.joined(separator: " "))
    }
    let summed = CounterLine.summed(lines)
    let pairs = summed.split(separator: " ").map { $0.split(separator: "=", maxSplits: 1).map(String.init) }
    require(pairs.map { $0[0] } == order, "keys once each, in first-seen order")
    for pair in pairs {
        if lines.count > 1 { require(Int(pair[1]) == sums[pair[0]], "counters add up, at most to Int's ends") }
    }
}

// MARK: Settings

/// The settings' text as exported variables, which must parse back to themselves.
func exported(_ options: StackOptions) -> [String] {
    options.environmentVariables.map { "\($0.name)=\($0.value)" }
}

func requireRoundTrip(_ options: StackOptions) {
    let first = exported(options)
    var environment: [String: String] = [:]
    for (name, value) in options.environmentVariables { environment[name] = value }
    guard let again = try? StackOptions.fromEnvironment(environment) else {
        require(false, "exported settings parse")
        return
    }
    require(exported(again) == first, "exported settings parse back to themselves")
}

let settingValues: [String: [String]] = [
    "MTCP_ADDR": ["10.0.0.2/24", "fd00::2/64", "10.0.0.2/24,fd00::2/64", "10.1.2.3", "::ffff:10.0.0.1/8"],
    "MTCP_GATEWAY": ["10.0.0.1", "fe80::1", "10.0.0.1,fe80::1"],
    "MTCP_IFACE": ["veth0", "eth0"],
    "MTCP_IMPAIR": ["loss=0.02,dup=0.01,reorder=0.05,corrupt=0.001,delay-us=100,seed=7", "loss=0.5"],
    "MTCP_DPDK_ARGS": ["--no-huge --vdev=net_af_packet0,iface=veth0", "-l \"0 1\" ''"],
    "MTCP_CORES": ["1", "4", "64"],
    "MTCP_LOG": ["debug", "2"],
    "MTCP_BACKEND": ["tap", "dpdk", "afpacket"],
    "MTCP_STEERING": ["claims", "kernel"],
]

func settingValue(_ key: String, _ r: inout Reader) -> String {
    if r.byte() & 1 == 0, let common = settingValues[key] { return common[Int(r.byte()) % common.count] }
    return r.text(48)
}

func fuzzEnvironment(_ r: inout Reader) {
    var environment: [String: String] = [:]
    for _ in 0..<Int(r.byte() % 12) {
        let key = ConfigFile.keys[Int(r.byte()) % ConfigFile.keys.count]
        environment[key] = settingValue(key, &r)
    }
    guard let options = try? StackOptions.fromEnvironment(environment) else { return }
    requireRoundTrip(options)
}

func fuzzConfigFile(_ r: inout Reader) {
    let text = String(decoding: r.take(4096), as: UTF8.self)
    guard let file = try? ConfigFile(text: text, path: "fuzz") else { return }
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
    var previous = 0
    var environment: [String: String] = [:]
    for setting in file.settings {
        require(ConfigFile.keys.contains(setting.key), "a known key")
        require(!setting.value.isEmpty, "a value")
        require(setting.line > previous && setting.line <= lines, "lines in order, within the file")
        previous = setting.line
        environment[setting.key] = setting.value
    }
    guard let options = try? StackOptions.fromEnvironment(environment) else { return }
    requireRoundTrip(options)
}

func fuzzMTCPSettings(_ r: inout Reader) {
    let text = String(decoding: r.take(4096), as: UTF8.self)
    guard let settings = try? MTCPSettings(text: text, path: "fuzz") else { return }
    require((1...64).contains(settings.numCores), "num_cores in range")
    require(settings.receiveBuffer >= 2048 && settings.sendBuffer >= 2048, "buffers in range")
    require(!settings.options.interface.isEmpty && settings.options.hasAddress, "port and addr given")
    require(settings.options.tcp.receiveBufferSize == settings.receiveBuffer, "rcvbuf reaches TCP")
    require(settings.options.cores == settings.numCores, "num_cores reaches the options")
}

func fuzzSpecs(_ r: inout Reader) {
    let text = r.text(96)
    if let spec = try? ImpairmentSpec(parsing: text) {
        for p in [spec.loss, spec.duplicate, spec.reorder, spec.corrupt] {
            require(p >= 0 && p < 1, "probabilities in [0, 1)")
        }
        require((try? ImpairmentSpec(parsing: spec.text)) == spec, "an impairment prints as text that parses back")
    }
    let arguments = DPDKConfiguration.split(text)
    require(arguments.allSatisfy { !$0.contains("\"") }, "quotes group, they are not kept")
    let quoted = arguments.map { DPDKConfiguration.needsQuotes($0) ? "\"\($0)\"" : $0 }
    require(DPDKConfiguration.split(quoted.joined(separator: " ")) == arguments, "arguments split back")
}

// MARK: Socket addresses

func fuzzSocketAddresses(_ r: inout Reader) {
    while !r.done {
        // The caller's length, and the bytes it points at (no more than it says, up to 40).
        let length = r.pick([0, 1, 15, 16, 17, 23, 24, 27, 28, 128]) { socklen_t($0.long()) }
        let count = Int(min(length, 40))
        let given = r.take(count)
        let content = Exact(given + [UInt8](repeating: 0, count: count - given.count))
        let inet6 = r.byte() & 1 == 1
        let pointer = content.buffer.baseAddress.map { UnsafePointer($0.assumingMemoryBound(to: sockaddr.self)) }
        let bytes = content.bytes
        if inet6 {
            guard let (address, port) = try? Inet6SocketAddress.read(pointer, length) else { continue }
            require(length >= 24 && bytes[0] == UInt8(AF_INET6) && bytes[1] == 0, "an AF_INET6 address of 24 bytes")
            require(port == UInt16(bytes[2]) << 8 | UInt16(bytes[3]), "the port in network order")
            writeBack(address, port, inet6: true, &r)
        } else {
            guard let (address, port) = try? InetSocketAddress.read(pointer, length) else { continue }
            require(length >= 16 && bytes[0] == UInt8(AF_INET) && bytes[1] == 0, "an AF_INET address of 16 bytes")
            require(port == UInt16(bytes[2]) << 8 | UInt16(bytes[3]), "the port in network order")
            let raw = UInt32(bytes[4]) << 24 | UInt32(bytes[5]) << 16 | UInt32(bytes[6]) << 8 | UInt32(bytes[7])
            require(address.rawValue == raw, "the address in network order")
            writeBack(IPAddress(address), port, inet6: false, &r)
        }
    }
}

/// Writes an address out at a caller's length: cut to that length, which then says the whole
/// size; read back whole, it is what was written (IPv4's any address as `::` for AF_INET6).
func writeBack(_ address: IPAddress, _ port: UInt16, inet6: Bool, _ r: inout Reader) {
    let full = inet6 ? 28 : 16
    let room = Int(r.byte() % 40)
    let out = Exact(zeros: room)
    let whole = Exact(zeros: full)
    var length = socklen_t(room)
    var wholeLength = socklen_t(full)
    let target = out.buffer.baseAddress?.assumingMemoryBound(to: sockaddr.self)
    let wholeTarget = whole.buffer.baseAddress!.assumingMemoryBound(to: sockaddr.self)
    if inet6 {
        try? Inet6SocketAddress.write(address, port, target, &length)
        try? Inet6SocketAddress.write(address, port, wholeTarget, &wholeLength)
    } else {
        try? InetSocketAddress.write(address.ipv4!, port, target, &length)
        try? InetSocketAddress.write(address.ipv4!, port, wholeTarget, &wholeLength)
    }
    guard target != nil else { return }
    require(Int(length) == full && Int(wholeLength) == full, "the length says the whole size")
    require(out.bytes.prefix(full) == whole.bytes.prefix(room), "cut to the caller's length")
    require(out.bytes.dropFirst(full).allSatisfy { $0 == 0 }, "nothing written past the address")
    if inet6 {
        let back = try? Inet6SocketAddress.read(UnsafePointer(wholeTarget), wholeLength)
        let shown = address == IPAddress(IPv4Address.any) ? IPAddress.unspecified : address
        require(back?.0 == shown && back?.1 == port, "an AF_INET6 address reads back")
    } else {
        let back = try? InetSocketAddress.read(UnsafePointer(wholeTarget), wholeLength)
        require(back?.0 == address.ipv4 && back?.1 == port, "an AF_INET address reads back")
    }
}

// MARK: iovec arrays

func fuzzVectors(_ r: inout Reader) {
    // Real buffers, each its own allocation: a pass moves bytes from a stream in order,
    // after `skip`, stopping at the first short move; a buffer the pass did not reach (and
    // the skipped part) keeps its fill.
    let buffers = (0..<Int(r.byte() % 6)).map { _ -> Exact? in
        r.byte() % 8 == 0 ? nil : Exact([UInt8](repeating: 0xEE, count: Int(r.byte() % 32)))
    }
    var iov = buffers.map { buffer in
        iovec(iov_base: buffer?.buffer.baseAddress, iov_len: buffer?.buffer.count ?? Int(r.byte() % 8))
    }
    let skip = Int(r.byte() % 64)
    let once = r.byte() & 1 == 1
    let limits = (0..<8).map { _ in Int(r.byte() % 40) }
    let failAt = Int(r.byte() % 10)
    struct Failed: Error {}
    var calls = 0
    var stream: [UInt8] = []
    let (total, error) = IOVector.eachBuffer(&iov, iov.count, skip: skip, once: once) { (buffer) throws(Failed) in
        defer { calls += 1 }
        if calls == failAt { throw Failed() }
        let n = min(buffer.count, limits[calls % limits.count])
        for k in 0..<n {
            buffer[k] = UInt8(truncatingIfNeeded: stream.count)
            stream.append(UInt8(truncatingIfNeeded: stream.count))
        }
        return n
    }
    require(total == stream.count, "the total is what moved")
    require(error == nil || total == 0, "an error counts only when nothing moved")
    require(!once || calls <= 1, "once: one buffer at most")
    // The bytes of the buffers after `skip`, and before it: the stream, then the fill.
    var seen: [UInt8] = []
    var before = 0
    for (buffer, vector) in zip(buffers, iov) {
        guard let buffer else {
            before += vector.iov_len
            continue
        }
        for byte in buffer.bytes {
            if before < skip {
                require(byte == 0xEE, "skipped bytes stay")
                before += 1
            } else {
                seen.append(byte)
            }
        }
    }
    require(Array(seen.prefix(stream.count)) == stream, "the stream lands in order after the skip")
    require(seen.dropFirst(stream.count).allSatisfy { $0 == 0xEE }, "nothing lands past what moved")
}

// MARK: The kernel's argument rules (KernelArguments)

/// A pointer as a program may hand it: NULL, the first page, a real one, the end of user
/// space, the kernel half, or any bits.
func pointer(_ r: inout Reader, real: UnsafeRawPointer?) -> UnsafeRawPointer? {
    let bits: UInt
    switch r.byte() % 7 {
    case 0: return nil
    case 1: bits = UInt(r.word() % 4096)
    case 2: return real
    case 3: bits = UserMemory.end &- UInt(r.word())
    case 4: bits = UserMemory.end &+ UInt(r.word())
    case 5: bits = UInt.max &- UInt(r.word())
    default: bits = UInt(r.quad())
    }
    return UnsafeRawPointer(bitPattern: bits)
}

func length(_ r: inout Reader) -> UInt {
    r.pick([
        0, 1, 16, 4096, UInt(UserMemory.transferLimit), UInt(UserMemory.transferLimit) + 1, UInt(Int.max), UInt.max,
    ]) { UInt($0.quad()) }
}

/// access_ok and the library's own faulting rule, then read and write's transfer checks.
func fuzzUserMemory(_ r: inout Reader) {
    let real = Exact(zeros: 64)
    while !r.done {
        let base = pointer(&r, real: real.buffer.baseAddress)
        let count = length(&r)
        let inSpace = UserMemory.inUserSpace(base, count)
        let (end, overflow) = UInt(bitPattern: base).addingReportingOverflow(count)
        require(inSpace == (!overflow && end <= UserMemory.end), "access_ok: the range ends in user space")
        require(UserMemory.usable(base, count) == (inSpace && (count == 0 || !UserMemory.faults(base))), "usable")
        if UserMemory.usable(base, count), count > 0 {
            require(UserMemory.usable(base, count / 2), "a part of a usable range is usable")
        }
        for (transfer, checked) in [
            (Transfer.whole(base, count), count),
            (Transfer.single(base, count), min(count, UInt(UserMemory.transferLimit))),
        ] {
            switch transfer {
            case .fail(let error):
                require(error == KernelError(EFAULT) && !UserMemory.inUserSpace(base, checked), "EFAULT off user space")
            case .move(let n, let faults):
                require(UserMemory.inUserSpace(base, checked), "a transfer in user space")
                require(n == Int(min(count, UInt(UserMemory.transferLimit))), "cut to MAX_RW_COUNT")
                require(faults == (n > 0 && UserMemory.faults(base)), "faults when a touch would")
            }
        }
    }
}

/// readv and writev's iovec arrays: the array itself is real (exactly its count), the
/// buffers it names any pointers and lengths.
func fuzzTransferVectors(_ r: inout Reader) {
    let count = r.pick([0, 1, 2, 5, 1024, 1025]) { Int($0.word()) }
    let entries = min(count, 8)
    let array = UnsafeMutablePointer<iovec>.allocate(capacity: max(entries, 1))
    defer { array.deallocate() }
    let scratch = Exact(zeros: 64)
    var lengths: [Int] = []
    for k in 0..<entries {
        let base = pointer(&r, real: scratch.buffer.baseAddress)
        let n = Int(bitPattern: length(&r))
        array[k] = iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: n)
        lengths.append(n)
    }
    // Past 8 entries the array is not there: a count the library must refuse before reading.
    let tooMany = r.flag() ? EMSGSIZE : EINVAL
    let given: UnsafePointer<iovec>? = r.byte() % 8 == 0 ? nil : UnsafePointer(array)
    guard count <= entries || count > UserMemory.vectorLimit else { return }
    let transfer = Transfer.vector(given, UInt(count), tooMany: tooMany)
    if count > UserMemory.vectorLimit {
        require(transfer == .fail(KernelError(tooMany)), "more than IOV_MAX buffers")
        return
    }
    if count == 0 {
        require(transfer == .move(length: 0, faults: false), "no buffers move nothing")
        return
    }
    guard given != nil else {
        require(transfer == .fail(KernelError(EFAULT)), "an array that is not there")
        return
    }
    if lengths.contains(where: { $0 < 0 }) {
        require(transfer == .fail(KernelError(EINVAL)), "a negative length")
        return
    }
    let inSpace = (0..<entries).allSatisfy { UserMemory.inUserSpace(array[$0].iov_base, UInt(array[$0].iov_len)) }
    switch transfer {
    case .fail(let error):
        require(error == KernelError(EFAULT) && (!inSpace || count == 1), "EFAULT for a buffer off user space")
    case .move(let n, _):
        require(inSpace || count == 1, "every buffer in user space")
        // Below the limit each, a few lengths cannot overflow.
        let limit = UserMemory.transferLimit
        let total = lengths.contains { $0 >= limit } ? limit : min(lengths.reduce(0, +), limit)
        require(n == total, "the lengths add up, to MAX_RW_COUNT at most")
    }
}

/// Addresses in and out (move_addr_to_kernel, move_addr_to_user).
func fuzzAddressCopies(_ r: inout Reader) {
    let real = Exact(zeros: 128)
    while !r.done {
        let address = pointer(&r, real: real.buffer.baseAddress)
        let given = socklen_t(truncatingIfNeeded: length(&r))
        if SocketAddressCopy.inbound(address, given) == nil {
            require(Int(given) <= SocketAddressCopy.storageSize && UserMemory.usable(address, UInt(given)), "inbound")
        }
        let size = Int(r.byte() % 140)
        let room = UnsafeMutablePointer<socklen_t>.allocate(capacity: 1)
        defer { room.deallocate() }
        room.pointee = socklen_t(truncatingIfNeeded: length(&r))
        let lengthPointer = r.byte() % 8 == 0 ? nil : room
        switch SocketAddressCopy.outbound(UnsafeMutableRawPointer(mutating: address), lengthPointer, size: size) {
        case .success(let n):
            require(lengthPointer != nil && n >= 0 && n == min(Int(Int32(bitPattern: room.pointee)), size), "room")
            require(UserMemory.usable(address, UInt(n)), "written where it may be")
        case .failure(let error):
            require(error == KernelError(EFAULT) || error == KernelError(EINVAL), "EFAULT or EINVAL")
        }
    }
}

/// sendmsg's control messages, read in place: the bytes are exactly `length` long.
func fuzzControlMessages(_ r: inout Reader) {
    var bytes = r.take(Int(r.word() % 256))
    // Headers with plausible lengths now and then (the fuzzer's own are mostly huge).
    var offset = 0
    while offset + 16 <= bytes.count && r.flag() {
        let length = Int(r.byte() % 40)
        withUnsafeBytes(of: length) { for (k, b) in $0.enumerated() { bytes[offset + k] = b } }
        if r.flag() { withUnsafeBytes(of: SOL_SOCKET) { for (k, b) in $0.enumerated() { bytes[offset + 8 + k] = b } } }
        offset += max(16, (length + 7) & ~7)
    }
    let control = Exact(bytes)
    let claimed = r.byte() % 8 == 0 ? Int(bitPattern: UInt(r.quad())) : bytes.count
    guard claimed <= bytes.count || claimed > Int(Int32.max) || claimed < 0 else { return }
    let found = ControlMessages.check(control.buffer.baseAddress, claimed)
    if claimed < 0 || claimed > Int(Int32.max) {
        require(found.error == KernelError(ENOBUFS), "past INT_MAX bytes")
    }
    if found.error != nil { require(!found.socketLevel, "no level reported with an error") }
}

/// select's timeval and a timespec: refused when negative, else a wait that stays positive.
func fuzzWaitTimeouts(_ r: inout Reader) {
    while !r.done {
        let seconds = r.pick([0, 1, -1, 9_223_372_036, Int.max, Int.min]) { Int(bitPattern: UInt($0.quad())) }
        let fraction = r.pick([0, 999_999, 1_000_000, 999_999_999, 1_000_000_000, -1]) {
            Int(bitPattern: UInt($0.quad()))
        }
        switch WaitTimeout.select(seconds: seconds, microseconds: fraction) {
        case .success(let ns): require(ns >= 0 && seconds >= 0 && fraction >= 0, "a select wait is not negative")
        case .failure: require(seconds < 0 || fraction < 0, "select refuses negatives only")
        }
        switch WaitTimeout.timespec(seconds: seconds, nanoseconds: fraction) {
        case .success(let ns):
            require(ns >= 0 && seconds >= 0 && (0..<1_000_000_000).contains(fraction), "a timespec wait")
        case .failure: require(seconds < 0 || !(0..<1_000_000_000).contains(fraction), "timespec refusals")
        }
    }
}

// MARK: Socket options and epoll through a stack socket

final class OneStack {
    let clock: Instant = Instant(nanoseconds: 1_000_000_000)
    let link = MemoryLink(capacity: 16)
    let stack: NetworkStack<MemoryPort>

    init() {
        var tcp = TCPConfiguration()
        tcp.receiveBufferSize = 8192
        tcp.sendBufferSize = 8192
        var configuration = StackConfiguration(address: IPv4Address(10, 0, 0, 1), prefixLength: 24, tcp: tcp)
        configuration.pendingPoolSize = 4
        configuration.ipv6 = IPv6Interface(address: IPAddress("fd00::1")!)
        let now = clock
        stack = NetworkStack(io: link.a, configuration: configuration, secret: (1, 2), clock: { now })
        stack.log = { _ in }
    }

    /// A fresh socket, a bound one and a listener (IPv4 and IPv6 by turns).
    func sockets() -> [Int32] {
        var ids: [Int32] = []
        for k in 0..<3 {
            guard let id = try? stack.socket(inet6: k == 1) else { continue }
            ids.append(id)
            if k > 0 { try? stack.bind(id, address: .wildcard(ipv6: k == 1), port: UInt16(8000 + k)) }
            if k == 2 { try? stack.listen(id, backlog: 8) }
        }
        return ids
    }
}

typealias C = SocketConstant

/// What a set option reads back as, when it is an int option the stack keeps as given.
func expectedInt(level: Int32, name: Int32, set value: Int32) -> Int32? {
    switch (level, name) {
    case (C.SOL_SOCKET, C.SO_REUSEADDR), (C.SOL_SOCKET, C.SO_REUSEPORT), (C.SOL_SOCKET, C.SO_KEEPALIVE),
        (C.IPPROTO_TCP, C.TCP_NODELAY), (C.IPPROTO_TCP, C.TCP_CORK):
        return value != 0 ? 1 : 0
    case (C.IPPROTO_TCP, C.TCP_KEEPIDLE), (C.IPPROTO_TCP, C.TCP_KEEPINTVL), (C.IPPROTO_TCP, C.TCP_KEEPCNT):
        return value
    case (C.SOL_SOCKET, C.SO_RCVBUF), (C.SOL_SOCKET, C.SO_SNDBUF):
        // Linux reports twice the request.
        return Int32(clamping: Int(max(value, 0)) * 2)
    default:
        return nil
    }
}

/// setsockopt and getsockopt as the hooks take them: the kernel's rules on the length and the
/// pointer first, the option's own size copied, a timeout read as sock_set_timeout reads it,
/// then the stack's socket; getsockopt's answer cut to the caller's room.
func fuzzSocketOptions(_ r: inout Reader) {
    let host = OneStack()
    let ids = host.sockets()
    let levels: [Int32] = [C.SOL_SOCKET, C.IPPROTO_TCP]
    let names: [Int32] = [2, 3, 4, 7, 8, 9, 13, 15, 20, 21, 30, 38, 39, 56, 1, 3, 4, 5, 6, 11, 13]
    var steps = 0
    while !r.done && steps < 64 {
        steps += 1
        let id = r.byte() % 8 == 0 ? Int32(r.byte()) : ids[Int(r.byte()) % ids.count]
        let level = r.pick(levels) { Int32(bitPattern: $0.long()) }
        let name = r.pick(names) { Int32(bitPattern: $0.long()) }
        let given = Exact(r.take(Int(r.byte() % 24)))
        let length = r.pick([socklen_t(given.raw.count), 0, 4, 16, socklen_t.max]) { socklen_t($0.long()) }
        let value = r.byte() % 8 == 0 ? nil : UnsafeRawPointer(given.buffer.baseAddress)
        if r.byte() & 1 == 0 {
            guard SocketOptionRules.set(level: level, name: name, value: value, length: length) == nil else { continue }
            let size = SocketOptionRules.valueSize(level: level, name: name, length: length)
            require(size <= Int(min(length, 1 << 16)) && size <= 16, "an option's own size, no more than given")
            guard let value, size <= given.raw.count else { continue }
            var bytes = Array(UnsafeRawBufferPointer(start: value, count: size))
            var timeout = SocketOptionRules.Timeout.none
            let isTimeout = level == C.SOL_SOCKET && (name == C.SO_RCVTIMEO || name == C.SO_SNDTIMEO)
            if isTimeout {
                guard case .success(let asked) = bytes.withUnsafeBytes({ SocketOptionRules.timeout($0) }) else {
                    continue
                }
                timeout = asked
                bytes = []
                withUnsafeBytes(of: (asked.shown.seconds, asked.shown.microseconds)) { bytes += $0 }
                require(timeout.nanoseconds >= 0, "a socket's wait is not negative")
            }
            let set = Exact(bytes)
            guard (try? host.stack.setsockopt(id, level: level, name: name, value: set.raw)) != nil else { continue }
            let room = Int(r.byte() % 24)
            let answer = Exact(zeros: room)
            let got = try? host.stack.getsockopt(id, level: level, name: name, into: answer.buffer)
            let needs: Int
            switch (level, name) {
            case (C.SOL_SOCKET, C.SO_LINGER): needs = 8
            case (C.SOL_SOCKET, C.SO_RCVTIMEO), (C.SOL_SOCKET, C.SO_SNDTIMEO): needs = 16
            default: needs = 4
            }
            if level == C.IPPROTO_TCP && name == C.TCP_CONGESTION {
                require(room == 0 || got != nil, "a congestion algorithm set reads back")
            } else {
                require((got != nil) == (room >= needs), "an option set reads back when there is room")
            }
            guard let n = got else { continue }
            require(n <= room, "getsockopt writes within the caller's room")
            if set.raw.count >= 4,
                let expected = expectedInt(level: level, name: name, set: set.raw.loadUnaligned(as: Int32.self))
            {
                require(answer.raw.loadUnaligned(as: Int32.self) == expected, "an int option reads back")
            }
            if isTimeout {
                // The stack's timeout (0 s 0 us: none) and the library's, what it waits with.
                let seconds = answer.raw.loadUnaligned(as: Int64.self)
                let micros = answer.raw.loadUnaligned(fromByteOffset: 8, as: Int64.self)
                require(seconds >= 0 && (0..<1_000_000).contains(micros), "a timeval reads back")
                if seconds == 0 && micros == 0 {
                    require([0, 1, Int64.max].contains(timeout.nanoseconds), "none, at once, or too long to tell")
                } else {
                    require(seconds &* 1_000_000_000 &+ micros &* 1_000 == timeout.nanoseconds, "one timeout")
                }
            }
        } else {
            var room = socklen_t(r.byte() % 24)
            if r.byte() % 8 == 0 { room = socklen_t(bitPattern: Int32(Int8(bitPattern: r.byte()))) }
            let answer = Exact(zeros: Int(min(room, 24)))
            guard SocketOptionRules.get(level: level, length: &room, inet6: false) == nil else { continue }
            require(Int32(bitPattern: room) >= 0, "a negative length is refused")
            guard let n = try? host.stack.getsockopt(id, level: level, name: name, into: answer.buffer) else {
                continue
            }
            require(n <= answer.raw.count, "getsockopt writes within the caller's room")
        }
    }
    var flag = Int32(bitPattern: r.long())
    for id in ids {
        let request = r.pick([C.FIONREAD, C.FIONBIO]) { UInt($0.long()) }
        if (try? host.stack.ioctl(id, request: request, &flag)) != nil, request == C.FIONREAD {
            require(flag >= 0, "FIONREAD is a count")
        }
    }
}

/// epoll_ctl as the library hands it on: an op that may be no operation, any events but
/// EPOLLEXCLUSIVE, any data, any set and socket; the model says which calls succeed and what
/// a wait may report.
func fuzzEpoll(_ r: inout Reader) {
    let host = OneStack()
    var ids = host.sockets()
    var sets: [Int32: [Int32: (events: UInt32, data: UInt64)]] = [:]
    for _ in 0..<2 { sets[host.stack.epollCreate()] = [:] }
    var steps = 0
    while !r.done && steps < 128 {
        steps += 1
        switch r.byte() % 8 {
        case 0:
            // A socket closed leaves every set.
            guard !ids.isEmpty else { continue }
            let id = ids.remove(at: Int(r.byte()) % ids.count)
            try? host.stack.close(id)
            for e in sets.keys { sets[e]![id] = nil }
        case 1:
            if let id = try? host.stack.socket(inet6: r.byte() & 1 == 1) {
                require(!ids.contains(id), "a new socket is not an open one")
                ids.append(id)
                for e in sets.keys { require(sets[e]![id] == nil, "a new socket is in no set") }
            }
        case 2:
            if r.byte() & 1 == 0 {
                let e = host.stack.epollCreate()
                require(sets[e] == nil, "a new set is not an open one")
                sets[e] = [:]
            } else if let e = sets.keys.sorted().first {
                try? host.stack.epollClose(e)
                sets[e] = nil
            }
        default:
            let open = sets.keys.sorted()
            let epfd = r.byte() % 4 == 0 || open.isEmpty ? Int32(r.byte() % 8) - 1 : open[Int(r.byte()) % open.count]
            let socket = r.byte() % 4 == 0 || ids.isEmpty ? Int32(r.byte() % 12) - 1 : ids[Int(r.byte()) % ids.count]
            let op = r.pick([Int32(1), 2, 3]) { Int32(bitPattern: $0.long()) }
            var events = r.long()
            if r.byte() % 4 != 0 { events &= ~EpollFlags.EPOLLEXCLUSIVE }
            var data = r.quad()
            guard let operation = EpollOperation(rawValue: op) else {
                require(![1, 2, 3].contains(op), "epoll_ctl's three operations")
                continue
            }
            // DEL reads no event.
            if operation == .delete { (events, data) = (0, 0) }
            var failure: Errno?
            do throws(Errno) {
                try host.stack.epollControl(epfd, op: operation, socket: socket, events: events, data: data)
            } catch {
                failure = error
            }
            // Linux's order: the descriptors, EPOLLEXCLUSIVE's rules (ADD only, a few bits with
            // it), then the registration (and one made exclusive cannot be modified).
            let exclusive = EpollFlags.EPOLLEXCLUSIVE
            let withExclusive =
                EpollFlags.EPOLLIN | EpollFlags.EPOLLOUT | EpollFlags.EPOLLERR | EpollFlags.EPOLLHUP | 1 << 29
                | EpollFlags.EPOLLET | exclusive
            let expected: Errno?
            if sets[epfd] == nil || !ids.contains(socket) {
                expected = .EBADF
            } else if events & exclusive != 0 && (operation == .modify || events & ~withExclusive != 0) {
                expected = .EINVAL
            } else {
                let registered = sets[epfd]![socket]
                switch operation {
                case .add: expected = registered != nil ? .EEXIST : nil
                case .delete: expected = registered != nil ? nil : .ENOENT
                case .modify:
                    expected = registered == nil ? .ENOENT : registered!.events & exclusive != 0 ? .EINVAL : nil
                }
            }
            require(failure == expected, "epoll_ctl succeeds or fails as the registrations say")
            if expected == nil { sets[epfd]![socket] = operation == .delete ? nil : (events, data) }
        }
        for (e, registered) in sets {
            let room = Int(r.byte() % 6) + 1
            var events = [EpollEvent](repeating: EpollEvent(), count: room)
            let n = events.withUnsafeMutableBufferPointer { (try? host.stack.epollReady(e, into: $0)) ?? -1 }
            require(n >= 0 && n <= room, "a wait reports within its room")
            var reported: [UInt64: Int] = [:]
            for event in events.prefix(max(n, 0)) {
                require(
                    registered.contains {
                        $0.value.data == event.data
                            && event.events & ~($0.value.events | EpollFlags.EPOLLERR | EpollFlags.EPOLLHUP) == 0
                    }, "a wait reports what was asked for, errors and hang-ups")
                reported[event.data, default: 0] += 1
            }
            for (data, count) in reported {
                require(count <= registered.values.filter { $0.data == data }.count, "a socket once per wait")
            }
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPreload(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    var r = Reader(bytes: UnsafeRawBufferPointer(start: data, count: size))
    switch r.byte() % 18 {
    case 0, 1: fuzzDescriptors(&r)
    case 2: fuzzEntries(&r)
    case 3: fuzzRecords(&r)
    case 4: fuzzCounterLines(&r)
    case 5: fuzzEnvironment(&r)
    case 6: fuzzConfigFile(&r)
    case 7: fuzzMTCPSettings(&r)
    case 8: fuzzSpecs(&r)
    case 9: fuzzSocketAddresses(&r)
    case 10: fuzzVectors(&r)
    case 11: fuzzSocketOptions(&r)
    case 12: fuzzEpoll(&r)
    case 13: fuzzUserMemory(&r)
    case 14: fuzzTransferVectors(&r)
    case 15: fuzzAddressCopies(&r)
    case 16: fuzzControlMessages(&r)
    default: fuzzWaitTimeouts(&r)
    }
    return 0
}
