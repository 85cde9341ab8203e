#!/usr/bin/env python3
"""Concurrent set/get load on a memcached server (text protocol), verifying every reply.

    memcached-load.py --host H [--port 11211] [--threads 16] [--pairs 300]
                      [--ops-per-connection 0] [--tag NAME] [--deadline 60] [--timeout 5]
    memcached-load.py --host H --stats      # prints memcached's `stats` as NAME=VALUE lines

Each of --threads threads opens its own TCP connection; once every thread is connected they
all run --pairs pairs of `set KEY FLAGS 0 N` + `get KEY` with keys distinct across threads and
values of random bytes (CR and LF among them) of 1 B to 4 KiB, checking that every set answers
STORED and every get returns exactly the value and flags that were set. Then each thread reads
all of its keys back again with multi-key gets of 50 keys. --ops-per-connection N > 0 makes a
thread close its connection and open a fresh one after every N commands (set and get count one
each; the multi-gets go on fresh connections too), so that many connections are made.

Prints one summary line, 'memcached-load: ... connections=C ... failures=F', and up to 20
failures. Exit status 0 only when every command of every thread was answered correctly; 1 on
any mismatch, error or closed connection; 2 when --deadline seconds passed first (sockets time
out after --timeout seconds each).
"""
import argparse
import os
import random
import socket
import sys
import threading
import time

SIZES = (1, 2, 3, 7, 8, 100, 1023, 1024, 1025, 1460, 1461, 2048, 2920, 4095, 4096)


class Failure(Exception):
    pass


class Connection:
    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise Failure("connection closed by the server")
        self.buf += data

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return line
            if len(self.buf) > 1 << 20:
                raise Failure("no end of line in %d bytes" % len(self.buf))
            self._fill()

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def set(self, key, flags, value):
        self.sock.sendall(b"set %s %d 0 %d\r\n%s\r\n" % (key, flags, len(value), value))
        reply = self.line()
        if reply != b"STORED":
            raise Failure("set %s: reply %r" % (key.decode(), reply[:80]))

    def get(self, keys):
        """Returns {key: (flags, value)} for the keys memcached returned."""
        self.sock.sendall(b"get " + b" ".join(keys) + b"\r\n")
        found = {}
        while True:
            header = self.line()
            if header == b"END":
                return found
            parts = header.split(b" ")
            if len(parts) != 4 or parts[0] != b"VALUE":
                raise Failure("get %s: reply %r" % (keys[0].decode(), header[:80]))
            n = int(parts[3])
            data = self.exact(n + 2)
            if data[-2:] != b"\r\n":
                raise Failure("get %s: value of %d bytes not followed by CRLF" % (parts[1].decode(), n))
            found[parts[1]] = (int(parts[2]), data[:-2])


class Worker(threading.Thread):
    def __init__(self, index, args, barrier):
        super().__init__(daemon=True)
        self.index, self.args, self.barrier = index, args, barrier
        self.failures = []
        self.done_pairs = 0
        self.bytes = 0
        self.verified = 0
        self.connections = 0
        self.conn = None
        self.commands = 0

    def connect(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = Connection(self.args.host, self.args.port, self.args.timeout)
        self.connections += 1
        self.commands = 0

    def command(self):
        """Counts one command; opens a fresh connection first when this one has had its share."""
        limit = self.args.ops_per_connection
        if limit > 0 and self.commands >= limit:
            self.connect()
        self.commands += 1

    def run(self):
        rng = random.Random("%s/%d" % (self.args.tag, self.index))
        items = []
        for i in range(self.args.pairs):
            size = SIZES[i % len(SIZES)] if i % 2 == 0 else rng.randint(1, 4096)
            key = ("%s:t%d:k%d" % (self.args.tag, self.index, i)).encode()
            items.append((key, (self.index * 1000 + i) % 65536, rng.randbytes(size)))
        step = "connecting"
        try:
            self.connect()
            step = "waiting for the other threads"
            self.barrier.wait(timeout=self.args.timeout * 4)
            for i, (key, flags, value) in enumerate(items):
                step = "pair %d (%d bytes)" % (i, len(value))
                self.command()
                self.conn.set(key, flags, value)
                self.command()
                got = self.conn.get([key])
                if got.get(key) != (flags, value):
                    raise Failure("get %s right after its set: %s" % (key.decode(), describe(got.get(key), flags, value)))
                self.done_pairs += 1
                self.bytes += len(value)
            # Everything again: nothing of this thread's was lost or overwritten meanwhile.
            if self.args.ops_per_connection > 0:
                self.connect()
            for start in range(0, len(items), 50):
                step = "multi-get of keys %d-%d" % (start, start + 49)
                batch = items[start : start + 50]
                got = self.conn.get([key for key, _, _ in batch])
                for key, flags, value in batch:
                    if got.get(key) != (flags, value):
                        raise Failure("multi-get %s: %s" % (key.decode(), describe(got.get(key), flags, value)))
                    self.verified += 1
        except threading.BrokenBarrierError:
            self.failures.append("thread %d: the other threads did not all connect" % self.index)
        except (Failure, OSError, ValueError) as error:
            self.failures.append("thread %d, %s: %s: %s" % (self.index, step, type(error).__name__, error))
        finally:
            if self.conn is not None:
                self.conn.close()


def describe(got, flags, value):
    if got is None:
        return "missing (expected %d bytes)" % len(value)
    got_flags, got_value = got
    if got_flags != flags:
        return "flags %d, expected %d" % (got_flags, flags)
    first = next((i for i, (a, b) in enumerate(zip(got_value, value)) if a != b), min(len(got_value), len(value)))
    return "%d bytes, expected %d, first difference at byte %d" % (len(got_value), len(value), first)


def print_stats(args):
    conn = Connection(args.host, args.port, args.timeout)
    conn.sock.sendall(b"stats\r\n")
    while True:
        line = conn.line()
        if line == b"END":
            break
        parts = line.decode().split(" ", 2)
        if parts[0] != "STAT" or len(parts) != 3:
            print("memcached-load: unexpected stats line %r" % line, file=sys.stderr)
            return 1
        print("%s=%s" % (parts[1], parts[2]))
    conn.close()
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=11211)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--ops-per-connection", type=int, default=0)
    parser.add_argument("--tag", default="load")
    parser.add_argument("--deadline", type=float, default=60)
    parser.add_argument("--timeout", type=float, default=5)
    parser.add_argument("--stats", action="store_true")
    args = parser.parse_args()
    if args.stats:
        return print_stats(args)

    start = time.monotonic()
    barrier = threading.Barrier(args.threads)
    workers = [Worker(i, args, barrier) for i in range(args.threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, args.deadline - (time.monotonic() - start)))
    late = [w.index for w in workers if w.is_alive()]
    failures = [f for w in workers for f in w.failures]
    pairs = sum(w.done_pairs for w in workers)
    verified = sum(w.verified for w in workers)
    expected = args.threads * args.pairs
    if late:
        failures.append("threads %s still running after the %g s deadline" % (late, args.deadline))
    elif not failures and (pairs != expected or verified != expected):
        failures.append("%d pairs and %d verified keys, expected %d" % (pairs, verified, expected))
    print(
        "memcached-load: tag=%s threads=%d pairs=%d/%d verified=%d/%d connections=%d ops_per_connection=%d"
        " bytes=%d seconds=%.2f failures=%d"
        % (args.tag, args.threads, pairs, expected, verified, expected, sum(w.connections for w in workers),
           args.ops_per_connection, sum(w.bytes for w in workers), time.monotonic() - start, len(failures))
    )
    for failure in failures[:20]:
        print("memcached-load: FAILURE: %s" % failure)
    sys.stdout.flush()
    if late:
        os._exit(2)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
