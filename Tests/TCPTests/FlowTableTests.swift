import TCP
import Testing
import Wire

@Suite struct FlowTableTests {
    @Test(arguments: [1, 2, 3])
    func matchesADictionaryThroughInsertsRemovesAndGrowth(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var table = FlowTable(secret: (random.next(), random.next()), capacity: 4)
        var model: [TCPFlow: Int32] = [:]
        // Few distinct tuples (one server, 300 client ports on 2 addresses): long probe runs,
        // many removals in the middle of runs.
        func randomFlow() -> TCPFlow {
            TCPFlow(
                localAddress: IPv4Address(10, 0, 0, 1), localPort: 80,
                remoteAddress: IPv4Address(10, 0, 0, UInt8.random(in: 2...3, using: &random)),
                remotePort: UInt16.random(in: 40000..<40300, using: &random))
        }
        for step in 0..<20_000 {
            let flow = randomFlow()
            if Bool.random(using: &random) {
                let slot = Int32(step)
                table.insert(flow, slot: slot)
                model[flow] = slot
            } else {
                table.remove(flow)
                model[flow] = nil
            }
            if step % 97 == 0 {
                let probe = randomFlow()
                #expect(table[probe] == model[probe])
            }
        }
        #expect(table.count == model.count)
        for (flow, slot) in model { #expect(table[flow] == slot) }
        for flow in model.keys { table.remove(flow) }
        #expect(table.count == 0)
        #expect(table[randomFlow()] == nil)
    }
}
