import Wire

/// Finishes TCP/UDP checksums that a kernel peer left to "hardware" (CHECKSUM_PARTIAL, seen
/// on AF_PACKET as TP_STATUS_CSUMNOTREADY): over a veth no NIC ever fills them in.
public enum OffloadChecksum {
    /// Computes and stores the L4 checksum of an untagged Ethernet IPv4 TCP or UDP frame
    /// in place. Returns false (frame untouched) for anything else, fragments, or frames
    /// shorter than their IP length says.
    @discardableResult
    public static func completeIPv4(frame: UnsafeMutableRawBufferPointer) -> Bool {
        guard frame.count >= 34, let base = frame.baseAddress else { return false }
        guard load16(base, 12) == EtherType.ipv4 else { return false }
        let versionAndLength = base.load(fromByteOffset: 14, as: UInt8.self)
        let headerLength = Int(versionAndLength & 0x0F) * 4
        guard versionAndLength >> 4 == 4, headerLength >= 20 else { return false }
        let totalLength = Int(load16(base, 16))
        // Offset or more-fragments set: the L4 header or payload is elsewhere.
        guard load16(base, 20) & 0x3FFF == 0 else { return false }
        guard totalLength >= headerLength, 14 + totalLength <= frame.count else { return false }
        let proto = base.load(fromByteOffset: 23, as: UInt8.self)
        let checksumOffset: Int
        switch proto {
        case 6: checksumOffset = 16
        case 17: checksumOffset = 6
        default: return false
        }
        let l4Start = 14 + headerLength
        let l4Length = totalLength - headerLength
        guard l4Length >= checksumOffset + 2 else { return false }
        let source = IPAddress(IPv4Address(rawValue: load32(base, 26)))
        let destination = IPAddress(IPv4Address(rawValue: load32(base, 30)))
        finish(
            base, l4Start: l4Start, l4Length: l4Length, checksumOffset: checksumOffset, proto: proto,
            source: source, destination: destination)
        return true
    }

    /// Stores the L4 checksum over the pseudo-header and the segment at `l4Start`.
    static func finish(
        _ base: UnsafeMutableRawPointer, l4Start: Int, l4Length: Int, checksumOffset: Int, proto: UInt8,
        source: IPAddress, destination: IPAddress
    ) {
        store16(base, l4Start + checksumOffset, 0)
        var sum = InternetChecksum.pseudoHeader(
            source: source, destination: destination, protocol: proto, length: l4Length)
        sum.add(UnsafeRawBufferPointer(start: base + l4Start, count: l4Length))
        var value = sum.value
        // UDP sends a computed zero as all ones (zero means "no checksum").
        if proto == 17 && value == 0 { value = 0xFFFF }
        store16(base, l4Start + checksumOffset, value)
    }

    /// The same for an untagged Ethernet IPv6 frame whose TCP or UDP header follows the fixed
    /// header directly (the kernel puts no extension headers on the segments it offloads).
    @discardableResult
    public static func completeIPv6(frame: UnsafeMutableRawBufferPointer) -> Bool {
        guard frame.count >= 54, let base = frame.baseAddress else { return false }
        guard load16(base, 12) == EtherType.ipv6, base.load(fromByteOffset: 14, as: UInt8.self) >> 4 == 6 else {
            return false
        }
        let l4Length = Int(load16(base, 18))
        let proto = base.load(fromByteOffset: 20, as: UInt8.self)
        let checksumOffset: Int
        switch proto {
        case 6: checksumOffset = 16
        case 17: checksumOffset = 6
        default: return false
        }
        let l4Start = 54
        guard l4Length >= checksumOffset + 2, l4Start + l4Length <= frame.count else { return false }
        let view = UnsafeRawBufferPointer(frame)
        let source = IPAddress.load(from: view, at: 22)
        let destination = IPAddress.load(from: view, at: 38)
        finish(
            base, l4Start: l4Start, l4Length: l4Length, checksumOffset: checksumOffset, proto: proto,
            source: source, destination: destination)
        return true
    }

    /// `completeIPv4` or `completeIPv6`, by the frame's EtherType.
    @discardableResult
    public static func complete(frame: UnsafeMutableRawBufferPointer) -> Bool {
        completeIPv4(frame: frame) || completeIPv6(frame: frame)
    }

    @inline(__always)
    static func load16(_ base: UnsafeMutableRawPointer, _ offset: Int) -> UInt16 {
        UInt16(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    static func load32(_ base: UnsafeMutableRawPointer, _ offset: Int) -> UInt32 {
        UInt32(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    static func store16(_ base: UnsafeMutableRawPointer, _ offset: Int, _ value: UInt16) {
        base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }
}
