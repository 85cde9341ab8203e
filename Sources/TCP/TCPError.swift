/// Why a connection failed or a call was refused. `errno` gives the value Linux reports.
public enum TCPError: Error, Hashable, Sendable {
    /// RST in answer to our SYN (ECONNREFUSED).
    case connectionRefused
    /// RST on an established connection (ECONNRESET).
    case connectionReset
    /// Retransmissions, SYN retries, persist or keepalive probes ran out (ETIMEDOUT).
    case timedOut
    /// The local side aborted the connection (ECONNABORTED).
    case connectionAborted
    /// Write after shutdown(SHUT_WR) or close (EPIPE).
    case brokenPipe
    /// Read or write before the connection exists (ENOTCONN).
    case notConnected

    public var errno: Int32 {
        switch self {
        case .connectionRefused: return 111
        case .connectionReset: return 104
        case .timedOut: return 110
        case .connectionAborted: return 103
        case .brokenPipe: return 32
        case .notConnected: return 107
        }
    }
}

/// The result of reading from a connection.
public enum TCPReadResult: Hashable, Sendable {
    case bytes(Int)
    /// The peer sent FIN and every byte before it has been read.
    case endOfStream
    case wouldBlock
    case failed(TCPError)
}

/// The result of writing to a connection.
public enum TCPWriteResult: Hashable, Sendable {
    case bytes(Int)
    /// The send buffer is full (EAGAIN).
    case wouldBlock
    case failed(TCPError)
}
