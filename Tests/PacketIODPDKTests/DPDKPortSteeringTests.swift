import PacketIODPDK
import Testing
import Wire

/// The steering a symmetric-RSS port gives its instances, against a bit-by-bit model of the
/// port: the Toeplitz hash of the packet with the key the port was given, and the redirection
/// table CDPDK programs (spread_reta in dpdk.c: entry e holds queue e % queues).
@Suite struct DPDKPortSteeringTests {
    static func bitwiseToeplitz(key: [UInt8], input: [UInt8]) -> UInt32 {
        var result: UInt32 = 0
        for position in 0..<(input.count * 8) where input[position / 8] & (0x80 >> UInt8(position % 8)) != 0 {
            var window: UInt32 = 0
            for k in 0..<32 {
                let bit = position + k
                window = window << 1 | UInt32((key[bit / 8] >> (7 - UInt8(bit % 8))) & 1)
            }
            result ^= window
        }
        return result
    }

    static func portQueue(
        key: [UInt8], entries: Int, queues: Int, source: [UInt8], destination: [UInt8], ports: (UInt16, UInt16)
    ) -> Int {
        let input =
            source + destination + [UInt8(ports.0 >> 8), UInt8(ports.0 & 0xFF)]
            + [UInt8(ports.1 >> 8), UInt8(ports.1 & 0xFF)]
        let entry = Int(bitwiseToeplitz(key: key, input: input)) % entries
        return entry % queues
    }

    @Test(arguments: [(2, 128, 40), (4, 128, 40), (4, 512, 52), (3, 64, 40), (2, 128, 0)])
    func steeringAgreesWithThePortModel(queues: Int, entries: Int, keyLength: Int) throws {
        let steering = try #require(
            DPDKPort.rssSteering(keyLength: keyLength, redirectionEntries: entries, queues: queues))
        let key = SymmetricRSSKey.bytes(length: keyLength == 0 ? 40 : keyLength)
        var seed: UInt64 = 42
        func next() -> UInt64 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return seed >> 16
        }
        for _ in 0..<300 {
            let local = (0..<4).map { _ in UInt8(truncatingIfNeeded: next()) }
            let remote = (0..<4).map { _ in UInt8(truncatingIfNeeded: next()) }
            let localPort = UInt16(truncatingIfNeeded: next())
            let remotePort = UInt16(truncatingIfNeeded: next())
            let address = { (b: [UInt8]) in IPv4Address(b[0], b[1], b[2], b[3]) }
            let expected = Self.portQueue(
                key: key, entries: entries, queues: queues, source: remote, destination: local,
                ports: (remotePort, localPort))
            #expect(
                steering.replyQueue(
                    local: address(local), localPort: localPort, remote: address(remote), remotePort: remotePort)
                    == expected)
            // The other direction lands on the same queue.
            #expect(
                Self.portQueue(
                    key: key, entries: entries, queues: queues, source: local, destination: remote,
                    ports: (localPort, remotePort)) == expected)
        }
    }

    @Test func noTableNoSteering() {
        #expect(DPDKPort.rssSteering(keyLength: 40, redirectionEntries: 0, queues: 2) == nil)
    }
}
