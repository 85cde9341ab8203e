/// The MTCP_STATS line of a process with several instances: their key=value counters added
/// key by key, in the first line's order (a value that is not a number is the first line's).
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
                    if let a = Int(old), let b = Int(value) { values[key] = String(a + b) }
                } else {
                    order.append(key)
                    values[key] = value
                }
            }
        }
        return order.map { "\($0)=\(values[$0]!)" }.joined(separator: " ")
    }
}
