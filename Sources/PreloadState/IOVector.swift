import Glibc

/// The iovec arrays of read, write and their vector and message forms, as the hooks' receive
/// and send loops walk them (a plain read or write is an array of one), once `Transfer` has
/// checked them.
public enum IOVector {
    /// One pass over `iov` after its first `skip` bytes: `move` takes each non-empty buffer in
    /// order until one moves less than its length (or after the first with `once`); an error
    /// ends the pass and counts only when nothing moved.
    @inlinable
    public static func eachBuffer<E: Error>(
        _ iov: UnsafePointer<iovec>, _ count: Int, skip: Int, once: Bool = false,
        _ move: (UnsafeMutableRawBufferPointer) throws(E) -> Int
    ) -> (Int, E?) {
        var total = 0
        var skipped = 0
        for k in 0..<count {
            var base = iov[k].iov_base
            var length = iov[k].iov_len
            if skipped < skip {
                let drop = min(length, skip - skipped)
                skipped += drop
                base = base.map { $0 + drop }
                length -= drop
            }
            guard length > 0, let base else { continue }
            do throws(E) {
                let n = try move(UnsafeMutableRawBufferPointer(start: base, count: length))
                total += n
                if n < length || once { break }
            } catch {
                return total > 0 ? (total, nil) : (0, error)
            }
        }
        return (total, nil)
    }
}
