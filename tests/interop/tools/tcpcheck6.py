#!/usr/bin/env python3
"""IPv6 kernel-side peers for the interop tests (tests/interop/test-ipv6.sh). tcpcheck.py's
concurrent check opens AF_INET sockets only; this file adds the IPv6 versions and leaves
tcpcheck.py as it is.

  tcpcheck6.py bulk        --host H6 --port P --bytes N        tcpcheck.py's bulk check, over IPv6
                                                               (the address must be IPv6)
  tcpcheck6.py concurrent  --host H6 --port P --connections N [--size S]
                                                               N AF_INET6 connections open at once,
                                                               each echoes S bytes

H6 is an IPv6 literal, link-local ones with their zone (fe80::1%eth0). Every wait is bounded;
the exit status is 0 only when everything checked out.
"""
import argparse
import os
import selectors
import socket
import struct
import sys
import time

# No __pycache__ in the source tree from importing tcpcheck.py.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcpcheck  # noqa: E402  (bulk, fail, raise_fd_limit)


def resolve6(host, port):
    """The AF_INET6 socket address of HOST (a literal), or a failure."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_INET6, socket.SOCK_STREAM, 0,
                                   socket.AI_NUMERICHOST)
    except socket.gaierror as error:
        tcpcheck.fail(f"{host} is not an IPv6 address: {error}")
    return infos[0][4]


def bulk6(args):
    resolve6(args.host, args.port)
    # tcpcheck.bulk connects with socket.create_connection, which takes an IPv6 literal (and
    # its zone) through getaddrinfo: with the literal checked above, the connection is IPv6.
    tcpcheck.bulk(args)


def concurrent6(args):
    address = resolve6(args.host, args.port)
    tcpcheck.raise_fd_limit(args.connections + 64)
    sel = selectors.DefaultSelector()
    deadline = time.monotonic() + args.deadline
    conns = {}
    for i in range(args.connections):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(address)
        message = struct.pack("<I", i) + os.urandom(args.size - 4)
        conns[s] = {"message": message, "sent": 0, "echo": b"", "index": i}
        sel.register(s, selectors.EVENT_WRITE | selectors.EVENT_READ)
    opened = len(conns)
    done = 0
    while conns and time.monotonic() < deadline:
        for key, mask in sel.select(timeout=1):
            s = key.fileobj
            c = conns.get(s)
            if c is None:
                continue
            try:
                if mask & selectors.EVENT_WRITE and c["sent"] < len(c["message"]):
                    c["sent"] += s.send(c["message"][c["sent"]:])
                    if c["sent"] == len(c["message"]):
                        sel.modify(s, selectors.EVENT_READ)
                if mask & selectors.EVENT_READ:
                    data = s.recv(65536)
                    if not data:
                        tcpcheck.fail(f"concurrent6: connection {c['index']} closed early")
                    c["echo"] += data
                    if len(c["echo"]) >= len(c["message"]):
                        if c["echo"] != c["message"]:
                            tcpcheck.fail(f"concurrent6: connection {c['index']} echoed different bytes")
                        sel.unregister(s)
                        s.close()
                        del conns[s]
                        done += 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as error:
                tcpcheck.fail(f"concurrent6: connection {c['index']}: {error}")
    if conns:
        sent = sum(1 for c in conns.values() if c["sent"] == len(c["message"]))
        tcpcheck.fail(f"concurrent6: {len(conns)} of {opened} connections unfinished at the deadline "
                      f"({sent} of them had sent their message)")
    print(f"tcpcheck6: concurrent ok: {done} IPv6 connections open at once, every echo byte-exact",
          flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("bulk", "concurrent"):
        p = sub.add_parser(name)
        p.add_argument("--host", required=True)
        p.add_argument("--port", type=int, default=7)
        p.add_argument("--timeout", type=float, default=30)
        p.add_argument("--deadline", type=float, default=300)
        if name == "bulk":
            p.add_argument("--bytes", type=int, default=64 << 20)
        if name == "concurrent":
            p.add_argument("--connections", type=int, default=2000)
            p.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    {"bulk": bulk6, "concurrent": concurrent6}[args.command](args)


if __name__ == "__main__":
    main()
