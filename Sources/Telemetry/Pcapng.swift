/// pcapng blocks (draft-ietf-opsawg-pcapng): a section header, one interface description per
/// capture file (Ethernet, nanosecond timestamps), and an enhanced packet block per frame with
/// its direction. Little-endian, as the section header's byte-order magic says.
public enum Pcapng {
    static let sectionHeaderType: UInt32 = 0x0A0D_0D0A
    static let interfaceDescriptionType: UInt32 = 1
    static let enhancedPacketType: UInt32 = 6
    static let byteOrderMagic: UInt32 = 0x1A2B_3C4D
    static let linkTypeEthernet: UInt16 = 1

    /// The start of every file: a section header and the interface the frames are from.
    public static func fileHeader(interfaceName: String, description: String, snapLength: Int) -> [UInt8] {
        var out: [UInt8] = []
        // Section header: magic, version 1.0, section length unknown (-1), shb_userappl.
        block(sectionHeaderType, into: &out) { body in
            append(byteOrderMagic, to: &body)
            append(UInt16(1), to: &body)
            append(UInt16(0), to: &body)
            append(UInt64.max, to: &body)
            option(4, Array("mtcp-swift".utf8), to: &body)
            option(0, [], to: &body)
        }
        block(interfaceDescriptionType, into: &out) { body in
            append(linkTypeEthernet, to: &body)
            append(UInt16(0), to: &body)
            append(UInt32(snapLength), to: &body)
            option(2, Array(interfaceName.utf8), to: &body)  // if_name
            option(3, Array(description.utf8), to: &body)  // if_description
            option(9, [9], to: &body)  // if_tsresol: 10^-9 s
            option(0, [], to: &body)
        }
        return out
    }

    /// Appends one enhanced packet block for a frame on interface 0.
    public static func appendPacket(
        _ frame: UnsafeRawBufferPointer, originalLength: Int, timestamp: UInt64, inbound: Bool, to out: inout [UInt8]
    ) {
        block(enhancedPacketType, into: &out) { body in
            append(UInt32(0), to: &body)
            append(UInt32(truncatingIfNeeded: timestamp >> 32), to: &body)
            append(UInt32(truncatingIfNeeded: timestamp), to: &body)
            append(UInt32(frame.count), to: &body)
            append(UInt32(originalLength), to: &body)
            body.append(contentsOf: frame)
            pad(&body)
            // epb_flags: bits 0-1 direction (1 inbound, 2 outbound).
            var flags: [UInt8] = []
            append(UInt32(inbound ? 1 : 2), to: &flags)
            option(2, flags, to: &body)
            option(0, [], to: &body)
        }
    }

    /// A block: type, total length, body, total length again.
    static func block(_ type: UInt32, into out: inout [UInt8], _ fill: (inout [UInt8]) -> Void) {
        let start = out.count
        append(type, to: &out)
        append(UInt32(0), to: &out)
        fill(&out)
        pad(&out)
        let total = UInt32(out.count - start + 4)
        append(total, to: &out)
        withUnsafeBytes(of: total.littleEndian) { bytes in
            for i in 0..<4 { out[start + 4 + i] = bytes[i] }
        }
    }

    static func option(_ code: UInt16, _ value: [UInt8], to out: inout [UInt8]) {
        append(code, to: &out)
        append(UInt16(value.count), to: &out)
        out.append(contentsOf: value)
        pad(&out)
    }

    static func pad(_ out: inout [UInt8]) {
        while out.count % 4 != 0 { out.append(0) }
    }

    static func append<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }
}
