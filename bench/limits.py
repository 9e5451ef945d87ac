"""Machine limits for BENCHMARKS.md: one loopback TCP stream, and a sequential page-cache write.

    .venv/bin/python bench/limits.py

Both move 4 GiB in 1 MiB writes from Python, so the loopback figure is a lower
bound on the kernel's (Python's copy loop costs CPU); the file is removed after.
bench/run calls the two functions with smaller totals in its smoke mode."""

import os
import socket
import tempfile
import threading
import time

TOTAL = 4 << 30
CHUNK = 1 << 20


def loopback_mb_s(total: int = TOTAL) -> float:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def sink():
        conn, _ = server.accept()
        got, buf = 0, bytearray(CHUNK)
        while got < total:
            n = conn.recv_into(buf)
            if not n:
                break
            got += n

    reader = threading.Thread(target=sink)
    reader.start()
    data = b"\0" * CHUNK
    with socket.create_connection(server.getsockname()) as sock:
        started = time.perf_counter()
        for _ in range(total // CHUNK):
            sock.sendall(data)
        reader.join()
        return total / (time.perf_counter() - started) / 1e6


def page_cache_write_mb_s(total: int = TOTAL, directory: str | None = None) -> float:
    data = b"\0" * CHUNK
    fd, path = tempfile.mkstemp(prefix="strom-limits-", dir=directory)
    try:
        started = time.perf_counter()
        for _ in range(total // CHUNK):
            os.write(fd, data)
        return total / (time.perf_counter() - started) / 1e6
    finally:
        os.close(fd)
        os.remove(path)


if __name__ == "__main__":
    print(f"loopback, one TCP stream: {loopback_mb_s():,.0f} MB/s")
    print(f"sequential page-cache write, 4 GiB: {page_cache_write_mb_s():,.0f} MB/s")
