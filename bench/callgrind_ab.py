#!/usr/bin/env python3
"""The broker's instructions per produced record, counted by callgrind (its counts repeat on
this noisy machine), for two or more strom binaries, plain and idempotent.

    python3 bench/callgrind_ab.py /tmp/strom-a /tmp/strom-b [--small 2000] [--large 100000]

Each binary runs `strom server` (registry and REST proxy off) under `valgrind --tool=callgrind`
while bench/rdkafka-load (built by bench/run) produces `--small` and then `--large` records of
1 KiB to 6 partitions (acks=all, 1 MB batches, 5 ms linger); the difference of the two totals
over the difference of the counts is the cost of one record, start-up left out."""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

RDKAFKA = Path(__file__).resolve().parent / "rdkafka-load" / "target" / "release" / "rdkafka-load"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def instructions(binary: str, idempotent: bool, records: int) -> int:
    port, workdir = free_port(), tempfile.mkdtemp(prefix="callgrind-ab-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STROM_")}
    with open(f"{workdir}/broker.log", "wb") as log:
        broker = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={workdir}/callgrind.out", binary, "server",
             "--set", f"listeners=PLAINTEXT://127.0.0.1:{port}", "--set", f"log.dirs={workdir}/data",
             "--set", "schema.registry.listeners=", "--set", "rest.proxy.listeners="],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or broker.poll() is not None:
                    raise SystemExit(f"{binary} did not start; see {workdir}/broker.log")
                time.sleep(0.1)
        cmd = [str(RDKAFKA), "produce", "--bootstrap", f"127.0.0.1:{port}", "--topic", "t",
               "--records", str(records), "--size", "1024", "--acks", "-1", "--partitions", "6",
               "--producers", "1", "--batch-size", "1000000", "--linger-ms", "5", "--rate", "0"]
        if idempotent:
            cmd += ["--idempotence", "true"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit(f"rdkafka-load failed: {done.stderr[-1000:]}")
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=120)
    text = Path(glob.glob(f"{workdir}/callgrind.out*")[0]).read_text()
    shutil.rmtree(workdir, ignore_errors=True)
    found = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if found is None:
        raise SystemExit("no instruction total in callgrind's output")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binaries", nargs="+")
    parser.add_argument("--small", type=int, default=2_000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    if not RDKAFKA.exists():
        raise SystemExit(f"{RDKAFKA} is missing: run bench/run once to build it")
    print("| binary | plain | idempotent |\n|---|---|---|")
    for binary in args.binaries:
        per_record = []
        for idempotent in (False, True):
            small = instructions(binary, idempotent, args.small)
            large = instructions(binary, idempotent, args.large)
            per_record.append((large - small) / (args.large - args.small))
        print(f"| {binary} | {per_record[0]:.0f} | {per_record[1]:.0f} |", flush=True)


if __name__ == "__main__":
    main()
