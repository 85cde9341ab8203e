// swift-tools-version: 6.1
import PackageDescription

// Layers, lowest first; a target depends only on targets above it in this list.
//   Wire         zero-copy views and builders for Ethernet, ARP, IPv4, ICMP, TCP
//   TCP          the protocol as a pure state machine driven by an injected clock
//   CShim        C declarations Swift's Glibc lacks (if_packet.h, epoll, ioctl wrappers)
//   PacketIO     batched frame I/O: AF_PACKET rings, TAP, in-memory links, impairment
//   Stack        per-core instance: ARP, routes, ICMP echo, sockets and epoll over a PacketIO
//   StackRuntime options (flags and MTCP_* variables), backends and one thread per instance
//   CPreload     the preload library's C side: real libc functions, descriptor table, variadic exports
//   Preload      libmtcp-preload.so: socket calls of unmodified programs routed to the stack
//   Simulation   a deterministic, seeded network simulator for tests and the demo
// Executables: the simulation demo and the example programs on the stack's own API.
let hotPath: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"])
]
// The example programs share state between instance threads through Mutex and keep the
// Swift 5 language mode's lighter Sendable checking for their closures.
let example: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "mtcp-swift",
    products: [
        .library(name: "Wire", targets: ["Wire"]),
        .library(name: "TCP", targets: ["TCP"]),
        .library(name: "PacketIO", targets: ["PacketIO"]),
        .library(name: "Simulation", targets: ["Simulation"]),
        .library(name: "Stack", targets: ["Stack"]),
        .executable(name: "mtcp-sim-demo", targets: ["SimDemo"]),
        .executable(name: "mtcp-echo", targets: ["EchoServer"]),
        .executable(name: "mtcp-httpd", targets: ["HTTPServer"]),
        .executable(name: "mtcp-load", targets: ["LoadGenerator"]),
        .executable(name: "mtcp-run", targets: ["MTCPRun"]),
        // LD_PRELOAD=libmtcp-preload.so puts unmodified programs on the stack.
        .library(name: "mtcp-preload", type: .dynamic, targets: ["Preload"]),
    ],
    targets: [
        .target(name: "Wire", swiftSettings: hotPath),
        .target(name: "TCP", dependencies: ["Wire"], swiftSettings: hotPath),
        .target(name: "CShim"),
        .target(name: "PacketIO", dependencies: ["Wire", "CShim"], swiftSettings: hotPath),
        .target(name: "Simulation", dependencies: ["Wire", "TCP"]),
        .target(name: "Stack", dependencies: ["Wire", "TCP", "PacketIO"], swiftSettings: hotPath),
        .target(name: "StackRuntime", dependencies: ["Stack", "PacketIO", "TCP", "Wire"], swiftSettings: example),
        .target(name: "CPreload", linkerSettings: [.linkedLibrary("dl")]),
        .target(
            name: "Preload", dependencies: ["CPreload", "CShim", "Stack", "StackRuntime", "PacketIO", "TCP", "Wire"],
            swiftSettings: hotPath + example,
            linkerSettings: [
                .unsafeFlags(["-static-stdlib", "-Xlinker", "--version-script=Sources/CPreload/exports.map"])
            ]),
        .executableTarget(name: "SimDemo", dependencies: ["Simulation", "TCP", "Wire"]),
        .executableTarget(
            name: "EchoServer", dependencies: ["StackRuntime", "Stack", "PacketIO", "TCP"], swiftSettings: example),
        .executableTarget(
            name: "HTTPServer", dependencies: ["StackRuntime", "Stack", "PacketIO", "TCP"], swiftSettings: example),
        .executableTarget(
            name: "LoadGenerator", dependencies: ["StackRuntime", "Stack", "PacketIO", "TCP", "Wire"],
            swiftSettings: example),
        .executableTarget(name: "MTCPRun", dependencies: ["StackRuntime"]),
        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "TCPTests", dependencies: ["TCP", "Wire", "Simulation"]),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation", "TCP", "Wire"]),
        .testTarget(name: "PacketIOTests", dependencies: ["PacketIO", "Wire", "CShim"]),
        .testTarget(name: "StackTests", dependencies: ["Stack", "PacketIO", "TCP", "Wire"]),
        .testTarget(name: "StackRuntimeTests", dependencies: ["StackRuntime", "Stack", "PacketIO", "Wire"]),
    ]
)
