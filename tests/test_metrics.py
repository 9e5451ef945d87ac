"""The Prometheus endpoint: request counts and latency histograms per API, bytes in/out, log sizes."""

from __future__ import annotations

import urllib.request

from helpers import create_topic, metric, kp_admin, kp_producer, produce_all, producer, read_partition, wait_until


def test_metrics_endpoint_serves_prometheus_text(broker):
    with urllib.request.urlopen(broker.metrics_url, timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers.get_content_type() == "text/plain" or \
            resp.headers.get_content_type() == "application/openmetrics-text"
        text = resp.read().decode()
    for name in ("strom_requests_total", "strom_request_latency_seconds", "strom_bytes_in_total",
                 "strom_bytes_out_total", "strom_partition_log_size_bytes"):
        assert f"# TYPE {name} " in text or f"# TYPE {name.removesuffix('_total')} " in text, name


def test_produce_requests_are_counted_exactly(broker):
    create_topic(broker, "m-count", 1)
    # Warm up the client's connection and metadata so only Produce requests follow.
    kp = kp_producer(broker, linger_ms=0)
    kp.send("m-count", value=b"warm-up", partition=0).get(timeout=30)
    before = broker.metrics()
    base_total = metric(before, "strom_requests_total", api="Produce") or 0
    base_count = metric(before, "strom_request_latency_seconds_count", api="Produce") or 0
    for i in range(7):
        kp.send("m-count", value=b"x%d" % i, partition=0).get(timeout=30)  # one ProduceRequest each
    kp.close()

    def settled():
        m = broker.metrics()
        return m if metric(m, "strom_requests_total", api="Produce") == base_total + 7 else None
    m = wait_until(settled, timeout_s=10, what="Produce counter +7")
    assert metric(m, "strom_request_latency_seconds_count", api="Produce") == base_count + 7
    # The histogram is cumulative and its +Inf bucket equals its count.
    buckets = sorted(((float("inf") if dict(labels)["le"] == "+Inf" else float(dict(labels)["le"])), v)
                     for (name, labels), v in m.items()
                     if name == "strom_request_latency_seconds_bucket" and dict(labels).get("api") == "Produce")
    assert len(buckets) >= 2 and buckets[-1][0] == float("inf")
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    assert buckets[-1][1] == metric(m, "strom_request_latency_seconds_count", api="Produce")
    assert metric(m, "strom_request_latency_seconds_sum", api="Produce") > 0
    # Other APIs are counted under their own Kafka names.
    assert metric(m, "strom_requests_total", api="ApiVersions") >= 1
    assert metric(m, "strom_requests_total", api="Metadata") >= 1


def test_bytes_in_and_out_grow_with_traffic(broker):
    create_topic(broker, "m-bytes", 1)
    before = broker.metrics()
    payload = b"p" * 10_000
    produce_all(producer(broker), "m-bytes", [{"value": payload, "partition": 0} for _ in range(50)])
    mid = broker.metrics()
    assert metric(mid, "strom_bytes_in_total") - metric(before, "strom_bytes_in_total") >= 50 * len(payload)
    read_partition(broker, "m-bytes", 0, 0, 50)
    after = wait_until(lambda: (lambda m: m if metric(m, "strom_bytes_out_total") -
                                metric(mid, "strom_bytes_out_total") >= 50 * len(payload) else None)(broker.metrics()),
                       timeout_s=10, what="bytes out to cover the fetched records")
    assert metric(after, "strom_bytes_out_total") > metric(mid, "strom_bytes_out_total")


def test_partition_log_size_matches_describe_log_dirs(broker):
    create_topic(broker, "m-size", 2)
    produce_all(producer(broker), "m-size", [{"value": b"s" * 500, "partition": 0} for _ in range(40)])

    def sizes_from_admin():
        ka = kp_admin(broker)
        try:
            out = ka.describe_log_dirs({"m-size": [0, 1]})
        finally:
            ka.close()
        return {p["partition_index"]: p["partition_size"] for d in out[0]["log_dirs"] for t in d["topics"]
                if t["name"] == "m-size" for p in t["partitions"]}

    want = sizes_from_admin()
    assert want[1] == 0 and want[0] > 40 * 500

    def matches():
        m = broker.metrics()
        got = {p: metric(m, "strom_partition_log_size_bytes", topic="m-size", partition=p) for p in (0, 1)}
        return got if got == {p: float(v) for p, v in want.items()} else None
    wait_until(matches, timeout_s=15, what=f"strom_partition_log_size_bytes == {want}")
