#!/usr/bin/env python3
"""Holds keep-alive connections to a server across a fault, then probes each one.

Opens --connections connections and makes one request on each (HTTP GET or redis PING), writes
--ready once all are answered, waits for --go to exist, then sends one more request on every
connection at once and waits (at most --window seconds) for what each one does:

  answered  a reply came        reset  ECONNRESET (the server side answered with RST)
  eof       the server closed   silent nothing within the window

Prints one line per connection ("conn I: OUTCOME MS") and a summary line
"answered=A reset=R eof=E silent=S max_gone_ms=M" (M: the slowest reset or eof, measured from
the probe's send). Exits 0 once the summary is printed; 2 when setting up failed.
"""
import argparse
import errno
import os
import select
import socket
import sys
import time

REQUESTS = {
    "http": (b"GET /index.html HTTP/1.1\r\nHost: probe\r\n\r\n", b"HTTP/1.1 200"),
    "redis": (b"*1\r\n$4\r\nPING\r\n", b"+PONG"),
}


def read_reply(sock, want, deadline):
    """Reads until `want` has been seen at the start of the data, or raises."""
    data = b""
    while len(data) < len(want):
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    if not data.startswith(want):
        raise ConnectionError(f"unexpected reply {data[:40]!r}")
    # The rest of an HTTP response (headers and the small body) arrives with it or just after.
    time.sleep(0.005)
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        pass
    sock.setblocking(True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--proto", choices=sorted(REQUESTS), required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--go", required=True)
    parser.add_argument("--window", type=float, default=3.0)
    parser.add_argument("--deadline", type=float, default=60.0)
    args = parser.parse_args()
    request, want = REQUESTS[args.proto]
    end = time.monotonic() + args.deadline
    conns = []
    try:
        for _ in range(args.connections):
            sock = socket.create_connection((args.host, args.port), timeout=5)
            sock.sendall(request)
            read_reply(sock, want, time.monotonic() + 5)
            conns.append(sock)
    except OSError as error:
        print(f"reset_probe: setting up connection {len(conns)}: {error}", file=sys.stderr)
        return 2
    with open(args.ready, "w") as ready:
        ready.write(f"held {len(conns)}\n")
    while not os.path.exists(args.go):
        if time.monotonic() > end:
            print("reset_probe: no go file before the deadline", file=sys.stderr)
            return 2
        time.sleep(0.01)

    outcome = {}
    sent = {}
    for i, sock in enumerate(conns):
        sock.setblocking(False)
        sent[i] = time.monotonic()
        try:
            sock.send(request)
        except OSError as error:
            # A reset that arrived before the probe (it should not: nothing was sent).
            outcome[i] = ("reset" if error.errno == errno.ECONNRESET else "eof", 0.0)
    pending = {sock.fileno(): i for i, sock in enumerate(conns) if i not in outcome}
    data = {i: b"" for i in pending.values()}
    window_end = time.monotonic() + args.window
    while pending and time.monotonic() < window_end:
        readable, _, _ = select.select(list(pending), [], [], max(0.0, window_end - time.monotonic()))
        for fd in readable:
            i = pending[fd]
            elapsed = (time.monotonic() - sent[i]) * 1000
            try:
                chunk = conns[i].recv(65536)
            except ConnectionResetError:
                outcome[i] = ("reset", elapsed)
                del pending[fd]
                continue
            except BlockingIOError:
                continue
            if not chunk:
                outcome[i] = ("eof", elapsed)
                del pending[fd]
                continue
            data[i] += chunk
            if data[i].startswith(want):
                outcome[i] = ("answered", elapsed)
                del pending[fd]
    for i in pending.values():
        outcome[i] = ("silent", args.window * 1000)
    counts = {"answered": 0, "reset": 0, "eof": 0, "silent": 0}
    gone = [0.0]
    for i in range(len(conns)):
        kind, ms = outcome[i]
        counts[kind] += 1
        if kind in ("reset", "eof"):
            gone.append(ms)
        print(f"conn {i}: {kind} {ms:.1f}")
    print(" ".join(f"{k}={v}" for k, v in counts.items()) + f" max_gone_ms={max(gone):.1f}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
