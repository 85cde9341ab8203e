import PreloadState
import Testing

@Suite struct DescriptorEntryTests {
    @Test func entriesRoundTripEveryKindInstanceAndIndex() {
        for kind in [DescriptorEntry.socketKind, DescriptorEntry.epollKind] {
            for instance in [0, 1, 7, DescriptorEntry.instanceLimit - 1] {
                for index: Int32 in [0, 1, 4095, Int32(DescriptorEntry.indexLimit - 1)] {
                    let entry = DescriptorEntry.make(kind: kind, instance: instance, index: index)
                    #expect(entry > 0, "0 means not the library's; entries stay positive")
                    #expect(DescriptorEntry.kind(entry) == kind)
                    #expect(DescriptorEntry.instance(entry) == instance)
                    #expect(DescriptorEntry.index(entry) == Int(index))
                }
            }
        }
    }

    @Test func anEmptyEntryIsNoKind() {
        #expect(DescriptorEntry.kind(0) == 0)
    }
}

@Suite struct RecordTableTests {
    @Test func freedSlotsAreReusedAndLookupsFollowThem() {
        var table = RecordTable(instance: 2)
        let a = table.add(SocketRecord(stackID: 10, proto: 0))
        let b = table.add(SocketRecord(stackID: 11, proto: 0))
        #expect(table.index(of: table.entry(of: a)) == Int(a))
        #expect(table[Int(b)]?.stackID == 11)
        table.release(Int(a))
        #expect(table.index(of: table.entry(of: a)) == nil, "a freed record is not found")
        let c = table.add(SocketRecord(stackID: 12, proto: 0))
        #expect(c == a, "the freed slot is taken first")
        #expect(table[Int(c)]?.stackID == 12)
        #expect(table.liveCount == 2)
    }

    @Test func anEntryOfAnotherInstanceOrKindIsNotFound() {
        var table = RecordTable(instance: 1)
        let r = table.add(SocketRecord(stackID: 1, proto: 0))
        let otherInstance = DescriptorEntry.make(kind: DescriptorEntry.socketKind, instance: 0, index: r)
        let epoll = DescriptorEntry.make(kind: DescriptorEntry.epollKind, instance: 1, index: r)
        #expect(table.index(of: otherInstance) == nil)
        #expect(table.index(of: epoll) == nil)
        #expect(table.index(of: 0) == nil)
        #expect(table.index(of: table.entry(of: r + 5)) == nil, "beyond the table")
    }

    @Test func forkMarksEveryRecordInheritedAndKeepsWhatTheyAre() {
        var table = RecordTable(instance: 0)
        var listener = SocketRecord(stackID: 3, proto: 0)
        listener.role = .listener
        listener.localPort = 80
        let l = table.add(listener)
        let c = table.add(SocketRecord(stackID: 4, proto: 0))
        table.markInherited()
        #expect(table[Int(l)]?.inherited == true)
        #expect(table[Int(c)]?.inherited == true)
        #expect(table[Int(l)]?.listening == true, "an inherited listener is still one (it is adopted on use)")
        #expect(table[Int(l)]?.localPort == 80)
    }

    @Test func recordsAreChangedInPlace() {
        var table = RecordTable(instance: 0)
        let r = Int(table.add(SocketRecord(stackID: 1, proto: 6)))
        table[r]!.references += 1
        table[r]!.nonBlocking = true
        #expect(table[r]?.references == 2)
        #expect(table[r]?.nonBlocking == true)
        #expect(table[r]?.proto == 6)
    }
}

@Suite struct SocketRecordTests {
    @Test func rolesSayWhatTheSocketIs() {
        var record = SocketRecord(stackID: 1, proto: 0)
        #expect(!record.bound && !record.listening)
        record.role = .bound
        #expect(record.bound && !record.listening)
        record.role = .listener
        #expect(record.bound && record.listening, "a listener is bound (listen binds an ephemeral port)")
        #expect(!record.inherited)
        record.ownership = .inherited
        #expect(record.inherited)
    }

    @Test func aRecordWithoutCopiesIsItsOwnSocket() {
        let record = SocketRecord(stackID: 9, proto: 0)
        #expect(record.stackSockets(home: 3).map(\.instance) == [3])
        #expect(record.stackSockets(home: 3).map(\.id) == [9])
        #expect(record.otherCopies(home: 3).isEmpty)
    }

    @Test func aListenerCopiedIntoInstancesNamesEachAndSkipsMissingOnes() {
        var record = SocketRecord(stackID: 5, proto: 0)
        record.copies = [5, -1, 7, 8]
        #expect(record.stackSockets(home: 0).map(\.instance) == [0, 2, 3])
        #expect(record.stackSockets(home: 0).map(\.id) == [5, 7, 8])
        #expect(record.otherCopies(home: 0).map(\.instance) == [2, 3])
    }

    @Test func optionsAreKeptOnceEachAndOnlyWhileTheRecordKeepsThem() {
        var record = SocketRecord(stackID: 1, proto: 0)
        record.keep(level: 1, name: 2, value: [1, 0, 0, 0])
        record.keep(level: 1, name: 2, value: [0, 0, 0, 0])
        record.keep(level: 6, name: 1, value: [1, 0, 0, 0])
        #expect(record.replay.count == 2)
        #expect(record.replay.first { $0.level == 1 && $0.name == 2 }?.value == [0, 0, 0, 0], "the last value wins")
        record.keepsOptions = false
        record.keep(level: 6, name: 3, value: [1])
        #expect(record.replay.count == 2, "connected sockets record nothing (nginx sets TCP_CORK per response)")
    }
}

@Suite struct CounterLineTests {
    @Test func instancesCountersAreAddedKeyByKeyInTheFirstLinesOrder() {
        let summed = CounterLine.summed([
            "sockets=2 frames_in=10 steering=kernel passive_opens=3",
            "sockets=1 frames_in=5 steering=kernel passive_opens=4 extra=1",
        ])
        #expect(summed == "sockets=3 frames_in=15 steering=kernel passive_opens=7 extra=1")
    }

    @Test func aSumBeyondIntsRangeStaysAtItsEnd() {
        // Found by the preload fuzz target: the plain sum trapped.
        #expect(CounterLine.summed(["a=\(Int.max) b=\(Int.min)", "a=2 b=-1"]) == "a=\(Int.max) b=\(Int.min)")
        #expect(CounterLine.summed(["a=\(Int.max)", "a=-1"]) == "a=\(Int.max - 1)")
    }

    @Test func oneLineIsItself() {
        #expect(CounterLine.summed(["a=1 b=x"]) == "a=1 b=x")
        #expect(CounterLine.summed([]) == "")
    }
}
