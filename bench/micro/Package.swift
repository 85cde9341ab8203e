// swift-tools-version: 6.1
import PackageDescription

// Micro-benchmarks of the stack's hot path (package-benchmark). A package of its own, so that
// the main package's build and CI never fetch or build the benchmark framework.
//
//   cd bench/micro && swift package benchmark            # or: bash bench/run.sh --only micro
// A path dependency is known by its directory's name, which is the clone's name: find it.
let rootPackage = Context.packageDirectory.split(separator: "/").dropLast(2).last.map(String.init) ?? "mtcp-swift"

let package = Package(
    name: "mtcp-micro-benchmarks",
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "HotPath",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Wire", package: rootPackage),
                .product(name: "TCP", package: rootPackage),
                .product(name: "Stack", package: rootPackage),
                .product(name: "PacketIO", package: rootPackage),
                .product(name: "Telemetry", package: rootPackage),
            ],
            path: "Benchmarks/HotPath",
            swiftSettings: [.swiftLanguageMode(.v5)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
