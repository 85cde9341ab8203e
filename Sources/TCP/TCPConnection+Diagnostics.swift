import Wire

/// What a socket table (`mtcp-stat --sockets`, like `ss -tni`) shows of a connection,
/// gathered in place.
extension TCPConnection {
    public struct Diagnostics: Sendable {
        public var state: TCPState
        public var unacknowledgedBytes: Int
        public var readableBytes: Int
        public var congestionWindow: Int
        public var slowStartThreshold: Int
        public var smoothedRTT: Interval?
        public var rttVariance: Interval
        public var retransmissionTimeout: Interval
        public var sendMSS: Int
        public var sendWindow: Int
        public var retransmittedSegments: Int
        public var bytesSent: Int
        public var bytesReceived: Int
    }

    public var diagnostics: Diagnostics {
        Diagnostics(
            state: state, unacknowledgedBytes: unacknowledgedBytes, readableBytes: readableBytes,
            congestionWindow: congestionWindow, slowStartThreshold: slowStartThreshold, smoothedRTT: smoothedRTT,
            rttVariance: rttVariance, retransmissionTimeout: retransmissionTimeout, sendMSS: effectiveSendMSS,
            sendWindow: sendWindow, retransmittedSegments: statistics.retransmittedSegments,
            bytesSent: statistics.bytesSent, bytesReceived: statistics.bytesReceived)
    }
}

extension TCPEndpoint {
    /// Every connection in the table, in any state, with whether the application holds it
    /// (accepted or connected; false: waiting in an accept queue, or closed and finishing).
    public func forEachConnection(_ body: (TCPFlow, TCPConnection.Diagnostics, _ heldByApplication: Bool) -> Void) {
        for index in slots.indices where slots[index].connection != nil {
            let held = slots[index].ownedByApplication && !slots[index].connection!.isReleasedByApplication
            body(slots[index].flow, slots[index].connection!.diagnostics, held)
        }
    }

    /// Every listener: its port and address, connections waiting to be accepted, and backlog.
    public func forEachListener(_ body: (_ port: UInt16, _ address: IPAddress, _ queued: Int, _ backlog: Int) -> Void) {
        for (key, listener) in listeners { body(key.port, listener.address, listener.queued, listener.backlog) }
    }
}

extension TCPEndpoint {
    /// The counters of every live connection, read in place.
    public func forEachConnectionStatistics(_ body: (TCPConnectionStatistics) -> Void) {
        for index in slots.indices where slots[index].connection != nil { body(slots[index].connection!.statistics) }
    }
}
