#!/usr/bin/env python3
"""Holds persistent connections to a redis server across an event (e.g. a BGSAVE fork).

Opens --connections connections, writes --ready once all are open and answered, then runs
INCR on a key per connection in turn, checking every reply, until --phase-file exists; then
runs --after more commands on each connection and exits 0. Any wrong reply, error or closed
connection ends it with status 1; so does reaching --deadline seconds.
"""
import argparse
import os
import socket
import sys
import time


def read_reply(sock, buf):
    """Reads one integer (":N") or status reply; returns (line, rest of buffer)."""
    while b"\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        buf += chunk
    line, _, rest = buf.partition(b"\r\n")
    return line, rest


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--phase-file", required=True)
    parser.add_argument("--after", type=int, default=100)
    parser.add_argument("--deadline", type=float, default=60)
    args = parser.parse_args()
    end = time.monotonic() + args.deadline
    conns = []
    for i in range(args.connections):
        sock = socket.create_connection((args.host, args.port), timeout=10)
        key = f"hold:{os.getpid()}:{i}".encode()
        sock.sendall(b"*2\r\n$3\r\nDEL\r\n$%d\r\n%s\r\n" % (len(key), key))
        line, buf = read_reply(sock, b"")
        if not line.startswith(b":"):
            raise SystemExit(f"redis_hold: DEL answered {line!r}")
        conns.append([sock, key, 0, buf])
    with open(args.ready, "w") as ready:
        ready.write("ready\n")

    def one_round():
        for conn in conns:
            sock, key, count, buf = conn
            sock.sendall(b"*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n" % (len(key), key))
            line, buf = read_reply(sock, buf)
            if line != b":%d" % (count + 1):
                raise SystemExit(f"redis_hold: INCR {key!r} answered {line!r}, expected {count + 1}")
            conn[2] = count + 1
            conn[3] = buf

    before = 0
    while not os.path.exists(args.phase_file):
        if time.monotonic() > end:
            raise SystemExit("redis_hold: deadline reached before the phase file appeared")
        one_round()
        before += 1
        time.sleep(0.005)
    for _ in range(args.after):
        if time.monotonic() > end:
            raise SystemExit("redis_hold: deadline reached after the phase file appeared")
        one_round()
    for conn in conns:
        conn[0].close()
    print(f"redis_hold: {len(conns)} connections, {before} rounds before and {args.after} after, all replies right")


if __name__ == "__main__":
    try:
        main()
    except (OSError, ConnectionError) as error:
        print(f"redis_hold: {error}", file=sys.stderr)
        sys.exit(1)
