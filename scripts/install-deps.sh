#!/usr/bin/env bash
# Installs what building, testing and the demo need on Debian 12, and finds the Swift toolchain.
#
#   bash scripts/install-deps.sh      # install and check, then exit
#   source scripts/install-deps.sh    # what test.sh and demo.sh do: defines the functions below;
#   mtcp_install_deps                 # then installs, checks and puts swift on PATH in this shell
#
# Repeated runs are fast: apt is not touched when every package is already installed.

# Every Debian package the project needs, in one list.
MTCP_APT_PACKAGES=(
    # C toolchain: the Swift driver links with the system's crt files, libgcc and libstdc++.
    gcc libc6-dev libgcc-12-dev libstdc++-12-dev binutils
    # Source control, and certificates for it.
    git ca-certificates
    # Shared libraries the Swift 6.3 toolchain's own binaries load (swift-build, lldb, ...).
    libcurl4 libxml2 libsqlite3-0 libncurses6 libedit2 libpython3.11 zlib1g-dev tzdata
    # Interop harness (tests/interop): namespaces, veths and tc; offloads; the tc eBPF
    # impairment's headers (linux/bpf.h: linux-libc-dev, via libc6-dev) and map access; kernel-side
    # peers of the self-test. Its compiler is the Swift toolchain's clang (BPF target built in).
    iproute2 ethtool libbpf-dev bpftool iputils-ping netcat-openbsd
    # Kernel-side peers of the interop tests: curl and nginx, and python3 for tcpcheck.py.
    curl nginx python3
    # Compatibility tests (compat-tests/): Debian's own programs under the preload library,
    # redis's test suite (Tcl; its source comes with `apt-get source`, which needs dpkg-dev),
    # ps for the checks on forked children.
    redis-server redis-tools memcached wrk tcl dpkg-dev procps
    # Servers that listen on :: by default, reached over IPv4 and IPv6
    # (compat-tests/test-ipv6-programs.sh): iperf3 -s, node's http, java's com.sun.net.httpserver.
    iperf3 nodejs openjdk-17-jdk-headless
    # Reading the stack's capture files (compat-tests/test-observability.sh).
    tshark
    # The DPDK backend (Debian's DPDK 22.11; its drivers, net_af_packet and net_tap among them,
    # come with libdpdk-dev). Package.swift builds it only when these headers are there, so it
    # must be installed before the first build (a build without them runs everything else).
    libdpdk-dev libnuma-dev
)

# The Swift release the package is written for (InlineArray, typed throws, `swift format`).
MTCP_SWIFT_MINIMUM="6.3"
# The release the project is built and tested with.
MTCP_SWIFT_RECOMMENDED="6.3.1"
# Where the toolchain is looked for when `swift` is not on PATH.
MTCP_SWIFT_BIN="${MTCP_SWIFT_BIN:-/opt/swift/usr/bin}"

# Prints the packages of MTCP_APT_PACKAGES that are not installed, one per line.
mtcp_missing_packages() {
    local package status
    for package in "${MTCP_APT_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null || true)"
        [[ "$status" == ii* ]] || echo "$package"
    done
}

# Installs missing packages: one `apt-get update`, then one non-interactive install.
mtcp_install_apt_packages() {
    local missing
    missing="$(mtcp_missing_packages)"
    if [[ -z "$missing" ]]; then
        echo "install-deps: all ${#MTCP_APT_PACKAGES[@]} Debian packages present"
        return 0
    fi
    if [[ "$(id -u)" != 0 ]]; then
        echo "install-deps: missing packages:" $missing >&2
        echo "install-deps: run as root (or install them yourself) on Debian 12" >&2
        return 1
    fi
    echo "install-deps: installing" $missing
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q </dev/null
    # Packages such as nginx start their service on install; the tests run their own copies in
    # network namespaces, so keep services from starting (and from failing where no init runs).
    local policy=/usr/sbin/policy-rc.d created=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created=1
    fi
    local status=0
    # shellcheck disable=SC2086 # one word per package
    apt-get install -y -q --no-install-recommends $missing </dev/null || status=$?
    if ((created)); then rm -f "$policy"; fi
    return "$status"
}

# Finds `swift` on PATH or in $MTCP_SWIFT_BIN, checks its version and puts it on PATH.
mtcp_find_swift() {
    if ! command -v swift >/dev/null 2>&1 && [[ -x "$MTCP_SWIFT_BIN/swift" ]]; then
        export PATH="$MTCP_SWIFT_BIN:$PATH"
    fi
    if ! command -v swift >/dev/null 2>&1; then
        cat >&2 <<MSG
install-deps: no Swift toolchain found (looked on PATH and in $MTCP_SWIFT_BIN).
Swift ${MTCP_SWIFT_MINIMUM} is not a Debian package and this script cannot download it. Install it once:
  1. download swift-${MTCP_SWIFT_RECOMMENDED}-RELEASE-debian12.tar.gz (x86_64; on arm64 ...-debian12-aarch64.tar.gz)
     from https://www.swift.org/install/linux/ (or copy it here from a machine that can);
  2. mkdir -p /opt/swift && tar -xzf swift-${MTCP_SWIFT_RECOMMENDED}-RELEASE-debian12.tar.gz -C /opt/swift --strip-components=1
  3. check: /opt/swift/usr/bin/swift --version
Then run this command again (or put the toolchain's usr/bin on PATH).
MSG
        return 1
    fi
    local version
    version="$(swift --version 2>/dev/null | sed -n 's/.*Swift version \([0-9][0-9.]*\).*/\1/p' | head -n 1)"
    if [[ -z "$version" ]] || ! printf '%s\n%s\n' "$MTCP_SWIFT_MINIMUM" "$version" | sort -V -C; then
        echo "install-deps: $(command -v swift) is Swift '${version:-unknown}'; Swift ${MTCP_SWIFT_MINIMUM} or later is needed" >&2
        echo "install-deps: install it in /opt/swift (see README.md) and put /opt/swift/usr/bin first on PATH" >&2
        return 1
    fi
    echo "install-deps: Swift $version at $(command -v swift)"
}

# Everything: Debian packages, then the Swift toolchain.
mtcp_install_deps() {
    mtcp_install_apt_packages
    mtcp_find_swift
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    mtcp_install_deps
fi
