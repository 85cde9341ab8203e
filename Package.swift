// swift-tools-version: 6.1
import Foundation
import PackageDescription

// Layers, lowest first; a target depends only on targets above it in this list.
//   Wire         zero-copy views and builders for Ethernet, ARP, IPv4, ICMP, TCP
//   TCP          the protocol as a pure state machine driven by an injected clock
//   CShim        C declarations Swift's Glibc lacks (if_packet.h, epoll, ioctl wrappers)
//   PacketIO     batched frame I/O: AF_PACKET rings, TAP, in-memory links, impairment
//   CDPDK        DPDK's inline and macro API behind plain C functions (stubs without libdpdk-dev)
//   PacketIODPDK the DPDK backend: EAL, ports with a queue pair per instance, symmetric RSS
//   Telemetry    what a process shows outside: the statistics region in shared memory, capture rings, pcapng
//   Stack        per-core instance: ARP, routes, ICMP echo, sockets and epoll over a PacketIO
//   StackRuntime options (flags and MTCP_* variables), backends and one thread per instance
//   PreloadState the preload library's plain data: socket records, descriptor entries, record tables
//   CPreload     the preload library's C side: real libc functions, descriptor table, variadic exports
//   Preload      libmtcp-preload.so: socket calls of unmodified programs routed to the stack
//   MTCPAPI      libmtcp.so: mTCP's C API (mtcp_socket, mtcp_epoll_wait...), headers in shim/include
//   Simulation   a deterministic, seeded network simulator for tests and the demo
// Executables: the simulation demo and the example programs on the stack's own API.
let hotPath: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"])
]
// The example programs share state between instance threads through Mutex and keep the
// Swift 5 language mode's lighter Sendable checking for their closures.
let example: [SwiftSetting] = [.swiftLanguageMode(.v5)]

// DPDK (Debian's libdpdk-dev 22.11). SwiftPM cannot read Debian's libdpdk.pc (a comment
// breaks its parser), so the flags are given here. Only CDPDK's C file sees DPDK's headers.
// Without the headers (or with MTCP_DPDK=0) CDPDK builds stubs that fail at run time, nothing
// links DPDK, and `--backend dpdk` says the backend was not built.
let dpdkBuilt =
    Context.environment["MTCP_DPDK"] != "0"
    && FileManager.default.fileExists(atPath: "/usr/include/dpdk/rte_ethdev.h")
#if arch(x86_64)
    let dpdkArchitecture = (triple: "x86_64-linux-gnu", flags: ["-march=corei7"])  // as libdpdk.pc
#else
    let dpdkArchitecture = (triple: "aarch64-linux-gnu", flags: [String]())
#endif
let dpdkC: [CSetting] =
    dpdkBuilt
    ? [.unsafeFlags(["-I/usr/include/dpdk", "-I/usr/include/\(dpdkArchitecture.triple)/dpdk"] + dpdkArchitecture.flags)]
    : []
// The libraries of `pkg-config --libs libdpdk` that CDPDK calls; the drivers (net_af_packet,
// net_tap, PCI NICs) are plugins the EAL loads from its plugin directory at rte_eal_init.
let dpdkLink: [LinkerSetting] =
    dpdkBuilt ? ["rte_ethdev", "rte_mbuf", "rte_mempool", "rte_bus_vdev", "rte_eal"].map { .linkedLibrary($0) } : []

let package = Package(
    name: "mtcp-swift",
    products: [
        .library(name: "Wire", targets: ["Wire"]),
        .library(name: "TCP", targets: ["TCP"]),
        .library(name: "PacketIO", targets: ["PacketIO"]),
        .library(name: "PacketIODPDK", targets: ["PacketIODPDK"]),
        .library(name: "Simulation", targets: ["Simulation"]),
        .library(name: "Stack", targets: ["Stack"]),
        .library(name: "Telemetry", targets: ["Telemetry"]),
        .executable(name: "mtcp-sim-demo", targets: ["SimDemo"]),
        .executable(name: "mtcp-echo", targets: ["EchoServer"]),
        .executable(name: "mtcp-httpd", targets: ["HTTPServer"]),
        .executable(name: "mtcp-load", targets: ["LoadGenerator"]),
        .executable(name: "mtcp-run", targets: ["MTCPRun"]),
        // What runs on the stack on this machine: processes, counters, sockets (shared memory).
        .executable(name: "mtcp-stat", targets: ["MTCPStat"]),
        // LD_PRELOAD=libmtcp-preload.so puts unmodified programs on the stack.
        .library(name: "mtcp-preload", type: .dynamic, targets: ["Preload"]),
        // C programs written for mTCP link with libmtcp.so and include shim/include.
        .library(name: "mtcp", type: .dynamic, targets: ["MTCPAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        .target(name: "Wire", swiftSettings: hotPath),
        .target(name: "TCP", dependencies: ["Wire"], swiftSettings: hotPath),
        .target(name: "CShim"),
        .target(name: "PacketIO", dependencies: ["Wire", "CShim"], swiftSettings: hotPath),
        .target(name: "CDPDK", cSettings: dpdkC, linkerSettings: dpdkLink),
        .target(
            name: "PacketIODPDK", dependencies: ["CDPDK", "PacketIO", "Wire"], swiftSettings: hotPath),
        .target(name: "Simulation", dependencies: ["Wire", "TCP"]),
        .target(name: "Telemetry", dependencies: ["CShim"], swiftSettings: hotPath),
        .target(
            name: "Stack", dependencies: ["Wire", "TCP", "CShim", "PacketIO", "Telemetry"], swiftSettings: hotPath),
        .target(
            name: "StackRuntime",
            dependencies: ["Stack", "PacketIO", "PacketIODPDK", "TCP", "Wire", "Telemetry", "CShim"],
            swiftSettings: example),
        .target(name: "PreloadState"),
        .target(name: "CPreload", linkerSettings: [.linkedLibrary("dl")]),
        .target(
            name: "Preload", dependencies: ["CPreload", "PreloadState", "CShim", "Stack", "StackRuntime", "PacketIO", "TCP", "Wire"],
            swiftSettings: hotPath + example,
            linkerSettings: [
                .unsafeFlags(["-static-stdlib", "-Xlinker", "--version-script=Sources/CPreload/exports.map"])
            ]),
        .target(
            name: "MTCPAPI", dependencies: ["CShim", "Stack", "StackRuntime", "PacketIO", "TCP", "Wire"],
            swiftSettings: hotPath + example,
            linkerSettings: [.unsafeFlags(["-static-stdlib", "-Xlinker", "--version-script=shim/libmtcp.map"])]),
        .executableTarget(name: "SimDemo", dependencies: ["Simulation", "TCP", "Wire"]),
        .executableTarget(
            name: "EchoServer", dependencies: ["StackRuntime", "Stack", "PacketIO", "TCP"], swiftSettings: example),
        .executableTarget(
            name: "HTTPServer", dependencies: ["StackRuntime", "Stack", "PacketIO", "TCP"], swiftSettings: example),
        .executableTarget(
            name: "LoadGenerator", dependencies: ["StackRuntime", "Stack", "PacketIO", "TCP", "Wire"],
            swiftSettings: example),
        .executableTarget(name: "MTCPRun", dependencies: ["StackRuntime"]),
        .executableTarget(
            name: "MTCPStat",
            dependencies: ["Telemetry", "Wire", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "TCPTests", dependencies: ["TCP", "Wire", "Simulation"]),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation", "TCP", "Wire"]),
        .testTarget(name: "PacketIOTests", dependencies: ["PacketIO", "Wire", "CShim"]),
        .testTarget(name: "PacketIODPDKTests", dependencies: ["PacketIODPDK", "PacketIO", "Wire"]),
        .testTarget(name: "StackTests", dependencies: ["Stack", "PacketIO", "TCP", "Wire", "CShim"]),
        .testTarget(name: "PreloadStateTests", dependencies: ["PreloadState"]),
        .testTarget(name: "TelemetryTests", dependencies: ["Telemetry"]),
        .testTarget(
            name: "StackRuntimeTests", dependencies: ["StackRuntime", "Stack", "PacketIO", "PacketIODPDK", "Wire"]),
    ]
)
