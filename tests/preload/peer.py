#!/usr/bin/env python3
"""The kernel-side peer of the preload tests: a command server in the peer namespace.

Each connection to the control port starts with one command line; the connection then does
what it says. Bytes sent follow pattern(i) = (i * 31 + 7) & 0xff, counted from the first byte
of the connection after the command line (tests/preload/lib.h has the same function).

  ECHO                       echo until EOF, then close
  SEND N [close]             send N bytes; then close at once, or read until EOF and close
  TRIGGER SIZE               for every byte received, send SIZE more bytes; close at EOF
  CHUNKS K SIZE GAP_MS       send K chunks of SIZE bytes, GAP_MS apart; read until EOF
  DELAY MS N                 after MS, send N bytes; read until EOF
  HOLD TAG N                 send N bytes, read until EOF, remember TAG's EOF and byte count
  WAITEOF TAG MS             reply "EOF n" when TAG saw EOF (within MS), else "OPEN n"
  CLOSE MS                   after MS, close (FIN)
  RESET MS                   after MS, close with an RST (SO_LINGER 0)
  SINK                       read until EOF; reply "count adler32"; close
  CONNECT PORT echo|send N   connect to the stack's PORT; reply "OK" or "ERR errno"; then echo
                             on (or send N bytes to) the new connection until EOF

Usage: peer.py PORT STACK_ADDR READY_FILE (every thread is a daemon; SIGTERM ends it).
"""

import os
import socket
import struct
import sys
import threading
import time
import zlib

PATTERN = bytes(((i * 31 + 7) & 0xFF) for i in range(251 * 256))
PERIOD = 256  # pattern(i) depends on i mod 256


def pattern(offset, count):
    out = bytearray()
    while count > 0:
        start = offset % PERIOD
        take = min(count, len(PATTERN) - start)
        out += PATTERN[start:start + take]
        offset += take
        count -= take
    return bytes(out)


STACK_ADDR = ""
EOFS = {}  # tag -> (eof seen, bytes received)
EOF_CHANGED = threading.Condition()


def send_all(sock, offset, count):
    while count > 0:
        chunk = pattern(offset, min(count, 65536))
        sock.sendall(chunk)
        offset += len(chunk)
        count -= len(chunk)
    return offset


def drain(sock, on_bytes=None):
    total = 0
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return total
        if not data:
            return total
        total += len(data)
        if on_bytes:
            on_bytes(total)


def read_line(sock):
    data = b""
    while b"\n" not in data:
        more = sock.recv(1)
        if not more:
            return None
        data += more
    return data.decode().strip()


def echo(sock):
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if not data:
            return
        sock.sendall(data)


def handle(sock):
    try:
        line = read_line(sock)
        if line is None:
            return
        words = line.split()
        command, args = words[0], words[1:]
        if command == "ECHO":
            echo(sock)
        elif command == "SEND":
            send_all(sock, 0, int(args[0]))
            if len(args) > 1 and args[1] == "close":
                return
            drain(sock)
        elif command == "TRIGGER":
            size = int(args[0])
            offset = 0
            while True:
                data = sock.recv(4096)
                if not data:
                    return
                for _ in data:
                    offset = send_all(sock, offset, size)
        elif command == "CHUNKS":
            count, size, gap = int(args[0]), int(args[1]), int(args[2])
            offset = 0
            for k in range(count):
                if k:
                    time.sleep(gap / 1000)
                offset = send_all(sock, offset, size)
            drain(sock)
        elif command == "DELAY":
            time.sleep(int(args[0]) / 1000)
            send_all(sock, 0, int(args[1]))
            drain(sock)
        elif command == "HOLD":
            tag = args[0]
            with EOF_CHANGED:
                EOFS[tag] = (False, 0)
            send_all(sock, 0, int(args[1]))

            def progress(total):
                with EOF_CHANGED:
                    EOFS[tag] = (False, total)

            total = drain(sock, progress)
            with EOF_CHANGED:
                EOFS[tag] = (True, total)
                EOF_CHANGED.notify_all()
        elif command == "WAITEOF":
            tag, limit = args[0], time.monotonic() + int(args[1]) / 1000
            with EOF_CHANGED:
                while not EOFS.get(tag, (False, 0))[0] and time.monotonic() < limit:
                    EOF_CHANGED.wait(max(0.0, limit - time.monotonic()))
                seen, total = EOFS.get(tag, (False, 0))
            sock.sendall(f"{'EOF' if seen else 'OPEN'} {total}\n".encode())
            drain(sock)
        elif command == "CLOSE":
            time.sleep(int(args[0]) / 1000)
        elif command == "RESET":
            time.sleep(int(args[0]) / 1000)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif command == "SINK":
            total, checksum = 0, zlib.adler32(b"")
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                total += len(data)
                checksum = zlib.adler32(data, checksum)
            sock.sendall(f"{total} {checksum}\n".encode())
        elif command == "CONNECT":
            other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            other.settimeout(10)
            try:
                other.connect((STACK_ADDR, int(args[0])))
            except OSError as error:
                sock.sendall(f"ERR {error.errno}\n".encode())
                other.close()
                return
            other.settimeout(None)
            sock.sendall(b"OK\n")
            try:
                if args[1] == "echo":
                    echo(other)
                else:
                    send_all(other, 0, int(args[2]))
                    drain(other)
            finally:
                other.close()
        else:
            sock.sendall(f"ERR unknown command {command}\n".encode())
    except OSError:
        pass
    finally:
        sock.close()


def main():
    global STACK_ADDR
    port, STACK_ADDR, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(256)
    with open(ready, "w") as f:
        f.write("ready\n")
    while True:
        sock, _ = server.accept()
        threading.Thread(target=handle, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
