import TCP
import Testing

@Suite struct SipHashTests {
    static let key0: UInt64 = 0x0706_0504_0302_0100
    static let key1: UInt64 = 0x0f0e_0d0c_0b0a_0908

    /// Reference vectors of the SipHash paper / reference code: key 00..0f, message 00 01 .. (n-1).
    static let vectors: [UInt64] = [
        0x726f_db47_dd0e_0e31, 0x74f8_39c5_93dc_67fd, 0x0d6c_8009_d9a9_4f5a, 0x8567_6696_d7fb_7e2d,
        0xcf27_94e0_2771_87b7, 0x1876_5564_cd99_a68d, 0xcbc9_466e_58fe_e3ce, 0xab02_00f5_8b01_d137,
        0x93f5_f579_9a93_2462, 0x9e00_82df_0ba9_e4b0, 0x7a5d_bbc5_94dd_b9f3, 0xf4b3_2f46_226b_ada7,
        0x751e_8fbc_860e_e5fb, 0x14ea_5627_c084_3d90, 0xf723_ca90_8e7a_f2ee, 0xa129_ca61_49be_45e5,
        0x3f2a_cc7f_57c2_9bdb,
    ]

    @Test func referenceVectorsOneShot() {
        for (length, expected) in Self.vectors.enumerated() {
            let message = (0..<length).map { UInt8($0) }
            let value = message.withUnsafeBytes { SipHash24.hash(key0: Self.key0, key1: Self.key1, bytes: $0) }
            #expect(value == expected, "length \(length)")
        }
    }

    @Test func fifteenByteVectorFromPaper() {
        let message = (0..<15).map { UInt8($0) }
        let value = message.withUnsafeBytes { SipHash24.hash(key0: Self.key0, key1: Self.key1, bytes: $0) }
        #expect(value == 0xa129_ca61_49be_45e5)
    }

    @Test func integerAddsMatchLittleEndianBytes() {
        // 16 bytes 00..0f fed as mixed-width little-endian integers must equal the byte feed.
        var hasher = SipHash24(key0: Self.key0, key1: Self.key1)
        hasher.add(UInt8(0x00))
        hasher.add(UInt16(0x0201))
        hasher.add(UInt32(0x0605_0403))
        hasher.add(UInt64(0x0e0d_0c0b_0a09_0807))
        #expect(hasher.finalize() == Self.vectors[15])

        var other = SipHash24(key0: Self.key0, key1: Self.key1)
        other.add(UInt32(0x0302_0100))
        other.add(UInt64(0x0b0a_0908_0706_0504))
        other.add(UInt16(0x0d0c))
        other.add(UInt8(0x0e))
        other.add(UInt8(0x0f))
        #expect(other.finalize() == Self.vectors[16])
    }

    @Test func finalizeDoesNotDisturbState() {
        var hasher = SipHash24(key0: Self.key0, key1: Self.key1)
        hasher.add(UInt8(0))
        #expect(hasher.finalize() == Self.vectors[1])
        hasher.add(UInt8(1))
        #expect(hasher.finalize() == Self.vectors[2])
    }

    @Test func keyMatters() {
        let a = SipHash24(key0: 1, key1: 2).finalize()
        let b = SipHash24(key0: 1, key1: 3).finalize()
        #expect(a != b)
    }
}
