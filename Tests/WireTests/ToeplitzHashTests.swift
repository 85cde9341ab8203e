import Testing
import Wire

@Suite struct ToeplitzHashTests {
    /// The key of Microsoft's "Verifying the RSS Hash Calculation" (also the Intel 82599
    /// datasheet's RSS verification suite, 7.1.2.8.3).
    static let verificationKey: [UInt8] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
        0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
        0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ]

    /// The published IPv4 table: destination, source, IPv4-only hash, IPv4 with TCP ports hash.
    static let vectors:
        [(destination: String, destinationPort: UInt16, source: String, sourcePort: UInt16, ip: UInt32, tcp: UInt32)] =
            [
                ("161.142.100.80", 1766, "66.9.149.187", 2794, 0x323e_8fc2, 0x51cc_c178),
                ("65.69.140.83", 4739, "199.92.111.2", 14230, 0xd718_262a, 0xc626_b0ea),
                ("12.22.207.184", 38024, "24.19.198.95", 12898, 0xd2d0_a5de, 0x5c2b_394a),
                ("209.142.163.6", 2217, "38.27.205.30", 48228, 0x8298_9176, 0xafc7_327f),
                ("202.188.127.2", 1303, "153.39.163.191", 44251, 0x5d18_09c5, 0x10e8_28a2),
            ]

    @Test func matchesThePublishedIPv4Vectors() throws {
        let toeplitz = try #require(ToeplitzHash(key: Self.verificationKey))
        for v in Self.vectors {
            let source = try #require(IPv4Address(v.source))
            let destination = try #require(IPv4Address(v.destination))
            #expect(toeplitz.hash(source: source, destination: destination) == v.ip, "\(v.source) -> \(v.destination)")
            #expect(
                toeplitz.hash(
                    source: source, destination: destination, sourcePort: v.sourcePort,
                    destinationPort: v.destinationPort) == v.tcp, "\(v.source):\(v.sourcePort)")
        }
    }

    @Test func rejectsKeysTooShortForTheInput() {
        #expect(ToeplitzHash(key: [UInt8](repeating: 1, count: 15)) == nil)
        #expect(ToeplitzHash(key: [UInt8](repeating: 1, count: 16)) != nil)
    }

    @Test func symmetricKeyIsTheRepeatedPattern() {
        #expect(ToeplitzHash.symmetricKey.count == 40)
        #expect(ToeplitzHash.symmetricKey.prefix(4) == [0x6D, 0x5A, 0x6D, 0x5A])
        #expect(ToeplitzHash()?.key == ToeplitzHash.symmetricKey)
    }

    @Test func symmetricKeyHashesBothDirectionsAlike() throws {
        let toeplitz = try #require(ToeplitzHash())
        var random = SplitMix64(seed: 0x5EED)
        var distinct = Set<UInt32>()
        for _ in 0..<2000 {
            let a = IPv4Address(rawValue: UInt32(truncatingIfNeeded: random.next()))
            let b = IPv4Address(rawValue: UInt32(truncatingIfNeeded: random.next()))
            let p = UInt16(truncatingIfNeeded: random.next())
            let q = UInt16(truncatingIfNeeded: random.next())
            let forward = toeplitz.hash(source: a, destination: b, sourcePort: p, destinationPort: q)
            #expect(forward == toeplitz.hash(source: b, destination: a, sourcePort: q, destinationPort: p))
            #expect(toeplitz.hash(source: a, destination: b) == toeplitz.hash(source: b, destination: a))
            distinct.insert(forward)
        }
        // Symmetric, but still a hash: flows spread over many values.
        #expect(distinct.count > 1900)
    }

    @Test func verificationKeyIsNotSymmetric() throws {
        let toeplitz = try #require(ToeplitzHash(key: Self.verificationKey))
        let a = IPv4Address(10, 0, 0, 1)
        let b = IPv4Address(10, 0, 0, 2)
        #expect(
            toeplitz.hash(source: a, destination: b, sourcePort: 1234, destinationPort: 80)
                != toeplitz.hash(source: b, destination: a, sourcePort: 80, destinationPort: 1234))
    }

    @Test func redirectionTableIsRoundRobin() {
        #expect(ToeplitzHash.queue(for: 0x1234_5600, queues: 1) == 0)
        for hash: UInt32 in [0, 1, 2, 3, 127, 128, 129, 0xFFFF_FFFF, 0x8000_0005] {
            #expect(ToeplitzHash.queue(for: hash, queues: 2) == Int(hash & 127) % 2)
            #expect(ToeplitzHash.queue(for: hash, queues: 3) == Int(hash & 127) % 3)
        }
        // Only the low 7 bits choose the entry.
        #expect(ToeplitzHash.queue(for: 0xFFFF_FF80, queues: 4) == 0)
        #expect(ToeplitzHash.queue(for: 0x0000_007F, queues: 3) == 127 % 3)
    }

    @Test(arguments: [2, 4]) func sourcePortsSteerRepliesToTheirCore(cores: Int) throws {
        let toeplitz = try #require(ToeplitzHash())
        let local = IPv4Address(10, 9, 0, 2)
        let remote = IPv4Address(10, 9, 0, 1)
        for core in 0..<cores {
            let port = try #require(
                toeplitz.sourcePort(
                    for: core, of: cores, local: local, remote: remote, remotePort: 80, in: 61000...65535))
            #expect((61000...65535).contains(port))
            // Replies (remote -> local) land on the core that opened the connection...
            let reply = toeplitz.hash(source: remote, destination: local, sourcePort: 80, destinationPort: port)
            #expect(ToeplitzHash.queue(for: reply, queues: cores) == core)
            // ...and so do our own packets of the flow, with the symmetric key.
            let sent = toeplitz.hash(source: local, destination: remote, sourcePort: port, destinationPort: 80)
            #expect(ToeplitzHash.queue(for: sent, queues: cores) == core)
        }
    }

    @Test func sourcePortIsNilWhenNoPortFits() throws {
        let toeplitz = try #require(ToeplitzHash())
        let local = IPv4Address(10, 9, 0, 2)
        let remote = IPv4Address(10, 9, 0, 1)
        let port: UInt16 = 61000
        let core = toeplitz.replyQueue(local: local, localPort: port, remote: remote, remotePort: 80, queues: 4)
        let other = (core + 1) % 4
        #expect(
            toeplitz.sourcePort(for: other, of: 4, local: local, remote: remote, remotePort: 80, in: port...port) == nil
        )
        #expect(
            toeplitz.sourcePort(for: core, of: 4, local: local, remote: remote, remotePort: 80, in: port...port) == port
        )
    }
}
