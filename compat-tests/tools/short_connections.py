#!/usr/bin/env python3
"""COUNT short HTTP connections (one GET each, Connection: close) from THREADS threads.

Prints one line: ok=N failed=N reset=N refused=N seconds=S. Bounded: each connection times out
after --timeout seconds, and the whole run stops at --deadline seconds (what is left is failed).
"""
import argparse
import socket
import threading
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/index.html")
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args()

    request = f"GET {args.path} HTTP/1.1\r\nHost: {args.host}\r\nConnection: close\r\n\r\n".encode()
    lock = threading.Lock()
    counts = {"ok": 0, "failed": 0, "reset": 0, "refused": 0}
    remaining = [args.count]
    stop_at = time.monotonic() + args.deadline

    def take() -> bool:
        with lock:
            if remaining[0] == 0 or time.monotonic() > stop_at:
                return False
            remaining[0] -= 1
            return True

    def one() -> str:
        try:
            with socket.create_connection((args.host, args.port), timeout=args.timeout) as s:
                s.sendall(request)
                response = b""
                while True:
                    data = s.recv(65536)
                    if not data:
                        break
                    response += data
            return "ok" if response.startswith(b"HTTP/1.1 200") or response.startswith(b"HTTP/1.0 200") else "failed"
        except ConnectionResetError:
            return "reset"
        except ConnectionRefusedError:
            return "refused"
        except OSError:
            return "failed"

    def worker() -> None:
        while take():
            outcome = one()
            with lock:
                counts[outcome] += 1

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts["failed"] += remaining[0]
    print(" ".join(f"{k}={v}" for k, v in counts.items()) + f" seconds={time.monotonic() - start:.1f}", flush=True)


if __name__ == "__main__":
    main()
