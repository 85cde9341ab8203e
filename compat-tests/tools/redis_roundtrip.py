#!/usr/bin/env python3
"""Moves bytes both ways through a redis server until a deadline, checking every one.

Each round SETs a random value of 1 B to --max-size bytes under a key of its own, GETs it back
and compares; a new connection every --per-connection rounds. Prints one line at the end:
"rounds=N bytes=B mismatches=M errors=E" and exits 1 when a value came back different or a
command failed (a reconnect after an error is counted once, then the loop goes on).
"""
import argparse
import os
import random
import socket
import sys
import time


def command(sock, buf, *parts):
    out = b"*%d\r\n" % len(parts)
    for part in parts:
        out += b"$%d\r\n%s\r\n" % (len(part), part)
    sock.sendall(out)
    return read_reply(sock, buf)


def read_line(sock, buf):
    while b"\r\n" not in buf[0]:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("closed by the server")
        buf[0] += chunk
    line, _, rest = buf[0].partition(b"\r\n")
    buf[0] = rest
    return line


def read_reply(sock, buf):
    line = read_line(sock, buf)
    if line.startswith(b"$"):
        length = int(line[1:])
        if length < 0:
            return None
        while len(buf[0]) < length + 2:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed by the server")
            buf[0] += chunk
        value, buf[0] = buf[0][:length], buf[0][length + 2:]
        return value
    if line.startswith(b"-"):
        raise RuntimeError(line.decode(errors="replace"))
    return line


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--max-size", type=int, default=1 << 20)
    parser.add_argument("--per-connection", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(os.getpid())
    end = time.monotonic() + args.seconds
    rounds = moved = mismatches = errors = 0
    sock = None
    while time.monotonic() < end:
        try:
            if sock is None or rounds % args.per_connection == 0:
                if sock is not None:
                    sock.close()
                sock = socket.create_connection((args.host, args.port), timeout=30)
                buf = [b""]
            key = b"soak:%d:%d" % (os.getpid(), rounds % 64)
            value = rng.randbytes(rng.randint(1, args.max_size))
            command(sock, buf, b"SET", key, value)
            back = command(sock, buf, b"GET", key)
            if back != value:
                mismatches += 1
                print(f"redis_roundtrip: round {rounds}: {len(value)} bytes sent, "
                      f"{len(back) if back is not None else 'nil'} back, different", file=sys.stderr)
            moved += 2 * len(value)
            rounds += 1
        except (OSError, RuntimeError) as error:
            errors += 1
            print(f"redis_roundtrip: round {rounds}: {error}", file=sys.stderr)
            sock = None
            rounds += 1
    print(f"rounds={rounds} bytes={moved} mismatches={mismatches} errors={errors}")
    return 1 if mismatches or errors else 0


if __name__ == "__main__":
    sys.exit(main())
