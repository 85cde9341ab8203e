/// A Toeplitz key that hashes both directions of a flow alike: 0x6D5A repeated (Woo and Park,
/// "Scalable TCP Session Monitoring with Symmetric Receive-side Scaling", 2012). The key's
/// bits repeat every 16, so swapping the 32-bit addresses or the 16-bit ports of the input
/// leaves the hash unchanged, and both directions land on one queue.
public enum SymmetricRSSKey {
    /// The key with `length` bytes (40 for most NICs; 52 for some).
    public static func bytes(length: Int = 40) -> [UInt8] {
        (0..<max(0, length)).map { $0 % 2 == 0 ? 0x6D : 0x5A }
    }
}
