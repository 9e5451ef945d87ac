"""Machine limits for BENCHMARKS.md: one loopback TCP stream, and a sequential page-cache write.

    .venv/bin/python bench/limits.py

Both move 4 GiB in 1 MiB writes from Python, so the loopback figure is a lower
bound on the kernel's (Python's copy loop costs CPU); the file is removed after."""

import os
import socket
import tempfile
import threading
import time

TOTAL = 4 << 30
CHUNK = 1 << 20


def loopback_mb_s() -> float:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def sink():
        conn, _ = server.accept()
        got, buf = 0, bytearray(CHUNK)
        while got < TOTAL:
            n = conn.recv_into(buf)
            if not n:
                break
            got += n

    reader = threading.Thread(target=sink)
    reader.start()
    data = b"\0" * CHUNK
    with socket.create_connection(server.getsockname()) as sock:
        started = time.perf_counter()
        for _ in range(TOTAL // CHUNK):
            sock.sendall(data)
        reader.join()
        return TOTAL / (time.perf_counter() - started) / 1e6


def page_cache_write_mb_s() -> float:
    data = b"\0" * CHUNK
    fd, path = tempfile.mkstemp(prefix="strom-limits-")
    try:
        started = time.perf_counter()
        for _ in range(TOTAL // CHUNK):
            os.write(fd, data)
        return TOTAL / (time.perf_counter() - started) / 1e6
    finally:
        os.close(fd)
        os.remove(path)


if __name__ == "__main__":
    print(f"loopback, one TCP stream: {loopback_mb_s():,.0f} MB/s")
    print(f"sequential page-cache write, 4 GiB: {page_cache_write_mb_s():,.0f} MB/s")
