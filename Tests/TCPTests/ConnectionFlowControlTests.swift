import TCP
import Testing
import Wire

@Suite struct WindowScalingTests {
    @Test func notUsedWhenPeerDoesNotOfferIt() throws {
        let h = try ConnectionHarness.established(peerOptions: synOptions(windowScale: nil))
        #expect(!h.connection.windowScalingEnabled)
        h.receive(seg(seq: peerISS + 1, ack: localISS + 1, payload: testBytes(10)))
        let ack = h.fireNextDeadline()
        #expect(ack.first?.window == 65535)
    }

    @Test func usedWhenBothOfferIt() throws {
        let h = try ConnectionHarness.established(peerOptions: synOptions(windowScale: 2))
        #expect(h.connection.windowScalingEnabled)
        h.receive(seg(seq: peerISS + 1, ack: localISS + 1, payload: testBytes(10)))
        let ack = h.fireNextDeadline()
        // About 256 KiB free, announced with our shift of 3.
        let window = Int(try #require(ack.first?.window)) << 3
        #expect(window > 65535 && window <= 256 * 1024)
    }

    @Test func notUsedWhenWeDisableIt() throws {
        var config = TCPConfiguration()
        config.windowScaling = false
        let h = try ConnectionHarness.established(config, peerOptions: synOptions(windowScale: 2))
        #expect(!h.connection.windowScalingEnabled)
        h.write(testBytes(20_000))
        _ = h.poll()
        // The peer's window of 4000 is not scaled by its shift.
        h.receive(seg(seq: peerISS + 1, ack: localISS + 1, window: 4000))
        #expect(h.connection.sendWindow == 4000)
    }

    @Test func synAckOmitsWindowScaleWhenSYNHadNone() throws {
        let h = try ConnectionHarness.passive(peerOptions: synOptions(windowScale: nil))
        let synAck = h.poll()
        #expect(synAck.first?.options.windowScale == nil)
        #expect(!h.connection.windowScalingEnabled)
        let h2 = try ConnectionHarness.passive(peerOptions: synOptions(windowScale: 0))
        #expect(h2.poll().first?.options.windowScale == 3)
    }

    @Test func peerWindowIsScaledButNotInItsSYN() throws {
        let h = try ConnectionHarness.established(peerOptions: synOptions(windowScale: 2), peerWindow: 1000)
        // The SYN-ACK's window is never scaled.
        #expect(h.connection.sendWindow == 1000)
        h.receive(seg(seq: peerISS + 1, ack: localISS + 1, window: 1000))
        #expect(h.connection.sendWindow == 4000)
        h.write(testBytes(10_000))
        let out = h.poll()
        #expect(ConnectionHarness.dataBytes(out) == 4000)
    }

    @Test(arguments: [(true, true), (true, false), (false, true), (false, false)])
    func realConnectionsWorkWithOptionsOnEitherSide(clientOptions: Bool, serverOptions: Bool) throws {
        var client = TCPConfiguration()
        client.windowScaling = clientOptions
        client.timestamps = clientOptions
        client.selectiveAcknowledgments = clientOptions
        var server = TCPConfiguration()
        server.windowScaling = serverOptions
        server.timestamps = serverOptions
        server.selectiveAcknowledgments = serverOptions
        let pair = try ConnectionPair(client: client, server: server)
        pair.pump()
        let both = clientOptions && serverOptions
        for connection in [pair.a, pair.b] {
            #expect(connection.state == .established)
            #expect(connection.windowScalingEnabled == both)
            #expect(connection.timestampsEnabled == both)
            #expect(connection.sackEnabled == both)
        }
        pair.dropIndices = [7, 30, 31]
        let data = testBytes(200_000, seed: 2)
        #expect(pair.transfer(data, from: .a) == data)
        let back = testBytes(50_000, seed: 6)
        #expect(pair.transfer(back, from: .b) == back)
        pair.a.close(now: pair.now)
        pair.b.close(now: pair.now)
        pair.run(for: .seconds(120))
        #expect(pair.a.state == .closed && pair.a.error == nil)
        #expect(pair.b.state == .closed && pair.b.error == nil)
    }
}

@Suite struct ZeroWindowTests {
    @Test func persistProbesBackOffAndSurviveLongZeroWindow() throws {
        // RTO after the handshake is 300 ms.
        let h = try ConnectionHarness.established(peerWindow: 0)
        h.write(testBytes(100))
        #expect(h.poll().isEmpty)
        var gaps: [UInt64] = []
        for _ in 0..<25 {
            let before = h.now
            let out = h.fireNextDeadline()
            gaps.append((h.now - before).milliseconds)
            #expect(out.count == 1)
            #expect(out.first?.seq == SequenceNumber(localISS + 1))
            #expect(out.first?.payload.count == 1)
            // The peer still has no room and says so.
            #expect(h.deliver(seg(seq: peerISS + 1, ack: localISS + 1, window: 0)).isEmpty)
            #expect(h.state == .established)
        }
        #expect(Array(gaps.prefix(5)) == [300, 600, 1200, 2400, 4800])
        #expect(gaps.last == 120_000)
        #expect(h.connection.statistics.windowProbes == 25)
        #expect(h.connection.statistics.fastRetransmits == 0)

        let out = h.deliver(seg(seq: peerISS + 1, ack: localISS + 1, window: 65535))
        #expect(out.count == 1)
        #expect(out.first?.payload == testBytes(100))
        _ = h.deliver(seg(seq: peerISS + 1, ack: localISS + 101))
        #expect(h.connection.unacknowledgedBytes == 0)
    }

    @Test func persistProbesToAVanishedPeerTimeOut() throws {
        var config = TCPConfiguration()
        config.maximumRetransmissions = 4
        let h = try ConnectionHarness.established(config, peerWindow: 0)
        h.write(testBytes(100))
        _ = h.poll()
        for _ in 0..<4 { #expect(h.fireNextDeadline().count == 1) }
        _ = h.fireNextDeadline()
        #expect(h.state == .closed)
        #expect(h.connection.error == .timedOut)
    }

    @Test func windowClosesAndReopensBetweenRealConnections() throws {
        var server = TCPConfiguration()
        server.receiveBufferSize = 8192
        let pair = try ConnectionPair(server: server)
        pair.pump()
        let data = testBytes(50_000, seed: 4)
        #expect(pair.a.write(data, now: pair.now) == .bytes(50_000))
        pair.run(for: .seconds(5))
        #expect(pair.b.readableBytes == 8192)
        #expect(pair.a.sendWindow == 0)
        pair.run(for: .seconds(30))
        #expect(pair.a.state == .established)
        #expect(pair.a.statistics.windowProbes > 0)
        var received = pair.b.readAll(now: pair.now)
        for _ in 0..<1000 where received.count < data.count {
            pair.run(for: .milliseconds(10))
            received += pair.b.readAll(now: pair.now)
        }
        #expect(received == data)
    }
}

@Suite struct ReceiverWindowTests {
    func smallBuffer() throws -> ConnectionHarness {
        var config = TCPConfiguration()
        config.receiveBufferSize = 4000
        config.maximumSegmentSize = 1000
        return try ConnectionHarness.established(config)
    }

    @Test func windowShrinksAsDataArrivesAndReachesZero() throws {
        let h = try smallBuffer()
        var lastWindow: UInt16?
        for i in 0..<4 {
            let out = h.deliver(
                seg(seq: peerISS + 1 + UInt32(1000 * i), ack: localISS + 1, payload: testBytes(1000)))
            if let ack = out.last { lastWindow = ack.window }
        }
        #expect(lastWindow == 0)
        #expect(h.connection.readableBytes == 4000)
        // Nothing fits now.
        let extra = h.deliver(seg(seq: peerISS + 4001, ack: localISS + 1, payload: testBytes(10)))
        #expect(extra.first?.ack == SequenceNumber(peerISS + 4001))
        #expect(h.connection.readableBytes == 4000)
    }

    @Test func noTinyWindowUpdates() throws {
        let h = try smallBuffer()
        for i in 0..<4 {
            _ = h.deliver(seg(seq: peerISS + 1 + UInt32(1000 * i), ack: localISS + 1, payload: testBytes(1000)))
        }
        _ = h.fireNextDeadline()
        #expect(h.read(max: 100).1.count == 100)
        #expect(h.poll().isEmpty)
        #expect(h.read(max: 899).1.count == 899)
        #expect(h.poll().isEmpty)
        // An ACK sent for another reason still offers no window below one MSS.
        let probe = h.deliver(seg(seq: peerISS + 4001 - 1, ack: localISS + 1))
        #expect(probe.first?.window == 0)
        // Half the buffer free: now the update goes out.
        #expect(h.read(max: 1001).1.count == 1001)
        let update = h.poll()
        #expect(update.count == 1)
        #expect(update.first?.window == 2000)
    }
}

@Suite struct PAWSTests {
    func withTimestamps() throws -> ConnectionHarness {
        try ConnectionHarness.established(peerOptions: synOptions(timestamp: 100))
    }

    func stamped(_ seq: UInt32, _ value: UInt32, payload: [UInt8] = testBytes(100)) -> Seg {
        seg(
            seq: peerISS + seq, ack: localISS + 1, payload: payload,
            options: TCPOptions(timestamp: TCPTimestampOption(value: value, echoReply: 0)))
    }

    @Test func timestampsNegotiatedAndEchoed() throws {
        let h = try withTimestamps()
        #expect(h.connection.timestampsEnabled)
        #expect(h.connection.effectiveSendMSS == 988)
        h.receive(stamped(1, 250))
        let ack = h.fireNextDeadline()
        #expect(ack.first?.options.timestamp?.echoReply == 250)
    }

    @Test func olderTimestampIsDroppedWithAck() throws {
        let h = try withTimestamps()
        h.receive(stamped(1, 200))
        _ = h.fireNextDeadline()
        let out = h.deliver(stamped(101, 150))
        #expect(out.count == 1)
        #expect(out.first?.ack == SequenceNumber(peerISS + 101))
        #expect(h.connection.statistics.pawsRejected == 1)
        #expect(h.connection.readableBytes == 100)
        // The same bytes with a current timestamp are taken.
        h.receive(stamped(101, 210))
        #expect(h.connection.readableBytes == 200)
    }

    @Test func rstIsNotSubjectToPAWS() throws {
        let h = try withTimestamps()
        h.receive(stamped(1, 200, payload: []))
        var rst = stamped(1, 1)
        rst.flags = .rst
        rst.payload = []
        _ = h.deliver(rst)
        #expect(h.state == .closed)
        #expect(h.connection.error == .connectionReset)
    }
}
