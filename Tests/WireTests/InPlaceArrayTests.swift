import Testing
import Wire

@Suite struct InPlaceArrayTests {
    final class Tracked {
        nonisolated(unsafe) static var live = 0
        let value: Int
        init(_ value: Int) {
            self.value = value
            Tracked.live += 1
        }
        deinit { Tracked.live -= 1 }
    }

    struct Element {
        var number: Int
        var object: Tracked?
    }

    @Test func growsKeepsElementsAndMutatesInPlace() {
        do {
            let array = InPlaceArray<Element>(capacity: 2)
            for i in 0..<100 { array.append(Element(number: i, object: Tracked(i))) }
            #expect(array.count == 100)
            #expect(array.indices == 0..<100)
            for i in array.indices { array[i].number += 1 }
            #expect(array.indices.allSatisfy { array[$0].number == $0 + 1 && array[$0].object?.value == $0 })
            array[5].object = nil
            #expect(Tracked.live == 99)
        }
        // Every element is released with the array.
        #expect(Tracked.live == 0)
    }
}
