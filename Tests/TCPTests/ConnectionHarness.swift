import TCP
import Testing
import Wire

// A small harness for driving `TCPConnection` in tests: terse segment building, recording of
// emitted segments (payloads copied), a fake clock, and two connections wired back to back.

/// Our ISN in scripted tests.
let localISS: UInt32 = 1000
/// The scripted peer's ISN.
let peerISS: UInt32 = 5000

/// A segment with its payload held in an array: what tests build and what connections emit.
struct Seg: Equatable, CustomStringConvertible {
    var seq: SequenceNumber
    var ack: SequenceNumber
    var flags: TCPFlags
    var window: UInt16
    var options: TCPOptions
    var payload: [UInt8]

    /// Copies a segment a connection handed to its sink (its views die after the call).
    init(copying segment: TCPSegment) {
        seq = segment.sequenceNumber
        ack = segment.acknowledgmentNumber
        flags = segment.flags
        window = segment.window
        options = segment.options
        payload = Array(segment.payload) + Array(segment.payloadTail)
    }

    init(
        seq: SequenceNumber, ack: SequenceNumber, flags: TCPFlags, window: UInt16, options: TCPOptions, payload: [UInt8]
    ) {
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.options = options
        self.payload = payload
    }

    /// SEG.LEN.
    var sequenceLength: Int {
        payload.count + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0)
    }
    /// The sequence number just past this segment.
    var end: SequenceNumber { seq + sequenceLength }
    var isPureAck: Bool { flags == .ack && payload.isEmpty }

    /// Runs `body` with a `TCPSegment` whose payload view stays valid for the call.
    func withSegment<R>(_ body: (TCPSegment) -> R) -> R {
        payload.withUnsafeBytes { bytes in
            body(
                TCPSegment(
                    sequenceNumber: seq, acknowledgmentNumber: ack, flags: flags, window: window, options: options,
                    payload: bytes))
        }
    }

    var description: String {
        "<\(flags) seq=\(seq) ack=\(ack) win=\(window) len=\(payload.count)>"
    }
}

/// Builds a segment tersely; the default is a pure ACK with a 65535 window.
func seg(
    seq: UInt32, ack: UInt32 = 0, flags: TCPFlags = .ack, window: UInt16 = 65535, payload: [UInt8] = [],
    options: TCPOptions = TCPOptions()
) -> Seg {
    Seg(
        seq: SequenceNumber(seq), ack: SequenceNumber(ack), flags: flags, window: window, options: options,
        payload: payload)
}

/// SYN options as a peer would send them.
func synOptions(mss: UInt16? = 1000, windowScale: UInt8? = nil, sack: Bool = false, timestamp: UInt32? = nil)
    -> TCPOptions
{
    var options = TCPOptions()
    options.maximumSegmentSize = mss
    options.windowScale = windowScale
    options.sackPermitted = sack
    if let timestamp { options.timestamp = TCPTimestampOption(value: timestamp, echoReply: 0) }
    return options
}

/// Deterministic test bytes.
func testBytes(_ count: Int, seed: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8 &+ seed) }
}

/// A sink that keeps copies of everything sent.
struct SegmentRecorder: TCPSegmentSink {
    var segments: [Seg] = []
    mutating func send(_ segment: TCPSegment) { segments.append(Seg(copying: segment)) }
}

extension TCPConnection {
    mutating func handle(_ s: Seg, now: Instant) {
        s.withSegment { handle($0, now: now) }
    }

    mutating func pollRecording(now: Instant) -> [Seg] {
        var recorder = SegmentRecorder()
        poll(now: now, into: &recorder)
        return recorder.segments
    }

    /// Writes as many of `bytes` as fit; returns the result of the call.
    mutating func write(_ bytes: [UInt8], now: Instant) -> TCPWriteResult {
        bytes.withUnsafeBytes { write($0, now: now) }
    }

    /// Reads everything readable now.
    mutating func readAll(now: Instant) -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let result = buffer.withUnsafeMutableBytes { read(into: $0, now: now) }
            guard case .bytes(let n) = result, n > 0 else { return out }
            out += buffer[0..<n]
        }
    }
}

/// One connection under test, a scripted peer (the test), and a fake clock.
final class ConnectionHarness {
    var connection: TCPConnection
    var now: Instant

    init(_ connection: TCPConnection, now: Instant = .zero) {
        self.connection = connection
        self.now = now
    }

    deinit { connection.deallocate() }

    /// An active open in SYN-SENT; the SYN goes out at the first `poll`.
    static func active(_ config: TCPConfiguration = TCPConfiguration(), iss: UInt32 = localISS) -> ConnectionHarness {
        ConnectionHarness(TCPConnection(connectingWith: config, initialSequence: SequenceNumber(iss), now: .zero))
    }

    /// A passive open from the peer's SYN, in SYN-RECEIVED.
    static func passive(
        _ config: TCPConfiguration = TCPConfiguration(), peerOptions: TCPOptions = synOptions(),
        peerWindow: UInt16 = 65535
    ) throws -> ConnectionHarness {
        let syn = seg(seq: peerISS, flags: .syn, window: peerWindow, options: peerOptions)
        let connection = syn.withSegment {
            TCPConnection(
                acceptingSYN: $0, configuration: config, initialSequence: SequenceNumber(localISS), now: .zero)
        }
        return ConnectionHarness(try #require(connection))
    }

    /// An active open completed by a scripted SYN-ACK that arrives `rtt` after the SYN.
    /// Without options the peer negotiates nothing, and its MSS of 1000 makes the send MSS 1000.
    static func established(
        _ config: TCPConfiguration = TCPConfiguration(), peerOptions: TCPOptions = synOptions(),
        peerWindow: UInt16 = 65535, rtt: Interval = .milliseconds(100)
    ) throws -> ConnectionHarness {
        let h = active(config)
        let syn = h.poll()
        try #require(syn.count == 1)
        h.advance(by: rtt)
        var options = peerOptions
        if options.timestamp != nil, let ours = syn[0].options.timestamp {
            options.timestamp?.echoReply = ours.value
        }
        let out = h.deliver(
            seg(seq: peerISS, ack: localISS + 1, flags: [.syn, .ack], window: peerWindow, options: options))
        try #require(h.connection.state == .established)
        try #require(out.count == 1 && out[0].isPureAck)
        _ = h.connection.takeEvents()
        return h
    }

    var state: TCPState { connection.state }

    func advance(by interval: Interval) { now = now + interval }

    func poll() -> [Seg] { connection.pollRecording(now: now) }

    /// Hands a segment to the connection without polling.
    func receive(_ s: Seg) { connection.handle(s, now: now) }

    /// Hands a segment to the connection and returns what it sends in answer.
    func deliver(_ s: Seg) -> [Seg] {
        receive(s)
        return poll()
    }

    /// Moves the clock to the connection's next deadline and polls.
    func fireNextDeadline() -> [Seg] {
        let deadline = connection.nextDeadline
        if deadline != .never && deadline > now { now = deadline }
        return poll()
    }

    @discardableResult
    func write(_ bytes: [UInt8]) -> TCPWriteResult { connection.write(bytes, now: now) }

    func readAll() -> [UInt8] { connection.readAll(now: now) }

    func read(max count: Int) -> (TCPReadResult, [UInt8]) {
        var buffer = [UInt8](repeating: 0, count: count)
        let result = buffer.withUnsafeMutableBytes { connection.read(into: $0, now: now) }
        if case .bytes(let n) = result { return (result, Array(buffer[0..<n])) }
        return (result, [])
    }

    /// The payload bytes of data segments in `segments`, in order.
    static func dataBytes(_ segments: [Seg]) -> Int { segments.reduce(0) { $0 + $1.payload.count } }
}

/// Two real connections wired back to back on a fake clock with a zero-delay link.
/// Segments are numbered in the order they are emitted (from 0, the client's SYN); chosen
/// indices can be dropped, or delayed until everything else in flight has been delivered.
final class ConnectionPair {
    enum Side: CustomStringConvertible {
        case a, b
        var other: Side { self == .a ? .b : .a }
        var description: String { self == .a ? "a" : "b" }
    }

    var a: TCPConnection
    var b: TCPConnection
    var now: Instant = .zero
    /// Every segment emitted, in order: (index, sender, segment).
    var log: [(index: Int, from: Side, segment: Seg)] = []
    var dropIndices: Set<Int> = []
    var delayIndices: Set<Int> = []
    /// Drops every segment the given side emits while set (a vanished peer).
    var blackhole: Side?
    private var held: [(to: Side, segment: Seg)] = []

    /// `a` opens actively towards `b`; `b` is created passively from a's SYN (index 0).
    init(client: TCPConfiguration = TCPConfiguration(), server: TCPConfiguration = TCPConfiguration()) throws {
        a = TCPConnection(connectingWith: client, initialSequence: SequenceNumber(1000), now: .zero)
        let syn = a.pollRecording(now: .zero)
        try #require(syn.count == 1)
        log.append((0, .a, syn[0]))
        let passive = syn[0].withSegment {
            TCPConnection(acceptingSYN: $0, configuration: server, initialSequence: SequenceNumber(90000), now: .zero)
        }
        b = try #require(passive)
    }

    /// Two active opens (for simultaneous open); nothing is sent yet.
    init(bothActive client: TCPConfiguration, _ other: TCPConfiguration) {
        a = TCPConnection(connectingWith: client, initialSequence: SequenceNumber(1000), now: .zero)
        b = TCPConnection(connectingWith: other, initialSequence: SequenceNumber(90000), now: .zero)
    }

    deinit {
        a.deallocate()
        b.deallocate()
    }

    subscript(side: Side) -> TCPConnection {
        get { side == .a ? a : b }
        set {
            if side == .a { a = newValue } else { b = newValue }
        }
    }

    func poll(_ side: Side) -> [Seg] {
        side == .a ? a.pollRecording(now: now) : b.pollRecording(now: now)
    }

    func deliver(_ s: Seg, to side: Side) {
        if side == .a { a.handle(s, now: now) } else { b.handle(s, now: now) }
    }

    /// Segments emitted by `side` (from the log).
    func sent(by side: Side) -> [Seg] { log.filter { $0.from == side }.map(\.segment) }

    /// Polls both sides and delivers what they send until neither has anything more to say now.
    func pump() {
        for _ in 0..<100_000 {
            var inFlight: [(to: Side, segment: Seg)] = []
            for side in [Side.a, .b] {
                for s in poll(side) {
                    let index = log.count
                    log.append((index, side, s))
                    if dropIndices.contains(index) || blackhole == side { continue }
                    if delayIndices.contains(index) {
                        held.append((side.other, s))
                    } else {
                        inFlight.append((side.other, s))
                    }
                }
            }
            if inFlight.isEmpty && !held.isEmpty {
                inFlight = held
                held = []
            }
            if inFlight.isEmpty { return }
            for (to, s) in inFlight { deliver(s, to: to) }
        }
        Issue.record("pump did not go quiet")
    }

    /// Pumps, then follows both connections' timers until `duration` has passed.
    func run(for duration: Interval) {
        let end = now + duration
        pump()
        for _ in 0..<100_000 {
            let deadline = min(a.nextDeadline, b.nextDeadline)
            if deadline > end { break }
            if deadline > now { now = deadline }
            pump()
        }
        if now < end { now = end }
    }

    /// Sends `data` from `side` to the other side, running the clock as needed; returns what arrived.
    func transfer(_ data: [UInt8], from side: Side, limit: Interval = .seconds(600)) -> [UInt8] {
        var written = 0
        var received: [UInt8] = []
        let end = now + limit
        for _ in 0..<1_000_000 where now < end {
            let progress = (written, received.count)
            if written < data.count {
                let result = data[written...].withUnsafeBytes { self[side].write($0, now: now) }
                if case .bytes(let n) = result { written += n }
            }
            pump()
            received += self[side.other].readAll(now: now)
            pump()
            if received.count >= data.count { break }
            if progress == (written, received.count) {
                let deadline = min(a.nextDeadline, b.nextDeadline)
                if deadline == .never { break }
                if deadline > now { now = deadline }
            }
        }
        return received
    }
}
