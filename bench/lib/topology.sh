# shellcheck shell=bash
# The namespaces, files and machine description of a benchmark run.
#
# Three veth pairs, made once per run and removed by netns_cleanup:
#   K_*  kernel to kernel: K_SRV_NS owns K_SRV_ADDR, K_CLI_NS owns K_CLI_ADDR
#   S_*  server on the stack (S_SRV_IF, S_SRV_ADDR in S_SRV_NS), client on the kernel (S_CLI_NS)
#   B_*  both ends on the stack: B_SRV_IF/B_SRV_ADDR in B_SRV_NS, B_CLI_IF/B_CLI_ADDR in B_CLI_NS
# Every pair has the same link settings (netns.sh turns offloads off on both ends), so the
# kernel and the stack see the same wire; --kernel-offloads turns them back on for the kernel.

# netns_setup_stack_pair comes with a later netns.sh; this stand-in makes the same pair
# from netns_setup --stack-ns by taking the kernel's address off the peer end.
if ! declare -F netns_setup_stack_pair >/dev/null; then
    netns_setup_stack_pair() {
        netns_setup --stack-ns "$1" || return 1
        ip netns exec "$PEER_NS" ip addr flush dev "$PEER_IF" || return 1
        _netns_silence_kernel "$PEER_NS" "$PEER_IF" || return 1
        export STACK_A_NS="$STACK_NS" STACK_A_IF="$STACK_IF" STACK_A_ADDR="$STACK_ADDR"
        export STACK_B_NS="$PEER_NS" STACK_B_IF="$PEER_IF" STACK_B_ADDR="$PEER_ADDR"
    }
fi

bench_topology() {
    netns_setup --stack-ns benchk >/dev/null
    netns_stack_kernel_address
    K_SRV_NS="$STACK_NS" K_SRV_ADDR="$STACK_ADDR" K_CLI_NS="$PEER_NS" K_CLI_ADDR="$PEER_ADDR"
    netns_setup --stack-ns benchs >/dev/null
    S_SRV_NS="$STACK_NS" S_SRV_IF="$STACK_IF" S_SRV_ADDR="$STACK_ADDR" S_CLI_NS="$PEER_NS" S_CLI_ADDR="$PEER_ADDR"
    S_CLI_IF="$PEER_IF" S_PREFIX="$PREFIX"
    K_CLI_IF="$(ip netns exec "$K_CLI_NS" ls /sys/class/net | grep -v '^lo$' | head -n 1)"
    netns_setup_stack_pair benchb >/dev/null
    B_SRV_NS="$STACK_A_NS" B_SRV_IF="$STACK_A_IF" B_SRV_ADDR="$STACK_A_ADDR"
    B_CLI_NS="$STACK_B_NS" B_CLI_IF="$STACK_B_IF" B_CLI_ADDR="$STACK_B_ADDR"
    if ((KERNEL_OFFLOADS)); then
        bench_kernel_offloads_on "$K_SRV_NS" "$(ip netns exec "$K_SRV_NS" ls /sys/class/net | grep -v '^lo$' | head -n 1)"
        bench_kernel_offloads_on "$K_CLI_NS" "$K_CLI_IF"
    fi
    # Each server address reaches its client: the pairs answer before any timing starts.
    ip netns exec "$K_CLI_NS" ping -c 1 -W 2 "$K_SRV_ADDR" >/dev/null
}

# bench_kernel_offloads_on NS IF  gives a kernel-only veth end back the offloads netns.sh
# turned off (--kernel-offloads): 64 KiB segments and no checksums on the wire, as the kernel
# runs on veth by default. The stack cannot use them, so this measures a different wire.
bench_kernel_offloads_on() {
    local feature
    for feature in tx rx tso gso gro sg; do
        ip netns exec "$1" ethtool -K "$2" "$feature" on >/dev/null 2>&1 || true
    done
    ip netns exec "$1" ip link set dev "$2" gso_max_segs 65535 >/dev/null 2>&1 || true
}

# Files served: 64 bytes and 8 KiB (the transactions), and the bulk file.
bench_files() {
    # Under /tmp: nginx's workers (www-data) must reach it whatever the clone's path allows.
    BENCH_TMP="$(mktemp -d /tmp/mtcp-bench.XXXXXX)"
    NETNS_CLEANUP_HOOKS+=("rm -rf '$BENCH_TMP'")
    WWW="$BENCH_TMP/www"
    mkdir -p "$WWW"
    chmod 755 "$BENCH_TMP" "$WWW"
    head -c 64 /dev/zero | tr '\0' 'a' >"$WWW/64.bin"
    head -c 8192 /dev/zero | tr '\0' 'b' >"$WWW/8k.bin"
    cp "$WWW/64.bin" "$WWW/index.html"
    # Sparse: nginx's sendfile reads zeros from the page cache, no disk traffic.
    truncate -s "${BULK_MIB}M" "$WWW/bulk.bin"
    chmod 644 "$WWW"/*
}

bench_machine() {
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpus: $(nproc)"
    echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "memory: $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel: $(uname -sr)"
    echo "swift: $(swift --version 2>/dev/null | sed -n 's/.*\(Swift version [^ ]*\).*/\1/p' | head -n 1)"
    echo "nginx: $(nginx -v 2>&1 | sed 's/.*nginx\///')"
    echo "wrk: $(wrk -v 2>&1 | sed -n '1s/^wrk \([^ ]*\).*/\1/p')"
    echo "redis: $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
    echo "link: veth pairs; $( ((KERNEL_OFFLOADS)) && echo "kernel pair with veth offloads (TSO/GSO/GRO, no checksums), stack pairs without" || echo "offloads off on every end: both TCPs send and receive MTU-sized frames with checksums")"
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min, at the start)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with local changes)')"
}

# bench_command TEXT  records a command line for the report (once per distinct line).
bench_command() {
    local file="$WORK/commands.txt"
    touch "$file"
    grep -qxF -- "$*" "$file" || echo "$*" >>"$file"
}
