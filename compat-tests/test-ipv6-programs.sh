#!/usr/bin/env bash
# Unmodified programs that listen on :: (AF_INET6) by default, reached from the kernel peer over
# IPv4 and over IPv6 (issue 12, second part; compat_enable_ipv6 gives the link IPv6):
#   iperf3 -s (:: dual-stack): iperf3 -c -t 2 over -4 and -6, bytes arrive, the server saw the
#     peer's own addresses;
#   node's http.createServer().listen(8080) (:: dual-stack): curl -4 and -6 get "hi";
#   a Java com.sun.net.httpserver server (java Server.java; the JVM's sockets are AF_INET6):
#     curl -4 and -6 get its answer, which names the client address Java saw;
#   python3 -m http.server with its default bind (getaddrinfo(None, port, AI_PASSIVE): 0.0.0.0
#     on Debian, which this test reports) and with --bind :: (its DualStackServer);
#   nginx with `listen [::]:8080 ipv6only=off`, 1 worker: 1 MiB byte-exact over -4 and -6, the
#     access log shows ::ffff:PEER and PEER6;
#   redis-server with its default bind (`bind * -::*`: 0.0.0.0 and a v6-only :: listener on one
#     port): redis-cli -h over -4 and -6 SET/GET, CLIENT INFO shows the peer's own address.
# With the library every connection is counted by the program's stack (passive_opens of its
# statistics regions, mtcp-stat); in kernel mode the same checks without the counters.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

compat_setup cipv6
if ! compat_enable_ipv6; then
    fail "IPv6 on the link (compat_enable_ipv6)"
    compat_finish
    exit
fi
say "stack side ($COMPAT_MODE) in $STACK_NS: $STACK_ADDR and $STACK_ADDR6; peer in $PEER_NS: $PEER_ADDR and $PEER_ADDR6"
MTCP_STAT="${MTCP_STAT:-$(dirname "${COMPAT_PRELOAD:-.}")/mtcp-stat}"
if [[ "$COMPAT_MODE" == preload && ! -x "$MTCP_STAT" ]]; then
    fail "mtcp-stat is built next to the library ($MTCP_STAT)"
    compat_finish
    exit
fi
mkdir -p "$WORK/regions"
chmod 1777 "$WORK/regions"
STARTED=$SECONDS

# regions_for LABEL  has the next programs publish their statistics regions in a directory of
# their own (all their processes: nginx's master and worker), named in REGION.
regions_for() {
    REGION="$WORK/regions/$1"
    mkdir -p "$REGION"
    chmod 1777 "$REGION"
    # shellcheck disable=SC2034 # read by stack_command (lib/common.sh)
    STACK_EXTRA_ENV=(MTCP_STATS_DIR="$REGION")
}

# stack_opens DIR  passive_opens summed over the processes whose regions are in DIR (empty when
# there is no region).
stack_opens() {
    "$MTCP_STAT" --dir "$1" --json 2>/dev/null | python3 -c '
import json, sys
procs = json.load(sys.stdin)["processes"]
if procs:
    print(sum(int(p["counters"].get("passive_opens", 0)) for p in procs))
'
}

# opens_grew DIR BEFORE WHAT  waits (up to 3 s: a region is written at most 200 ms after a change)
# until the processes of DIR counted more passive opens than BEFORE.
opens_grew() {
    local dir="$1" before="${2:-0}" what="$3" now="" i
    for ((i = 0; i < 30; i++)); do
        now="$(stack_opens "$dir")"
        [[ -n "$now" && "$now" -gt "$before" ]] && break
        sleep 0.1
    done
    echo "$what: passive_opens $before -> ${now:-no region}" >&2
    "$MTCP_STAT" --dir "$dir" --sockets >&2 2>&1 || true
    [[ -n "$now" && "$now" -gt "$before" ]]
}

# over FAMILY WHAT CMD...  runs the check CMD (for IPv4 or IPv6: 4 or 6) and, with the library,
# checks that the program's stack (regions in REGION) counted the connection.
over() {
    local family="$1" what="$2" before=""
    shift 2
    if [[ "$COMPAT_MODE" == preload ]]; then before="$(stack_opens "$REGION")"; fi
    check "$what" "$@"
    if [[ "$COMPAT_MODE" == preload ]]; then
        check "  ... the IPv$family connection was the stack's (passive_opens grew)" \
            opens_grew "$REGION" "${before:-0}" "$what"
    fi
}

# host FAMILY  the stack's address for a URL: STACK_ADDR or [STACK_ADDR6].
host() { if [[ "$1" == 4 ]]; then echo "$STACK_ADDR"; else echo "[$STACK_ADDR6]"; fi; }

# wait_log FILE PATTERN TENTHS  until FILE has a line matching PATTERN (grep -E).
wait_log() {
    netns_wait_for "$3" grep -Eq "$2" "$1"
}

# curl_body FAMILY PORT PATH WANT  curl -FAMILY from the peer; the body is WANT.
curl_body() {
    local family="$1" port="$2" path="$3" want="$4" got
    got="$(in_peer 30 curl -"$family" -g -sS --fail --max-time 20 "http://$(host "$family"):$port$path")" || return 1
    echo "curl -$family http://$(host "$family"):$port$path: '$got' (want '$want')" >&2
    [[ "$got" == "$want" ]]
}

# curl_file FAMILY PORT PATH FILE  curl -FAMILY from the peer; byte-exact against FILE.
curl_file() {
    local family="$1" port="$2" path="$3" file="$4" out="$WORK/curl-$RANDOM.out"
    in_peer 60 curl -"$family" -g -sS --fail --max-time 40 -o "$out" "http://$(host "$family"):$port$path" &&
        same_file "$file" "$out"
}

# curl_refused FAMILY PORT  curl -FAMILY from the peer fails to connect (exit 7: refused).
curl_refused() {
    local status=0
    in_peer 30 curl -"$1" -g -sS --max-time 10 -o /dev/null "http://$(host "$1"):$2/" || status=$?
    echo "curl -$1 to port $2: exit status $status (7: connection refused)" >&2
    ((status == 7))
}

# ---------------------------------------------------------------------------------------------
say "iperf3 -s (listens on :: with IPV6_V6ONLY off by default)"
regions_for iperf3
spawn_on_stack "$WORK/iperf3.log" iperf3 iperf3 -s -p 5201 --forceflush
IPERF=$SPAWNED
check "iperf3 -s starts (\"Server listening on 5201\")" wait_log "$WORK/iperf3.log" "Server listening on 5201" 200
# iperf_client FAMILY  iperf3 -c -t 2 from the peer: received bytes, and the server logged the
# peer's address of that family.
iperf_client() {
    local family="$1" addr="$STACK_ADDR" peer="$PEER_ADDR" json="$WORK/iperf3-c$1.json" bytes
    [[ "$family" == 6 ]] && addr="$STACK_ADDR6" peer="$PEER_ADDR6"
    in_peer 40 iperf3 -c "$addr" -"$family" -p 5201 -t 2 --connect-timeout 5000 -J >"$json" || {
        cat "$json" >&2
        return 1
    }
    bytes="$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bytes"]))' "$json")"
    echo "iperf3 -c $addr -$family -t 2: $bytes bytes received by the server" >&2
    [[ -n "$bytes" && "$bytes" -gt 0 ]] || return 1
    # The server prints a v4-mapped peer as the IPv4 address.
    wait_log "$WORK/iperf3.log" "Accepted connection from $peer, port" 20
}
over 4 "iperf3 -c $STACK_ADDR -4 -t 2: data arrives, the server saw $PEER_ADDR" iperf_client 4
over 6 "iperf3 -c $STACK_ADDR6 -6 -t 2: data arrives, the server saw $PEER_ADDR6" iperf_client 6
stop_pid "$IPERF"
sed 's/^/    iperf3: /' "$WORK/iperf3.log" >&2

# ---------------------------------------------------------------------------------------------
say "node: http.createServer().listen(8080) (:: dual-stack)"
regions_for node
spawn_on_stack "$WORK/node.log" node \
    node -e 'require("http").createServer((q,s)=>s.end("hi")).listen(8080)'
NODE=$SPAWNED
check "node listens on 8080 (IPv4 connect)" wait_tcp_port "$PEER_NS" "$STACK_ADDR" 8080
over 4 "curl -4 http://$STACK_ADDR:8080/ to node: \"hi\"" curl_body 4 8080 / hi
over 6 "curl -6 http://[$STACK_ADDR6]:8080/ to node: \"hi\"" curl_body 6 8080 / hi
stop_pid "$NODE"

# ---------------------------------------------------------------------------------------------
say "java Server.java (com.sun.net.httpserver on port 8081; the JVM's sockets are AF_INET6)"
mkdir -p "$WORK/java"
cat >"$WORK/java/Server.java" <<'JAVA'
import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;

public class Server {
    public static void main(String[] args) throws Exception {
        HttpServer server = HttpServer.create(new InetSocketAddress(8081), 0);
        server.createContext("/", exchange -> {
            byte[] body = ("java " + exchange.getRemoteAddress().getAddress().getHostAddress())
                .getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) { out.write(body); }
        });
        server.start();
        System.out.println("listening on " + server.getAddress());
    }
}
JAVA
regions_for java
spawn_on_stack "$WORK/java.log" java bash -c "cd '$WORK/java' && exec java Server.java"
JAVA_PID=$SPAWNED
check "java Server.java starts (within 60 s)" wait_log "$WORK/java.log" "^listening on " 600
sed 's/^/    java: /' "$WORK/java.log" >&2
# java_client FAMILY  curl gets "java ADDRESS": the client address as Java sees it (an
# Inet4Address for a v4-mapped peer, as on the kernel).
java_client() {
    local family="$1" want="$PEER_ADDR" got
    [[ "$family" == 6 ]] && want="$PEER_ADDR6"
    got="$(in_peer 30 curl -"$family" -g -sS --fail --max-time 20 "http://$(host "$family"):8081/")" || return 1
    echo "curl -$family: '$got'" >&2
    [[ "$got" == "java "* ]] || return 1
    got="$(python3 -c 'import ipaddress,sys; print(ipaddress.ip_address(sys.argv[1]))' "${got#java }")" || return 1
    [[ "$got" == "$want" ]]
}
over 4 "curl -4 to the Java server: it answers, client $PEER_ADDR" java_client 4
over 6 "curl -6 to the Java server: it answers, client $PEER_ADDR6" java_client 6
stop_pid "$JAVA_PID"

# ---------------------------------------------------------------------------------------------
mkdir -p "$WORK/py"
head -c 100000 /dev/urandom >"$WORK/py/file.bin"
say "python3 -m http.server 8000 (its default bind)"
regions_for python-default
spawn_on_stack "$WORK/python-default.log" python-default \
    python3 -u -m http.server 8000 --directory "$WORK/py"
PY=$SPAWNED
check "python3 -m http.server 8000 starts" wait_log "$WORK/python-default.log" "^Serving HTTP on .* port 8000" 200
PY_BIND="$(sed -n 's/^Serving HTTP on \(.*\) port 8000 .*/\1/p' "$WORK/python-default.log" | head -1)"
case "$PY_BIND" in
    0.0.0.0)
        say "python's default bind on this host is 0.0.0.0 (getaddrinfo(None, 8000, AI_PASSIVE) lists" \
            "0.0.0.0 first): IPv4 only, IPv6 is refused, as on the kernel; --bind :: follows"
        over 4 "curl -4 to python's default (0.0.0.0) listener: 100 kB byte-exact" \
            curl_file 4 8000 /file.bin "$WORK/py/file.bin"
        check "curl -6 to python's 0.0.0.0 listener is refused (as on the kernel)" curl_refused 6 8000
        ;;
    ::)
        say "python's default bind on this host is :: (dual-stack)"
        over 4 "curl -4 to python's default (::) listener: 100 kB byte-exact" \
            curl_file 4 8000 /file.bin "$WORK/py/file.bin"
        over 6 "curl -6 to python's default (::) listener: 100 kB byte-exact" \
            curl_file 6 8000 /file.bin "$WORK/py/file.bin"
        ;;
    *) fail "python's default bind is '${PY_BIND:-unknown}' (0.0.0.0 or :: expected)" ;;
esac
stop_pid "$PY"

say "python3 -m http.server 8001 --bind :: (DualStackServer: IPV6_V6ONLY off)"
regions_for python-v6
spawn_on_stack "$WORK/python-v6.log" python-v6 \
    python3 -u -m http.server 8001 --bind :: --directory "$WORK/py"
PY=$SPAWNED
check "python3 -m http.server --bind :: starts (\"Serving HTTP on :: port 8001\")" \
    wait_log "$WORK/python-v6.log" "^Serving HTTP on :: port 8001" 200
# python_client FAMILY  100 kB byte-exact, and python logged the client (::ffff:PEER or PEER6).
python_client() {
    local family="$1" who="::ffff:$PEER_ADDR"
    [[ "$family" == 6 ]] && who="$PEER_ADDR6"
    curl_file "$family" 8001 /file.bin "$WORK/py/file.bin" &&
        wait_log "$WORK/python-v6.log" "^$who - - .*\"GET /file.bin HTTP/1.1\" 200" 20
}
over 4 "curl -4 to python --bind ::: 100 kB byte-exact, logged as ::ffff:$PEER_ADDR" python_client 4
over 6 "curl -6 to python --bind ::: 100 kB byte-exact, logged as $PEER_ADDR6" python_client 6
stop_pid "$PY"

# ---------------------------------------------------------------------------------------------
say "nginx, listen [::]:8080 ipv6only=off, 1 worker"
N="$WORK/nginx"
nginx_config "$N" "[::]:8080 ipv6only=off"
sed -i "s/^worker_processes auto;/worker_processes 1;/" "$N/nginx.conf"
head -c $((1 << 20)) /dev/urandom >"$N/www/1m.bin"
chmod 644 "$N/www/1m.bin"
regions_for nginx
nginx_start() {
    on_stack 30 nginx nginx -c "$N/nginx.conf" -p "$N" >"$WORK/nginx-start.log" 2>&1 &&
        netns_wait_for 100 test -s "$N/nginx.pid" && wait_tcp_port "$PEER_NS" "$STACK_ADDR" 8080
}
check "nginx starts and listens on 8080" nginx_start
MASTER="$(cat "$N/nginx.pid" 2>/dev/null || true)"
[[ -n "$MASTER" ]] && netns_track_pid "$MASTER"
# nginx_client FAMILY  1 MiB byte-exact; the access log names the client.
nginx_client() {
    local family="$1" who="::ffff:$PEER_ADDR"
    [[ "$family" == 6 ]] && who="$PEER_ADDR6"
    curl_file "$family" 8080 /1m.bin "$N/www/1m.bin" &&
        wait_log "$N/access.log" "^$who - - .*\"GET /1m.bin HTTP/1.1\" 200 " 20
}
over 4 "curl -4 to nginx [::]:8080: 1 MiB byte-exact, logged as ::ffff:$PEER_ADDR" nginx_client 4
over 6 "curl -6 to nginx [::]:8080: 1 MiB byte-exact, logged as $PEER_ADDR6" nginx_client 6
tail -n 4 "$N/access.log" >&2 || true
nginx_quits() {
    [[ -n "$MASTER" ]] || return 1
    timeout 10 nginx -c "$N/nginx.conf" -p "$N" -s quit >&2 2>&1 &&
        netns_wait_for 100 bash -c "! kill -0 $MASTER 2>/dev/null"
}
check "nginx -s quit" nginx_quits
check "nginx's error.log has no errors" bash -c "! grep -E '\\[(emerg|alert|crit|error)\\]' '$N/error.log'"

# ---------------------------------------------------------------------------------------------
say "redis-server with its default bind ('* -::*': 0.0.0.0 and a v6-only ::, one port)"
R="$WORK/redis"
mkdir -p "$R"
regions_for redis
spawn_on_stack "$WORK/redis-server.log" redis \
    redis-server --port 6379 --save '' --appendonly no --protected-mode no --dir "$R"
REDIS=$SPAWNED
check "redis-server starts (\"Ready to accept connections\")" \
    wait_log "$WORK/redis-server.log" "Ready to accept connections" 200
check "redis-server opened both listeners (no 'Could not create server TCP listening socket')" \
    bash -c "! grep -i 'Could not create server TCP listening socket' '$WORK/redis-server.log'"
# redis_client FAMILY  SET then GET of a value over that family; CLIENT INFO shows the peer's
# address of that family (the IPv4 client on the AF_INET listener, not v4-mapped).
redis_client() {
    local family="$1" addr="$STACK_ADDR" peer="$PEER_ADDR" value="v$RANDOM-$1" info
    [[ "$family" == 6 ]] && addr="$STACK_ADDR6" peer="$PEER_ADDR6"
    [[ "$(in_peer 20 redis-cli -h "$addr" -p 6379 SET "key$family" "$value")" == OK ]] || return 1
    [[ "$(in_peer 20 redis-cli -h "$addr" -p 6379 GET "key$family")" == "$value" ]] || return 1
    info="$(in_peer 20 redis-cli -h "$addr" -p 6379 CLIENT INFO)" || return 1
    echo "redis-cli -h $addr: SET/GET '$value'; CLIENT INFO: $info" >&2
    [[ "$info" == *" addr=$peer:"* || "$info" == *" addr=[$peer]:"* ]]
}
over 4 "redis-cli -h $STACK_ADDR SET/GET (IPv4 listener), client $PEER_ADDR" redis_client 4
over 6 "redis-cli -h $STACK_ADDR6 SET/GET (v6-only listener), client $PEER_ADDR6" redis_client 6
check "the IPv4 client reads what the IPv6 client wrote" \
    bash -c "[[ \"\$(timeout 20 ip netns exec '$PEER_NS' redis-cli -h '$STACK_ADDR' -p 6379 EXISTS key6)\" == 1 ]]"
stop_pid "$REDIS"

say "took $((SECONDS - STARTED)) s"
compat_finish
