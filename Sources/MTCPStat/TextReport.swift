import Telemetry

/// The human-readable reports.
enum TextReport {
    static func process(_ s: StatsSnapshot, previous: StatsSnapshot?, seconds: Double, all: Bool) {
        let d = s.description
        print(
            "pid \(s.pid) \(d.command) (\(stateName(s))) \(d.host) on \(d.interface) as \(d.address), backend \(d.backend), \(s.instances.count) instance\(s.instances.count == 1 ? "" : "s")"
        )
        let now = s.totals
        let before = previous?.totals
        var cells: [String] = []
        for (i, name) in s.counterNames.enumerated() {
            if let before, !levelCounters.contains(name), seconds > 0 {
                let rate = Double(now[i] &- before[i]) / seconds
                guard all || rate != 0 else { continue }
                cells.append("\(name)/s=\(Int(rate.rounded()))")
            } else {
                guard all || now[i] != 0 else { continue }
                cells.append("\(name)=\(now[i])")
            }
        }
        printWrapped(cells)
        if s.instances.count > 1, let opens = s.counterNames.firstIndex(of: "passive_opens"),
            let connections = s.counterNames.firstIndex(of: "connections")
        {
            let parts = s.instances.map { i in
                "instance \(i.index): connections=\(i.counters[connections]) passive_opens=\(i.counters[opens] &- i.baseline[opens])"
            }
            print("  " + parts.joined(separator: "; "))
        }
    }

    static func printWrapped(_ cells: [String]) {
        var line = " "
        for cell in cells {
            if line.count + cell.count + 1 > 100 {
                print(line)
                line = " "
            }
            line += " " + cell
        }
        if line.count > 1 { print(line) }
    }

    static func sockets(_ s: StatsSnapshot) {
        let header = [
            "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port", "Inst", "cwnd", "ssthresh",
            "rtt/rttvar(ms)", "rto(ms)", "retrans", "mss", "bytes_sent", "bytes_received",
        ]
        var rows: [[String]] = [header]
        for instance in s.instances {
            for r in instance.sockets {
                let listener = r.kind == .listener
                rows.append([
                    r.stateName, "\(r.receiveQueue)", "\(r.sendQueue)", address(r, local: true),
                    listener ? "*:*" : address(r, local: false), "\(r.instance)",
                    listener ? "" : segments(r.congestionWindow, r.mss),
                    listener ? "" : segments(r.slowStartThreshold, r.mss),
                    listener ? "" : "\(milliseconds(r.smoothedRTT))/\(milliseconds(r.rttVariance))",
                    listener ? "" : milliseconds(r.retransmissionTimeout), listener ? "" : "\(r.retransmissions)",
                    listener ? "" : "\(r.mss)", listener ? "" : "\(r.bytesSent)", listener ? "" : "\(r.bytesReceived)",
                ])
            }
            if instance.socketTotal > instance.sockets.count {
                rows.append(["(\(instance.socketTotal - instance.sockets.count) more in instance \(instance.index))"])
            }
        }
        printTable(rows)
        if !s.fallbacks.isEmpty {
            print("  sockets on the kernel:")
            for f in s.fallbacks {
                print("    fd \(f.fd) \(familyName(f.family))/\(typeName(f.type)): \(f.reason)")
            }
        }
    }

    /// A window in segments of `mss`, as ss shows it; "-" for an unset threshold.
    static func segments(_ bytes: UInt32, _ mss: UInt32) -> String {
        guard bytes < UInt32(Int32.max) else { return "-" }
        return "\(bytes / max(mss, 1))"
    }

    static func milliseconds(_ microseconds: UInt32) -> String {
        let ms = Double(microseconds) / 1000
        return ms >= 100 ? String(Int(ms.rounded())) : String(Double(Int(ms * 1000)) / 1000)
    }

    static func printTable(_ rows: [[String]]) {
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows where row.count == columns {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        for row in rows {
            guard row.count == columns else {
                print("  " + row.joined(separator: " "))
                continue
            }
            let cells = row.enumerated().map { i, cell in cell + String(repeating: " ", count: widths[i] - cell.count) }
            print("  " + cells.joined(separator: "  "))
        }
    }

    static func familyName(_ family: Int32) -> String {
        switch family {
        case 2: "AF_INET"
        case 10: "AF_INET6"
        default: "family \(family)"
        }
    }

    static func typeName(_ type: Int32) -> String {
        switch type & 0xF {
        case 1: "stream"
        case 2: "dgram"
        case 3: "raw"
        default: "type \(type)"
        }
    }
}
