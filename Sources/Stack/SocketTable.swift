/// The sockets of one stack, named by small integer ids; freed ids are reused.
struct SocketTable {
    var slots: [Socket?] = []
    var free: [Int32] = []
    /// Ids handed out at most (EMFILE beyond).
    var limit = 1 << 20

    mutating func allocate(_ socket: Socket) -> Int32? {
        if let id = free.popLast() {
            slots[Int(id)] = socket
            return id
        }
        guard slots.count < limit else { return nil }
        slots.append(socket)
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
