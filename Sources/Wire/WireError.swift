/// Why a frame or packet was refused. Each case is counted by the layer that sees it;
/// a malformed packet is never a trap.
public enum WireError: Error, Hashable, Sendable {
    /// Fewer bytes than the header (or its declared length) needs.
    case truncated
    /// A length field that contradicts itself or the buffer (e.g. IHL < 5, data offset < 5).
    case badLength
    /// IP version other than 4.
    case badVersion
    /// Header or pseudo-header checksum does not verify.
    case badChecksum
    /// An IPv4 fragment (MF set or non-zero offset); this stack does not reassemble.
    case fragmented
    /// A TCP option whose length byte is impossible (0, 1, or past the header end),
    /// or a known option with the wrong length.
    case badOption
    /// A protocol, hardware type or operation this stack does not handle.
    case unsupported
}
