#!/usr/bin/env bash
# The library must not change what it does not serve:
#   programs that never touch the network (bash, ls, python3, sort with threads, tar) print the
#   same output, errors and exit status with the library loaded (and enabled) as without it
#   with MTCP_ENABLE=0 (and MTCP_IFACE/MTCP_ADDR still set), networking programs get the
#   kernel's behaviour exactly: curl to a kernel server on loopback and in the peer namespace,
#   a refused connection, python3 socket errors, UDP
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

compat_setup cpass
say "library $([[ $COMPAT_MODE == preload ]] && echo "$COMPAT_PRELOAD" || echo "not loaded (kernel mode)") in $STACK_NS"

# A fixture for ls, sort and tar.
F="$WORK/fixture"
mkdir -p "$F/dir/sub"
printf 'alpha\nbeta\n' >"$F/dir/a.txt"
head -c 100000 /dev/urandom >"$F/dir/sub/random.bin"
ln -s a.txt "$F/dir/link"
# Half a million numbers in a fixed order: GNU sort spreads them over threads and temp files.
python3 -c "
import random
r = random.Random(7)
print('\n'.join(str(r.randrange(10**9)) for _ in range(500000)))" >"$F/numbers"
touch -d '2020-01-01 00:00:00' "$F/dir" "$F/dir/a.txt" "$F/dir/sub" "$F/dir/sub/random.bin"

# same_behaviour DESCRIPTION CMD...  runs CMD in the stack's namespace without the library and
# then on the stack (library loaded, STACK_EXTRA_ENV added); stdout, stderr and the exit status
# must be identical. STDIN_FILE, when set, is each run's standard input; EXPECT, when set, the
# exit status the run without the library must have (so that two equal failures do not pass).
same_behaviour() {
    local what="$1" i
    shift
    local -a status=()
    for i in 0 1; do
        local input="${STDIN_FILE:-/dev/null}"
        if ((i == 0)); then
            timeout -k 5 60 ip netns exec "$STACK_NS" "$@" <"$input" >"$WORK/out$i" 2>"$WORK/err$i"
        else
            on_stack 60 passthrough "$@" <"$input" >"$WORK/out$i" 2>"$WORK/err$i"
        fi
        status+=($?)
    done
    echo "exit status without the library ${status[0]}, with it ${status[1]}" >&2
    local ok=1
    [[ "${status[0]}" == "${status[1]}" ]] || ok=0
    if [[ -n "${EXPECT:-}" && "${status[0]}" != "$EXPECT" ]]; then
        echo "without the library the status is ${status[0]}, not the expected $EXPECT" >&2
        ok=0
    fi
    cmp -s "$WORK/out0" "$WORK/out1" || { echo "stdout differs:" >&2; diff "$WORK/out0" "$WORK/out1" | head -n 20 >&2; ok=0; }
    cmp -s "$WORK/err0" "$WORK/err1" || { echo "stderr differs:" >&2; diff "$WORK/err0" "$WORK/err1" | head -n 20 >&2; ok=0; }
    echo "$what: $(wc -c <"$WORK/out0") bytes of output" >&2
    ((ok))
}
same() {
    local expect="$1"
    shift
    EXPECT="$expect" check "same output and status: $1" same_behaviour "$@"
}

# --- Programs that never touch the network, library enabled. ---------------------------------
if [[ "$COMPAT_MODE" == preload ]]; then
    loaded() { on_stack 10 maps cat /proc/self/maps | grep -F "$COMPAT_PRELOAD" >&2; }
    check "the library is mapped into a program started with LD_PRELOAD" loaded
fi
set +e
same 3 "bash -c (loop, subshell, background job, exit 3)" bash -c \
    'for i in 1 2 3; do echo "line $i"; done; (echo sub >&2); sleep 0.1 & wait $!; echo "waited $?"; exit 3'
same 0 "ls -la --full-time of a fixture" ls -la --full-time "$F/dir" "$F/dir/sub"
same 2 "ls of a missing file (exit 2, message on stderr)" ls "$F/missing"
same 5 "python3 -c (hashlib, json, threads, stderr, exit 5)" python3 -c "
import hashlib, json, sys, threading
out = []
threads = [threading.Thread(target=lambda n=n: out.append(hashlib.sha256(b'x' * n).hexdigest())) for n in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps(sorted(out)))
print('to stderr', file=sys.stderr)
sys.exit(5)"
STDIN_FILE="$F/numbers" same 0 "sort -n --parallel=2 -S 1M of 500000 numbers on stdin" \
    sort -n --parallel=2 -S 1M -T "$WORK"
same 0 "tar -c of a fixture to stdout" tar -C "$F" --owner=0 --group=0 -cf - dir
tar -C "$F" -cf "$WORK/fixture.tar" dir
same 0 "tar -tv of an archive" tar -tvf "$WORK/fixture.tar"
same 0 "tar -x into a new directory, then diff -r" bash -c \
    "d=\$(mktemp -d '$WORK/x.XXXXXX') && tar -C \"\$d\" -xf '$WORK/fixture.tar' && diff -r '$F/dir' \"\$d/dir\" && echo same; s=\$?; rm -rf \"\$d\"; exit \$s"
set -e

# --- MTCP_ENABLE=0: the kernel's behaviour exactly. --------------------------------------------
# A second pair where the stack's namespace has a kernel address: with the library off, its
# programs must reach the peer through the kernel.
compat_setup cpas2
[[ "$COMPAT_MODE" == kernel ]] || netns_stack_kernel_address
STACK_EXTRA_ENV=(MTCP_ENABLE=0)
N="$WORK/nginx"
nginx_config "$N" "$PEER_ADDR:80"
make_www "$N/www"
in_peer 30 nginx -c "$N/nginx.conf" -p "$N" >"$WORK/nginx-start.log" 2>&1 || true
timeout -k 5 600 ip netns exec "$STACK_NS" python3 -m http.server --bind 127.0.0.1 \
    --directory "$N/www" 8000 >"$WORK/loopback-http.log" 2>&1 &
netns_track_pid $!
check "kernel nginx in $PEER_NS and a loopback http.server in $STACK_NS listen" bash -c \
    "$(declare -f wait_tcp_port netns_wait_for); wait_tcp_port '$PEER_NS' '$PEER_ADDR' 80 && wait_tcp_port '$STACK_NS' 127.0.0.1 8000"
set +e
same 0 "MTCP_ENABLE=0: curl 10 MiB from the peer's nginx (sha256)" bash -c \
    "set -o pipefail; curl -sS --fail --max-time 50 http://$PEER_ADDR/10m.bin | sha256sum"
same 0 "MTCP_ENABLE=0: curl from http.server on 127.0.0.1" \
    curl -sS --fail --max-time 20 "http://127.0.0.1:8000/index.html"
same 7 "MTCP_ENABLE=0: curl to a closed port (exit 7)" \
    curl -sS --max-time 20 -o /dev/null "http://$PEER_ADDR:81/"
same 0 "MTCP_ENABLE=0: python3 socket errors (refused, address in use, UDP on loopback)" python3 -c "
import errno, socket
def attempt(what, f):
    try:
        print(what, f())
    except OSError as e:
        print(what, type(e).__name__, errno.errorcode.get(e.errno))
attempt('connect closed port:', lambda: socket.create_connection(('$PEER_ADDR', 81), timeout=5) and 'connected')
a = socket.socket(); a.bind(('127.0.0.1', 0)); a.listen(1)
port = a.getsockname()[1]
attempt('bind in-use port:', lambda: socket.socket().bind(('127.0.0.1', port)) or 'bound')
c = socket.create_connection(('127.0.0.1', port)); s, _ = a.accept()
c.sendall(b'over tcp loopback'); print('tcp loopback:', s.recv(100))
u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u1.bind(('127.0.0.1', 0))
u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u2.sendto(b'datagram', u1.getsockname())
print('udp:', u1.recvfrom(100)[0])
attempt('connect to peer nginx:', lambda: socket.create_connection(('$PEER_ADDR', 80), timeout=5) and 'connected')
"
set -e
compat_finish
