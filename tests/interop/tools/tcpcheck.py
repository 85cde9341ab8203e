#!/usr/bin/env python3
"""Kernel-side peers for the interop tests: they run inside the peer network namespace, use
the Linux kernel's TCP, and check every byte the user-level stack sends back.

  tcpcheck.py bulk        --host H --port P --bytes N     send N bytes to an echo server while
                                                          reading the echo; both streams compared
  tcpcheck.py concurrent  --host H --port P --connections N [--size S]
                                                          N connections open at once, each echoes S bytes
  tcpcheck.py sequential  --host H --port P --count N     N short connections in a row
  tcpcheck.py garbage     --iface IF --dst-mac M --count N  malformed frames at the stack's MAC

Every wait is bounded; the exit status is 0 only when everything checked out.
"""
import argparse
import hashlib
import os
import random
import resource
import selectors
import socket
import struct
import sys
import threading
import time


def fail(message):
    print(f"tcpcheck: FAIL: {message}", flush=True)
    sys.exit(1)


def pattern_chunk(index, size=65536):
    seed = hashlib.sha256(index.to_bytes(8, "little")).digest()
    return (seed * (size // len(seed) + 1))[:size]


def bulk(args):
    total = args.bytes
    sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    sock.settimeout(args.timeout)
    sent_digest = hashlib.sha256()
    received_digest = hashlib.sha256()
    received = 0
    errors = []

    def sender():
        offset = 0
        index = 0
        try:
            while offset < total:
                chunk = pattern_chunk(index)[: total - offset]
                sock.sendall(chunk)
                sent_digest.update(chunk)
                offset += len(chunk)
                index += 1
            sock.shutdown(socket.SHUT_WR)
        except OSError as error:
            errors.append(f"send: {error}")

    thread = threading.Thread(target=sender)
    start = time.monotonic()
    thread.start()
    try:
        while received < total:
            data = sock.recv(1 << 20)
            if not data:
                break
            received_digest.update(data)
            received += len(data)
            if time.monotonic() - start > args.deadline:
                errors.append("deadline passed")
                break
    except OSError as error:
        errors.append(f"recv: {error}")
    thread.join(timeout=args.timeout)
    elapsed = time.monotonic() - start
    sock.close()
    if errors:
        fail(f"bulk: {errors} after {received} of {total} bytes")
    if received != total:
        fail(f"bulk: echo ended after {received} of {total} bytes")
    if sent_digest.hexdigest() != received_digest.hexdigest():
        fail("bulk: echoed bytes differ from the bytes sent")
    rate = 2 * total * 8 / elapsed / 1e6
    print(f"tcpcheck: bulk ok: {total} bytes each way byte-exact (sha256 {sent_digest.hexdigest()[:16]}) "
          f"in {elapsed:.1f} s, {rate:.0f} Mbit/s both ways", flush=True)


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(needed, soft), hard), hard))


def concurrent(args):
    raise_fd_limit(args.connections + 64)
    sel = selectors.DefaultSelector()
    deadline = time.monotonic() + args.deadline
    conns = {}
    # An IPv4 or IPv6 literal (link-local ones with their zone): the family is the address's.
    try:
        family, _, _, _, address = socket.getaddrinfo(
            args.host, args.port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)[0]
    except socket.gaierror as error:
        fail(f"concurrent: {args.host} is not an address: {error}")
    for i in range(args.connections):
        s = socket.socket(family, socket.SOCK_STREAM)
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
                        fail(f"concurrent: connection {c['index']} closed early")
                    c["echo"] += data
                    if len(c["echo"]) >= len(c["message"]):
                        if c["echo"] != c["message"]:
                            fail(f"concurrent: connection {c['index']} echoed different bytes")
                        sel.unregister(s)
                        s.close()
                        del conns[s]
                        done += 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as error:
                fail(f"concurrent: connection {c['index']}: {error}")
    if conns:
        sent = sum(1 for c in conns.values() if c["sent"] == len(c["message"]))
        fail(f"concurrent: {len(conns)} of {opened} connections unfinished at the deadline "
             f"({sent} of them had sent their message)")
    print(f"tcpcheck: concurrent ok: {done} connections open at once, every echo byte-exact", flush=True)


def sequential(args):
    start = time.monotonic()
    for i in range(args.count):
        if time.monotonic() - start > args.deadline:
            fail(f"sequential: deadline passed after {i} connections")
        message = struct.pack("<I", i) + b"x" * 60
        try:
            with socket.create_connection((args.host, args.port), timeout=args.timeout) as s:
                s.sendall(message)
                echo = b""
                while len(echo) < len(message):
                    data = s.recv(4096)
                    if not data:
                        break
                    echo += data
        except OSError as error:
            fail(f"sequential: connection {i}: {error}")
        if echo != message:
            fail(f"sequential: connection {i} echoed {len(echo)} bytes, not the {len(message)} sent")
    elapsed = time.monotonic() - start
    print(f"tcpcheck: sequential ok: {args.count} connections in a row in {elapsed:.1f} s, none lost", flush=True)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def garbage(args):
    dst = bytes.fromhex(args.dst_mac.replace(":", ""))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((args.iface, 0))
    src = s.getsockname()[4]
    rng = random.Random(args.seed)
    src_ip = socket.inet_aton(args.src_ip)
    dst_ip = socket.inet_aton(args.dst_ip)
    kinds = {}

    def ipv4(payload, proto=6, bad_checksum=False, fragment=False, version=4, ihl=5):
        header = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0, 20 + len(payload), rng.randrange(65536),
                             0x2000 if fragment else 0x4000, 64, proto, 0, src_ip, dst_ip)
        c = checksum(header)
        if bad_checksum:
            c ^= 0x5A5A
        return header[:10] + struct.pack("!H", c) + header[12:] + payload

    def tcp(options=b"", bad_checksum=False, flags=0x10, payload=b"garbage"):
        offset = (20 + len(options)) // 4
        header = struct.pack("!HHIIBBHHH", rng.randrange(1024, 65535), args.port, rng.randrange(1 << 32),
                             rng.randrange(1 << 32), offset << 4, flags, 65535, 0, 0) + options
        pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 6, len(header) + len(payload))
        c = checksum(pseudo + header + payload)
        if bad_checksum:
            c ^= 0x1234
        return header[:16] + struct.pack("!H", c) + header[18:] + payload

    makers = {
        "random": lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))),
        "truncated-ethernet": lambda: dst[: rng.randrange(1, 6)],
        "truncated-ip": lambda: ipv4(tcp())[: rng.randrange(1, 19)],
        "truncated-tcp": lambda: ipv4(tcp())[: 20 + rng.randrange(1, 19)],
        "bad-ip-checksum": lambda: ipv4(tcp(), bad_checksum=True),
        "bad-tcp-checksum": lambda: ipv4(tcp(bad_checksum=True)),
        "bad-tcp-option-length": lambda: ipv4(tcp(options=bytes([2, 0, 5, 0]))),
        "option-past-header": lambda: ipv4(tcp(options=bytes([8, 40, 1, 1]))),
        "bad-sack-length": lambda: ipv4(tcp(options=bytes([1, 1, 5, 7, 0, 0, 0, 0, 0, 0, 0, 0]))),
        "fragment": lambda: ipv4(tcp(), fragment=True),
        "ip-version-6": lambda: ipv4(tcp(), version=6),
        "ihl-too-small": lambda: ipv4(tcp(), ihl=3),
        "unknown-protocol": lambda: ipv4(b"hello", proto=253),
        "syn-with-bad-checksum": lambda: ipv4(tcp(flags=0x02, bad_checksum=True)),
    }
    names = sorted(makers)
    for i in range(args.count):
        name = names[i % len(names)]
        body = makers[name]()
        if name in ("random", "truncated-ethernet"):
            frame = dst + src + b"\x08\x00" + body if name == "random" else body
        else:
            frame = dst + src + b"\x08\x00" + body
        if len(frame) < 14:
            frame = frame + b"\0" * (14 - len(frame))
        s.send(frame)
        kinds[name] = kinds.get(name, 0) + 1
        if args.interval:
            time.sleep(args.interval)
    print(f"tcpcheck: garbage sent: {args.count} frames {kinds}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("bulk", "concurrent", "sequential"):
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
        if name == "sequential":
            p.add_argument("--count", type=int, default=20000)
    g = sub.add_parser("garbage")
    g.add_argument("--iface", required=True)
    g.add_argument("--dst-mac", required=True)
    g.add_argument("--src-ip", required=True)
    g.add_argument("--dst-ip", required=True)
    g.add_argument("--port", type=int, default=7)
    g.add_argument("--count", type=int, default=1400)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--interval", type=float, default=0.001)
    args = parser.parse_args()
    {"bulk": bulk, "concurrent": concurrent, "sequential": sequential, "garbage": garbage}[args.command](args)


if __name__ == "__main__":
    main()
