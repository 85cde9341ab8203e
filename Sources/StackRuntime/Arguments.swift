/// Flags of an example program after the stack's own were taken out: `--name value` pairs.
public struct ProgramArguments {
    var values: [String: String] = [:]

    /// Fails on a flag outside `known` or a flag without a value.
    public init(_ arguments: [String], known: [String], usage: String) throws(OptionsError) {
        var index = 0
        while index < arguments.count {
            let flag = arguments[index]
            guard known.contains(flag) else { throw OptionsError("unknown argument \(flag)\n\(usage)") }
            guard index + 1 < arguments.count else { throw OptionsError("missing value for \(flag)\n\(usage)") }
            values[flag] = arguments[index + 1]
            index += 2
        }
    }

    public func string(_ flag: String, default value: String) -> String { values[flag] ?? value }

    public func int(_ flag: String, default value: Int) throws(OptionsError) -> Int {
        guard let text = values[flag] else { return value }
        guard let n = Int(text), n >= 0 else { throw OptionsError("\(flag) takes a non-negative integer, not \(text)") }
        return n
    }

    public func optionalInt(_ flag: String) throws(OptionsError) -> Int? {
        guard values[flag] != nil else { return nil }
        return try int(flag, default: 0)
    }
}
