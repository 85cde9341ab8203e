#!/usr/bin/env python3
"""Opens N idle TCP connections to a server and holds them (the client of the memory
benchmark). Source addresses are used in turn, so more than one ephemeral port range is
available. Prints 'established N' once every connection has completed its handshake, then
holds them until stdin reaches end of file or --hold seconds pass, and closes them.

    idle_clients.py --server 10.77.3.2 --port 80 --count 10000 --source 10.77.3.1 [--source ...]
"""
import argparse
import errno
import resource
import select
import socket
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--source", action="append", default=[])
    parser.add_argument("--batch", type=int, default=500, help="connections in flight at once")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to establish all")
    parser.add_argument("--hold", type=float, default=300.0, help="seconds to hold at most")
    args = parser.parse_args()

    want = args.count + 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))

    sources = args.source or [None]
    poller = select.epoll()
    pending = {}
    established = []
    failures = 0
    started = 0
    deadline = time.monotonic() + args.timeout
    while len(established) < args.count and time.monotonic() < deadline:
        while started < args.count and len(pending) < args.batch:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            source = sources[started % len(sources)]
            if source:
                sock.bind((source, 0))
            code = sock.connect_ex((args.server, args.port))
            started += 1
            if code not in (0, errno.EINPROGRESS):
                failures += 1
                sock.close()
                continue
            pending[sock.fileno()] = sock
            poller.register(sock.fileno(), select.EPOLLOUT)
        if not pending and started >= args.count:
            break
        for fd, _ in poller.poll(0.5):
            sock = pending.pop(fd)
            poller.unregister(fd)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                established.append(sock)
            else:
                failures += 1
                sock.close()
    print(f"established {len(established)} failed {failures} pending {len(pending)}", flush=True)
    if len(established) < args.count:
        return 1
    end = time.monotonic() + args.hold
    while time.monotonic() < end:
        ready, _, _ = select.select([sys.stdin], [], [], 1.0)
        if ready and not sys.stdin.buffer.read1(4096):
            break
    for sock in established:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
