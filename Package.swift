// swift-tools-version: 6.1
import PackageDescription

// Layers, lowest first; a target depends only on targets above it in this list.
//   Wire       zero-copy views and builders for Ethernet, ARP, IPv4, ICMP, TCP
//   TCP        the protocol as a pure state machine driven by an injected clock
//   PacketIO   batched frame I/O: AF_PACKET rings, TAP, in-memory links, impairment
//   Stack      per-core instance: ARP, routes, ICMP echo, sockets and epoll over a PacketIO
//   Simulation a deterministic, seeded network simulator for tests and the demo
let hotPath: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"])
]

let package = Package(
    name: "mtcp-swift",
    products: [
        .library(name: "Wire", targets: ["Wire"]),
        .library(name: "TCP", targets: ["TCP"]),
        .library(name: "PacketIO", targets: ["PacketIO"]),
        .library(name: "Simulation", targets: ["Simulation"]),
        .library(name: "Stack", targets: ["Stack"]),
        .executable(name: "mtcp-sim-demo", targets: ["SimDemo"]),
    ],
    targets: [
        .target(name: "Wire", swiftSettings: hotPath),
        .target(name: "TCP", dependencies: ["Wire"], swiftSettings: hotPath),
        .target(name: "PacketIO", dependencies: ["Wire"], swiftSettings: hotPath),
        .target(name: "Simulation", dependencies: ["Wire", "TCP"]),
        .target(name: "Stack", dependencies: ["Wire", "TCP", "PacketIO"], swiftSettings: hotPath),
        .executableTarget(name: "SimDemo", dependencies: ["Simulation", "TCP", "Wire"]),
        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "TCPTests", dependencies: ["TCP", "Wire", "Simulation"]),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation", "TCP", "Wire"]),
        .testTarget(name: "PacketIOTests", dependencies: ["PacketIO", "Wire"]),
        .testTarget(name: "StackTests", dependencies: ["Stack", "PacketIO", "TCP", "Wire"]),
    ]
)
