/// The MTCP_STATS line of a process with several instances: their key=value counters added
/// key by key, in the first line's order (a value that is not a number is the first line's; a
/// sum beyond Int's range stays at its end).
public enum CounterLine {
    public static func summed(_ lines: [String]) -> String {
        guard lines.count > 1 else { return lines.first ?? "" }
        var order: [Substring] = []
        var values: [Substring: String] = [:]
        for line in lines {
            for word in line.split(separator: " ") {
                guard let equals = word.firstIndex(of: "=") else { continue }
                let key = word[..<equals]
                let value = String(word[word.index(after: equals)...])
                if let old = values[key] {
                    if let a = Int(old), let b = Int(value) {
                        let (sum, overflow) = a.addingReportingOverflow(b)
                        values[key] = String(overflow ? (b > 0 ? Int.max : Int.min) : sum)
                    }
                } else {
                    order.append(key)
                    values[key] = value
                }
            }
        }
        return order.map { "\($0)=\(values[$0]!)" }.joined(separator: " ")
    }
}
