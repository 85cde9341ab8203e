import Telemetry

/// The --json report: one object with a "processes" array.
enum JSONReport {
    static func render(_ snapshots: [StatsSnapshot], previous: [StatsSnapshot]?, seconds: Double, sockets: Bool)
        -> String
    {
        let processes = snapshots.enumerated().map { i, s -> String in
            let d = s.description
            let now = s.totals
            var fields = [
                "\"pid\":\(s.pid)", "\"command\":\(quote(d.command))", "\"state\":\(quote(stateName(s)))",
                "\"host\":\(quote(d.host))", "\"interface\":\(quote(d.interface))", "\"backend\":\(quote(d.backend))",
                "\"address\":\(quote(d.address))", "\"instances\":\(s.instances.count)",
            ]
            let counters = s.counterNames.enumerated().map { "\(quote($1)):\(now[$0])" }
            fields.append("\"counters\":{\(counters.joined(separator: ","))}")
            if let previous, previous.indices.contains(i), seconds > 0 {
                let before = previous[i].totals
                let rates = s.counterNames.enumerated().compactMap { j, name -> String? in
                    guard !levelCounters.contains(name) else { return nil }
                    return "\(quote(name)):\(Double(now[j] &- before[j]) / seconds)"
                }
                fields.append("\"rates\":{\(rates.joined(separator: ","))}")
            }
            let perInstance = s.instances.map { instance -> String in
                let values = s.counterNames.enumerated().map {
                    "\(quote($1)):\(instance.counters[$0] &- instance.baseline[$0])"
                }
                return "{\"index\":\(instance.index),\"counters\":{\(values.joined(separator: ","))}}"
            }
            fields.append("\"per_instance\":[\(perInstance.joined(separator: ","))]")
            if sockets {
                let rows = s.instances.flatMap { $0.sockets }.map(socket)
                fields.append("\"sockets\":[\(rows.joined(separator: ","))]")
                let kernel = s.fallbacks.map {
                    "{\"fd\":\($0.fd),\"family\":\($0.family),\"type\":\($0.type),\"reason\":\(quote($0.reason))}"
                }
                fields.append("\"kernel_sockets\":[\(kernel.joined(separator: ","))]")
            }
            return "{\(fields.joined(separator: ","))}"
        }
        return "{\"processes\":[\(processes.joined(separator: ","))]}"
    }

    static func socket(_ r: SocketRow) -> String {
        let fields = [
            "\"state\":\(quote(r.stateName))", "\"kind\":\(quote(r.kind == .listener ? "listener" : "connection"))",
            "\"instance\":\(r.instance)", "\"local\":\(quote(address(r, local: true)))",
            "\"peer\":\(quote(r.kind == .listener ? "*:*" : address(r, local: false)))",
            "\"recv_q\":\(r.receiveQueue)", "\"send_q\":\(r.sendQueue)", "\"cwnd_bytes\":\(r.congestionWindow)",
            "\"ssthresh_bytes\":\(r.slowStartThreshold)", "\"srtt_us\":\(r.smoothedRTT)",
            "\"rttvar_us\":\(r.rttVariance)",
            "\"rto_us\":\(r.retransmissionTimeout)", "\"mss\":\(r.mss)", "\"retransmits\":\(r.retransmissions)",
            "\"send_window\":\(r.sendWindow)", "\"bytes_sent\":\(r.bytesSent)", "\"bytes_received\":\(r.bytesReceived)",
            "\"held_by_application\":\(r.flags & SocketRow.heldByApplication != 0)",
        ]
        return "{\(fields.joined(separator: ","))}"
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
