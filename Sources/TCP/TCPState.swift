/// The connection states of RFC 9293 section 3.3.2. LISTEN lives in `TCPEndpoint`'s listener table,
/// so a `TCPConnection` starts in SYN-SENT or SYN-RECEIVED (or ESTABLISHED from a SYN cookie).
public enum TCPState: String, Sendable, CaseIterable {
    case closed = "CLOSED"
    case listen = "LISTEN"
    case synSent = "SYN-SENT"
    case synReceived = "SYN-RECEIVED"
    case established = "ESTABLISHED"
    case finWait1 = "FIN-WAIT-1"
    case finWait2 = "FIN-WAIT-2"
    case closeWait = "CLOSE-WAIT"
    case closing = "CLOSING"
    case lastAck = "LAST-ACK"
    case timeWait = "TIME-WAIT"

    /// States in which both sequence spaces are synchronized (RFC 9293 glossary).
    public var isSynchronized: Bool {
        switch self {
        case .closed, .listen, .synSent, .synReceived: return false
        default: return true
        }
    }

    /// States in which the peer may still send us data.
    public var acceptsData: Bool {
        self == .established || self == .finWait1 || self == .finWait2
    }
}
