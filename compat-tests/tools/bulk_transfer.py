#!/usr/bin/env python3
"""A bulk TCP transfer whose bytes are checked end to end.

  bulk_transfer.py serve PORT          accepts one connection, reads to EOF, prints
                                       "received=N sha256=HEX"
  bulk_transfer.py send HOST PORT MB   sends MB MiB of seeded pseudo-random bytes, prints
                                       "sent=N sha256=HEX"
Bounded: the socket times out after 30 s without progress.
"""
import hashlib
import random
import socket
import sys

CHUNK = 1 << 20


def serve(port: int) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(1)
    print("listening", flush=True)
    listener.settimeout(60)
    conn, _ = listener.accept()
    conn.settimeout(30)
    digest = hashlib.sha256()
    total = 0
    while True:
        data = conn.recv(CHUNK)
        if not data:
            break
        digest.update(data)
        total += len(data)
    print(f"received={total} sha256={digest.hexdigest()}", flush=True)


def send(host: str, port: int, megabytes: int) -> None:
    rng = random.Random(7)
    block = rng.randbytes(CHUNK)
    digest = hashlib.sha256()
    with socket.create_connection((host, port), timeout=30) as conn:
        for k in range(megabytes):
            # Each MiB differs (a rotation of the block), so a misplaced MiB shows in the hash.
            shift = (k * 4099) % CHUNK
            piece = block[shift:] + block[:shift]
            conn.sendall(piece)
            digest.update(piece)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)
    print(f"sent={megabytes * CHUNK} sha256={digest.hexdigest()}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
