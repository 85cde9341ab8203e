/// The sockets of one stack, named by small integer ids; freed ids are reused.
struct SocketTable {
    /// `Socket` holds no references, so reading one copies plain bytes (no retain/release).
    var slots: [Socket?] = []
    /// Event poll sets each socket is registered in, beside `slots` for the same reason.
    var watchers: [[Int32]] = []
    var free: [Int32] = []
    /// Ids handed out at most (EMFILE beyond).
    var limit = 1 << 20

    mutating func allocate(_ socket: Socket) -> Int32? {
        if let id = free.popLast() {
            slots[Int(id)] = socket
            watchers[Int(id)].removeAll(keepingCapacity: true)
            return id
        }
        guard slots.count < limit else { return nil }
        slots.append(socket)
        watchers.append([])
        return Int32(slots.count - 1)
    }

    mutating func release(_ id: Int32) {
        guard contains(id) else { return }
        slots[Int(id)] = nil
        free.append(id)
    }

    func contains(_ id: Int32) -> Bool {
        id >= 0 && Int(id) < slots.count && slots[Int(id)] != nil
    }

    /// Sockets in use.
    var count: Int { slots.count - free.count }
}
