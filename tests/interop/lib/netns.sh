# shellcheck shell=bash
# Network namespaces and veth pairs for interop tests: our stack on one end of a veth, the
# Linux kernel's TCP on the other. Source it, then:
#
#   source tests/interop/lib/netns.sh
#   netns_setup mytest                 # or: netns_setup --stack-ns mytest
#                                      # (netns_setup_stack_pair: a stack on both ends)
#   netns_spawn nginx -g 'daemon off;' >"$log" 2>&1
#   our-stack --interface "$STACK_IF" --address "$STACK_ADDR" ...
#   netns_exec curl "http://$STACK_ADDR/"
#   impair_attach "$PEER_IF" 10 5 2    # per mille: loss, duplicate, corrupt (TCP only)
#
# Everything created here has names unique to this shell ($$ and a counter) and is removed by
# netns_cleanup, which netns_setup installs on EXIT, INT and TERM (SIGKILL cannot be caught:
# netns_sweep_stale removes what a killed run left). Needs root, iproute2, ethtool; the
# impairment also needs clang with the BPF target, libbpf-dev and (for run-time rates and the
# counters) bpftool. See tests/interop/README.md.

# --- State of this shell's harness (one test script = one shell). -------------------------
_NETNS_COUNTER=0
_NETNS_NAMESPACES=()     # namespaces created, deleted by netns_cleanup
_NETNS_ROOT_LINKS=()     # veth ends left in the root namespace
_NETNS_PIDS=()           # processes started by netns_spawn/netns_stack_spawn or tracked
_NETNS_IMPAIRED=()       # "namespace|interface" with the impair filter attached
_NETNS_TMPDIR=""         # per-run scratch directory (the compiled BPF object)
_NETNS_CLEANED=1
_NETNS_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Commands run by netns_cleanup before anything is removed (a test's own clean-up).
NETNS_CLEANUP_HOOKS=()
# When 1, netns_cleanup prints netns_diag first if the script is exiting with a failure.
NETNS_DIAG_ON_FAILURE="${NETNS_DIAG_ON_FAILURE:-1}"
# Upper bound, in tenths of a second, on waiting for spawned processes to exit after SIGTERM.
NETNS_KILL_WAIT_TENTHS="${NETNS_KILL_WAIT_TENTHS:-30}"

_netns_log() { echo "netns: $*" >&2; }

# Runs CMD... in namespace NS, or in the root namespace when NS is empty.
_netns_in() {
    local ns="$1"
    shift
    if [[ -z "$ns" ]]; then
        "$@"
    else
        ip netns exec "$ns" "$@"
    fi
}

# Turns off checksum offload and segmentation/receive coalescing on IFACE (in NS), so that
# frames on the wire are at most one MTU and carry finished checksums. Features the driver
# does not have are skipped. The kernel's TCP builds multi-segment (GSO) packets even with
# gso off, segmenting them in software after tc egress; gso_max_segs 1 makes it send one
# segment per packet, so that the egress impairment drops or corrupts single segments.
_netns_offloads_off() {
    local ns="$1" iface="$2" feature
    for feature in tx rx tso gso gro lro ufo sg; do
        _netns_in "$ns" ethtool -K "$iface" "$feature" off >/dev/null 2>&1 || true
    done
    _netns_in "$ns" ip link set dev "$iface" gso_max_segs 1 >/dev/null 2>&1 || true
}

# Keeps the kernel of NS from ever speaking for IFACE: no IPv6 (no link-local address, DAD,
# router solicitations), no ARP replies, no forwarding of frames that arrive on it.
_netns_silence_kernel() {
    local ns="$1" iface="$2"
    _netns_in "$ns" sysctl -q -w "net.ipv6.conf.$iface.disable_ipv6=1" >/dev/null
    _netns_in "$ns" sysctl -q -w "net.ipv4.conf.$iface.arp_ignore=8" >/dev/null
    _netns_in "$ns" sysctl -q -w "net.ipv4.conf.$iface.forwarding=0" >/dev/null
    _netns_in "$ns" sysctl -q -w "net.ipv4.conf.$iface.accept_local=0" >/dev/null || true
}

# netns_setup [--stack-ns] PREFIX
# Creates a namespace with a veth pair. Exports:
#   PEER_NS    namespace of the kernel side; PEER_IF its interface, address PEER_ADDR/24
#   STACK_IF   the stack's interface: up, no IPv4 address, IPv6 off (root namespace, or
#              STACK_NS with --stack-ns); STACK_ADDR the address the stack should use
#   STACK_NS   "" or the stack's own namespace;  PREFIX  the 10.77.X network (10.77.X)
#   PEER_MAC, STACK_MAC  the interfaces' MAC addresses
# May be called more than once per shell; each call makes a new pair and overwrites the
# variables (copy them first).
netns_setup() {
    local stack_ns_wanted=0
    if [[ "${1:-}" == "--stack-ns" ]]; then
        stack_ns_wanted=1
        shift
    fi
    local prefix="${1:-mt}"
    prefix="$(printf '%s' "$prefix" | tr -cd 'a-zA-Z0-9' | cut -c1-5)"
    [[ -n "$prefix" ]] || prefix="mt"
    if [[ "$(id -u)" != 0 ]]; then
        _netns_log "netns_setup needs root"
        return 1
    fi
    _netns_install_trap
    _NETNS_CLEANED=0
    if [[ -z "$_NETNS_TMPDIR" ]]; then
        _NETNS_TMPDIR="$(mktemp -d "/tmp/netns-$prefix-$$.XXXXXX")"
    fi

    _NETNS_COUNTER=$((_NETNS_COUNTER + 1))
    local base="$prefix$$n$_NETNS_COUNTER"
    # Interface names are at most 15 bytes.
    if ((${#base} + 1 > 15)); then
        base="${base: -14}"
    fi
    local peer_ns="mtcp-$prefix-$$-$_NETNS_COUNTER-peer"
    local stack_ns=""
    ((stack_ns_wanted)) && stack_ns="mtcp-$prefix-$$-$_NETNS_COUNTER-stack"
    local stack_if="${base}s" peer_if="${base}p"
    local octet=$((RANDOM % 250 + 2))

    _NETNS_NAMESPACES+=("$peer_ns")
    ip netns add "$peer_ns" || return 1
    if [[ -n "$stack_ns" ]]; then
        _NETNS_NAMESPACES+=("$stack_ns")
        ip netns add "$stack_ns" || return 1
        _netns_in "$stack_ns" ip link set lo up || return 1
    else
        _NETNS_ROOT_LINKS+=("$stack_if")
    fi
    if [[ -n "$stack_ns" ]]; then
        ip link add "$stack_if" netns "$stack_ns" type veth peer name "$peer_if" netns "$peer_ns" ||
            return 1
    else
        ip link add "$stack_if" type veth peer name "$peer_if" netns "$peer_ns" || return 1
    fi

    _netns_silence_kernel "$stack_ns" "$stack_if" || return 1
    _netns_in "$peer_ns" sysctl -q -w "net.ipv6.conf.$peer_if.disable_ipv6=1" >/dev/null || true
    _netns_offloads_off "$stack_ns" "$stack_if"
    _netns_offloads_off "$peer_ns" "$peer_if"
    _netns_in "$peer_ns" ip link set lo up || return 1
    _netns_in "$peer_ns" ip addr add "10.77.$octet.1/24" dev "$peer_if" || return 1
    _netns_in "$peer_ns" ip link set "$peer_if" up || return 1
    _netns_in "$stack_ns" ip link set "$stack_if" up || return 1

    export PEER_NS="$peer_ns" PEER_IF="$peer_if" STACK_IF="$stack_if" STACK_NS="$stack_ns"
    export PREFIX="10.77.$octet" PEER_ADDR="10.77.$octet.1" STACK_ADDR="10.77.$octet.2"
    PEER_MAC="$(_netns_in "$peer_ns" cat "/sys/class/net/$peer_if/address")"
    STACK_MAC="$(_netns_in "$stack_ns" cat "/sys/class/net/$stack_if/address")"
    export PEER_MAC STACK_MAC
    _netns_log "set up: $STACK_IF (${STACK_NS:-root namespace}, $STACK_ADDR for the stack)" \
        "<-> $PEER_IF ($PEER_NS, $PEER_ADDR)"
}


# netns_setup_stack_pair PREFIX
# Two namespaces joined by a veth, for a stack on each end (e.g. a client and a server both
# on the stack). Neither end has a kernel IPv4 address; both are silenced like STACK_IF and
# have offloads off. Exports, for X in A and B:
#   STACK_X_NS  the namespace (lo up);  STACK_X_IF  its veth end (up);  STACK_X_MAC
#   STACK_X_ADDR  the address that end's stack should use (A is 10.77.N.1, B is 10.77.N.2)
#   STACK_PAIR_PREFIX  the 10.77.N network
# Cleaned up with the rest; may be called more than once (variables overwritten).
netns_setup_stack_pair() {
    local prefix="${1:-mt}"
    prefix="$(printf '%s' "$prefix" | tr -cd 'a-zA-Z0-9' | cut -c1-5)"
    [[ -n "$prefix" ]] || prefix="mt"
    if [[ "$(id -u)" != 0 ]]; then
        _netns_log "netns_setup_stack_pair needs root"
        return 1
    fi
    _netns_install_trap
    _NETNS_CLEANED=0
    if [[ -z "$_NETNS_TMPDIR" ]]; then
        _NETNS_TMPDIR="$(mktemp -d "/tmp/netns-$prefix-$$.XXXXXX")"
    fi

    _NETNS_COUNTER=$((_NETNS_COUNTER + 1))
    local base="$prefix$$n$_NETNS_COUNTER"
    if ((${#base} + 1 > 15)); then
        base="${base: -14}"
    fi
    local a_ns="mtcp-$prefix-$$-$_NETNS_COUNTER-stacka" b_ns="mtcp-$prefix-$$-$_NETNS_COUNTER-stackb"
    local a_if="${base}a" b_if="${base}b" ns iface
    local octet=$((RANDOM % 250 + 2))

    for ns in "$a_ns" "$b_ns"; do
        _NETNS_NAMESPACES+=("$ns")
        ip netns add "$ns" || return 1
        _netns_in "$ns" ip link set lo up || return 1
    done
    ip link add "$a_if" netns "$a_ns" type veth peer name "$b_if" netns "$b_ns" || return 1
    for ns in "$a_ns" "$b_ns"; do
        iface="$a_if"
        [[ "$ns" == "$b_ns" ]] && iface="$b_if"
        _netns_silence_kernel "$ns" "$iface" || return 1
        _netns_offloads_off "$ns" "$iface"
        _netns_in "$ns" ip link set "$iface" up || return 1
    done

    export STACK_A_NS="$a_ns" STACK_A_IF="$a_if" STACK_A_ADDR="10.77.$octet.1"
    export STACK_B_NS="$b_ns" STACK_B_IF="$b_if" STACK_B_ADDR="10.77.$octet.2"
    export STACK_PAIR_PREFIX="10.77.$octet"
    STACK_A_MAC="$(_netns_in "$a_ns" cat "/sys/class/net/$a_if/address")"
    STACK_B_MAC="$(_netns_in "$b_ns" cat "/sys/class/net/$b_if/address")"
    export STACK_A_MAC STACK_B_MAC
    _netns_log "set up: $STACK_A_IF ($STACK_A_NS, $STACK_A_ADDR for a stack)" \
        "<-> $STACK_B_IF ($STACK_B_NS, $STACK_B_ADDR for a stack)"
}

# netns_stack_pair_kernel_addresses  (self-tests and kernel baselines only) lets the kernels
# of STACK_A_NS and STACK_B_NS own STACK_A_ADDR and STACK_B_ADDR, so kernel talks to kernel.
netns_stack_pair_kernel_addresses() {
    if [[ -z "${STACK_A_NS:-}" || -z "${STACK_B_NS:-}" ]]; then
        _netns_log "netns_stack_pair_kernel_addresses needs netns_setup_stack_pair"
        return 1
    fi
    _netns_in "$STACK_A_NS" sysctl -q -w "net.ipv4.conf.$STACK_A_IF.arp_ignore=0" >/dev/null &&
        _netns_in "$STACK_A_NS" ip addr add "$STACK_A_ADDR/24" dev "$STACK_A_IF" &&
        _netns_in "$STACK_B_NS" sysctl -q -w "net.ipv4.conf.$STACK_B_IF.arp_ignore=0" >/dev/null &&
        _netns_in "$STACK_B_NS" ip addr add "$STACK_B_ADDR/24" dev "$STACK_B_IF"
}


# netns_stack_kernel_address  (harness self-tests only) lets the kernel of STACK_NS own
# STACK_ADDR on STACK_IF, so that kernel talks to kernel across the pair. Needs --stack-ns:
# in the root namespace the address would clash with a stack on the same machine.
netns_stack_kernel_address() {
    if [[ -z "${STACK_NS:-}" ]]; then
        _netns_log "netns_stack_kernel_address needs netns_setup --stack-ns"
        return 1
    fi
    _netns_in "$STACK_NS" sysctl -q -w "net.ipv4.conf.$STACK_IF.arp_ignore=0" >/dev/null &&
        _netns_in "$STACK_NS" ip addr add "$STACK_ADDR/24" dev "$STACK_IF"
}
# netns_exec CMD...  runs CMD in the peer (kernel) namespace.
netns_exec() {
    ip netns exec "$PEER_NS" "$@"
}

# netns_stack_exec CMD...  runs CMD where the stack's interface is (STACK_NS or root).
netns_stack_exec() {
    _netns_in "$STACK_NS" "$@"
}

# netns_spawn CMD...  starts CMD in the background in the peer namespace; its PID is recorded
# for netns_cleanup and left in NETNS_LAST_PID. Redirect its output at the call.
netns_spawn() {
    ip netns exec "$PEER_NS" "$@" &
    NETNS_LAST_PID=$!
    _NETNS_PIDS+=("$NETNS_LAST_PID")
}

# netns_stack_spawn CMD...  like netns_spawn, where the stack's interface is.
netns_stack_spawn() {
    _netns_in "$STACK_NS" "$@" &
    NETNS_LAST_PID=$!
    _NETNS_PIDS+=("$NETNS_LAST_PID")
}

# netns_track_pid PID...  has netns_cleanup end processes started some other way.
netns_track_pid() {
    _NETNS_PIDS+=("$@")
}

# netns_set_sysctl KEY VALUE  sets a sysctl in the peer namespace (e.g. net.ipv4.tcp_sack 0).
# net.ipv4.* and net.core.* settings of a namespace die with it.
netns_set_sysctl() {
    ip netns exec "$PEER_NS" sysctl -q -w "$1=$2" >/dev/null
}

# netns_wait_for COUNT CMD...  runs CMD up to COUNT times, 0.1 s apart, until it succeeds.
netns_wait_for() {
    local tries="$1" i
    shift
    for ((i = 0; i < tries; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# netns_diag  prints interface counters, addresses, qdiscs and impairment counters of every
# namespace and root-side interface this shell created.
netns_diag() {
    local ns link entry
    echo "=== netns_diag ($(date +%T)) ==="
    for link in "${_NETNS_ROOT_LINKS[@]}"; do
        ip link show dev "$link" >/dev/null 2>&1 || continue
        echo "--- root namespace: $link"
        ip -s link show dev "$link"
        tc -s qdisc show dev "$link" 2>/dev/null
    done
    for ns in "${_NETNS_NAMESPACES[@]}"; do
        ip netns list 2>/dev/null | grep -qw "^$ns" || continue
        echo "--- namespace $ns"
        ip -n "$ns" -s link show
        ip -n "$ns" -br addr show
        ip -n "$ns" neigh show
        ip netns exec "$ns" nstat -az 2>/dev/null |
            grep -E '^(TcpRetransSegs|TcpInErrs|TcpInCsumErrors|TcpOutRsts|TcpExtTCPSackRecovery|IcmpInErrors) ' || true
    done
    for entry in "${_NETNS_IMPAIRED[@]}"; do
        link="${entry#*|}"
        echo "--- impair $link: $(impair_counters "${link%|*}" 2>/dev/null)"
    done
    echo "=== end of netns_diag ==="
}

# Ends the processes recorded by netns_spawn and every process still in our namespaces.
_netns_kill_all() {
    local pid ns alive i
    local -a pids=("${_NETNS_PIDS[@]}")
    for ns in "${_NETNS_NAMESPACES[@]}"; do
        [[ -e "/run/netns/$ns" ]] || continue
        # shellcheck disable=SC2207 # PIDs are words
        pids+=($(ip netns pids "$ns" 2>/dev/null))
    done
    ((${#pids[@]})) || return 0
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for ((i = 0; i < NETNS_KILL_WAIT_TENTHS; i++)); do
        alive=0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    # Reap our own children so that no zombie keeps a PID.
    for pid in "${_NETNS_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    _NETNS_PIDS=()
}

# netns_cleanup  removes everything this shell created; safe to call any number of times.
netns_cleanup() {
    local status=$? hook ns link
    ((_NETNS_CLEANED)) && return 0
    _NETNS_CLEANED=1
    if ((status != 0)) && [[ "$NETNS_DIAG_ON_FAILURE" == 1 ]]; then
        netns_diag >&2 2>&1 || true
    fi
    for hook in "${NETNS_CLEANUP_HOOKS[@]}"; do
        eval "$hook" || true
    done
    impair_detach >/dev/null 2>&1 || true
    _netns_kill_all
    for ns in "${_NETNS_NAMESPACES[@]}"; do
        [[ -e "/run/netns/$ns" ]] && ip netns del "$ns" 2>/dev/null
    done
    for link in "${_NETNS_ROOT_LINKS[@]}"; do
        # Gone with its peer's namespace as a rule; this covers a pair whose peer never moved.
        ip link del "$link" 2>/dev/null || true
    done
    _NETNS_NAMESPACES=()
    _NETNS_ROOT_LINKS=()
    if [[ -n "$_NETNS_TMPDIR" && -d "$_NETNS_TMPDIR" ]]; then
        rm -rf "$_NETNS_TMPDIR"
    fi
    _NETNS_TMPDIR=""
    return 0
}

_netns_on_signal() {
    local code="$1"
    trap - INT TERM
    netns_cleanup
    trap - EXIT
    exit "$code"
}

_netns_install_trap() {
    trap 'netns_cleanup' EXIT
    trap '_netns_on_signal 130' INT
    trap '_netns_on_signal 143' TERM
    trap '_netns_on_signal 129' HUP
}

# netns_sweep_stale [PREFIX]  deletes namespaces made by this library whose creating shell
# is no longer alive (left by a run that got SIGKILL). PREFIX narrows it to one test.
netns_sweep_stale() {
    local prefix="${1:-}" ns pid
    local -a dead=()
    prefix="$(printf '%s' "$prefix" | tr -cd 'a-zA-Z0-9' | cut -c1-5)"
    while read -r ns _; do
        [[ "$ns" =~ ^mtcp-([a-zA-Z0-9]+)-([0-9]+)-[0-9]+-(peer|stack|stacka|stackb)$ ]] || continue
        [[ -z "$prefix" || "${BASH_REMATCH[1]}" == "$prefix" ]] || continue
        pid="${BASH_REMATCH[2]}"
        [[ -d "/proc/$pid" ]] && continue
        _netns_log "removing stale namespace $ns"
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
        dead+=("${BASH_REMATCH[1]}${BASH_REMATCH[2]}n")
    done < <(ip netns list 2>/dev/null)
    # Root-side veth ends go with their peers, but only once the kernel has finished the
    # namespace's deletion in the background: remove them now.
    local link stem
    while read -r link; do
        for stem in "${dead[@]}"; do
            [[ "$link" =~ ^${stem}[0-9]+s$ ]] || continue
            ip link del "$link" 2>/dev/null || true
        done
    done < <(ip -o link show type veth 2>/dev/null | sed -n 's/^[0-9]*: \([^@:]*\).*/\1/p')
    # Scratch directories of dead runs.
    local dir
    for dir in /tmp/netns-*; do
        [[ -d "$dir" && "${dir##*/}" =~ ^netns-([a-zA-Z0-9]+)-([0-9]+)\.[a-zA-Z0-9]{6}$ ]] || continue
        [[ -z "$prefix" || "${BASH_REMATCH[1]}" == "$prefix" ]] || continue
        [[ -d "/proc/${BASH_REMATCH[2]}" ]] || rm -rf "$dir"
    done
}

# --- Impairment: impair.c on an interface's egress. ----------------------------------------

# Namespace ("" for root) that holds IFACE among the ones this shell created.
_impair_ns_of() {
    local iface="$1" ns
    if [[ "$iface" == "${PEER_IF:-}" ]]; then
        echo "$PEER_NS"
        return 0
    fi
    if [[ "$iface" == "${STACK_IF:-}" ]]; then
        echo "${STACK_NS:-}"
        return 0
    fi
    for ns in "${_NETNS_NAMESPACES[@]}"; do
        if ip -n "$ns" link show dev "$iface" >/dev/null 2>&1; then
            echo "$ns"
            return 0
        fi
    done
    if ip link show dev "$iface" >/dev/null 2>&1; then
        echo ""
        return 0
    fi
    _netns_log "no interface $iface in this test's namespaces"
    return 1
}

# Prints a u32 as the four little-endian byte values bpftool takes.
_impair_u32_bytes() {
    local v="$1"
    echo "$((v & 255)) $(((v >> 8) & 255)) $(((v >> 16) & 255)) $(((v >> 24) & 255))"
}

# Prints the IDs "prog cfg_map stats_map" of the impair filter on IFACE's egress.
_impair_ids() {
    local iface="$1" ns prog maps map cfg="" stats=""
    ns="$(_impair_ns_of "$iface")" || return 1
    prog="$( (_netns_in "$ns" tc filter show dev "$iface" egress
        _netns_in "$ns" tc filter show dev "$iface" ingress) 2>/dev/null |
        sed -n 's/.* id \([0-9][0-9]*\) .*/\1/p' | head -n 1)"
    [[ -n "$prog" ]] || return 1
    maps="$(bpftool prog show id "$prog" 2>/dev/null | sed -n 's/.*map_ids \([0-9,]*\).*/\1/p')"
    for map in ${maps//,/ }; do
        case "$(bpftool map show id "$map" 2>/dev/null | head -n 1)" in
            *" name impair_cfg "*) cfg="$map" ;;
            *" name impair_stats "*) stats="$map" ;;
        esac
    done
    [[ -n "$cfg" && -n "$stats" ]] || return 1
    echo "$prog $cfg $stats"
}

# impair_set IFACE LOSS DUP CORRUPT [IPPROTO]  changes the rates of an attached filter.
impair_set() {
    local iface="$1" loss="$2" dup="$3" corrupt="$4" proto="${5:-6}" ids cfg key value
    local ingress=0 entry
    for entry in "${_NETNS_IMPAIRED[@]}"; do
        [[ "$entry" == *"|$iface|ingress" ]] && ingress=1
    done
    ids="$(_impair_ids "$iface")" || {
        _netns_log "impair_set: no impair filter with maps on $iface"
        return 1
    }
    cfg="$(echo "$ids" | cut -d' ' -f2)"
    [[ "$proto" == 6 ]] && proto=0
    local -a values=("$loss" "$dup" "$corrupt" "$proto" 1 "$ingress")
    for key in 0 1 2 3 4 5; do
        value="${values[$key]}"
        # shellcheck disable=SC2046 # bytes are separate words
        bpftool map update id "$cfg" key $(_impair_u32_bytes "$key") \
            value $(_impair_u32_bytes "$value") || return 1
    done
}

# impair_attach [--ingress] IFACE LOSS DUP CORRUPT [IPPROTO]
# --ingress: on frames arriving at IFACE instead (PEER_IF ingress impairs stack->kernel
# traffic whatever way the stack sends; useless on STACK_IF, whose packet socket sees frames
# before tc ingress). Drops, duplicates and corrupts IPv4 packets of protocol IPPROTO (6, TCP, by default; 255 for
# every IPv4 packet; ARP always passes) leaving IFACE, each with the given per-mille chance.
# With bpftool the rates live in a map (impair_set changes them later); without it they are
# compiled into the object and impair_counters cannot read anything.
impair_attach() {
    local direction=egress
    if [[ "${1:-}" == "--ingress" ]]; then
        direction=ingress
        shift
    fi
    local iface="$1" loss="$2" dup="$3" corrupt="$4" proto="${5:-6}" ns object
    if (($# < 4)); then
        _netns_log "usage: impair_attach IFACE LOSS DUP CORRUPT [IPPROTO]"
        return 1
    fi
    ns="$(_impair_ns_of "$iface")" || return 1
    if [[ -z "$_NETNS_TMPDIR" ]]; then
        _NETNS_TMPDIR="$(mktemp -d "/tmp/netns-impair-$$.XXXXXX")"
    fi
    local -a defines=()
    if command -v bpftool >/dev/null 2>&1; then
        object="$_NETNS_TMPDIR/impair.o"
    else
        object="$_NETNS_TMPDIR/impair-$loss-$dup-$corrupt-$proto.o"
        [[ "$proto" == 6 ]] && proto=0
        defines=(-DIMPAIR_LOSS="$loss" -DIMPAIR_DUP="$dup" -DIMPAIR_CORRUPT="$corrupt"
            -DIMPAIR_PROTO="$proto" -DIMPAIR_INGRESS=$([[ $direction == ingress ]] && echo 1 || echo 0))
        object="${object%.o}-$direction.o"
        _netns_log "impair_attach: no bpftool, rates compiled in and counters unavailable"
    fi
    if [[ ! -f "$object" ]]; then
        bash "$_NETNS_LIB_DIR/../bpf/build.sh" "$object" "${defines[@]}" >/dev/null || return 1
    fi
    impair_detach "$iface" >/dev/null 2>&1 || true
    _netns_in "$ns" tc qdisc add dev "$iface" clsact || return 1
    _NETNS_IMPAIRED+=("$ns|$iface|$direction")
    _netns_in "$ns" tc filter add dev "$iface" "$direction" bpf da obj "$object" sec tc ||
        return 1
    if command -v bpftool >/dev/null 2>&1; then
        impair_set "$iface" "$loss" "$dup" "$corrupt" "${5:-6}" || return 1
    fi
    _netns_log "impair $iface $direction: loss ${loss}‰ duplicate ${dup}‰ corrupt ${corrupt}‰ (IP protocol ${5:-6})"
}

# impair_detach [IFACE]  removes the filter (and clsact qdisc) from IFACE, or from every
# interface this shell impaired.
impair_detach() {
    local target="${1:-}" entry ns iface
    local -a kept=()
    for entry in "${_NETNS_IMPAIRED[@]}"; do
        ns="${entry%%|*}"
        iface="${entry#*|}"
        iface="${iface%|*}"
        if [[ -n "$target" && "$iface" != "$target" ]]; then
            kept+=("$entry")
            continue
        fi
        _netns_in "$ns" tc qdisc del dev "$iface" clsact 2>/dev/null || true
    done
    _NETNS_IMPAIRED=("${kept[@]}")
}

# impair_counters IFACE  prints "seen=N dropped=N duplicated=N corrupted=N passed=N".
impair_counters() {
    local iface="$1" ids stats key out="" value
    command -v bpftool >/dev/null 2>&1 || {
        echo "counters unavailable (no bpftool)"
        return 1
    }
    ids="$(_impair_ids "$iface")" || return 1
    stats="$(echo "$ids" | cut -d' ' -f3)"
    local -a names=(seen dropped duplicated corrupted passed)
    for key in 0 1 2 3 4; do
        # shellcheck disable=SC2046 # bytes are separate words
        value="$(bpftool map lookup id "$stats" key $(_impair_u32_bytes "$key") 2>/dev/null |
            sed -n 's/.*"value": *\([0-9][0-9]*\).*/\1/p' | head -n 1)"
        out+="${out:+ }${names[$key]}=${value:-?}"
    done
    echo "$out"
}

# impair_counter IFACE NAME  prints one counter (seen, dropped, duplicated, corrupted, passed).
impair_counter() {
    impair_counters "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
