import CShim
import PacketIO
import Stack
import TCP
import Testing
import Wire

/// Instances that share a link through the port-mix fanout pick source ports whose replies
/// the fanout program hands back to them.
@Suite struct ActiveOpenSteeringTests {
    @Test(arguments: [(0, 2), (1, 2), (2, 3), (3, 4)])
    func connectPicksPortsThatComeBack(index: Int, count: Int) throws {
        let hosts = TwoHosts()
        hosts.a.activeOpenSteering = .portSum(index: index, count: count)
        let listener = try hosts.b.socket()
        try hosts.b.bind(listener, address: .any, port: 8080)
        try hosts.b.listen(listener, backlog: 64)
        for _ in 0..<20 {
            let client = try hosts.a.socket()
            try hosts.a.setNonBlocking(client)
            #expect(throws: Errno.EINPROGRESS) { try hosts.a.connect(client, address: addressB, port: 8080) }
            let local = try hosts.a.getsockname(client).port
            #expect(Int(mtcp_shim_port_mix(local, 8080)) % count == index, "port \(local)")
            // The mix is the same seen from the peer's side.
            #expect(mtcp_shim_port_mix(8080, local) == mtcp_shim_port_mix(local, 8080))
        }
    }

    @Test func withoutSteeringAnyPortDoes() throws {
        let hosts = TwoHosts()
        var lands = Set<Int>()
        for _ in 0..<40 {
            let client = try hosts.a.socket()
            try hosts.a.setNonBlocking(client)
            #expect(throws: Errno.EINPROGRESS) { try hosts.a.connect(client, address: addressB, port: 8080) }
            lands.insert(Int(mtcp_shim_port_mix(try hosts.a.getsockname(client).port, 8080)) % 2)
        }
        #expect(lands == [0, 1])
    }
}
