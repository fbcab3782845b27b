"""Speed of ``leafprep serve``: a real server process, answering over HTTP, model warm.

* a drawn digit (a 280x280 PNG as the page's pad sends it: an MNIST test digit
  drawn as ink on white), top classes only: the server's own time for the
  request (its ``Server-Timing`` header: upload read, decode, normalise, the
  network, JSON), median and 95th percentile (targets: 50 ms and 150 ms), and
  the round trip a client sees;
* a 12-megapixel phone JPEG (bench.speed's) through ``POST /api/predict``
  against ``leafprep.normalize`` of the same bytes alone, interleaved in the
  same run (target: at most 1.5x);
* 8 clients at once, 400 requests in all (drawn digits and sample_data/
  photos, a quarter each with the step pictures): errors, throughput, median
  and 95th percentile latency.

The run served is a conv-net trained by ``leafprep train`` on 10,000 MNIST
digits for 4 epochs (cached in bench/.cache/serve-run).

Run:  python -m bench.serve_speed [--requests 300]
Writes bench/results/serve_speed.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np

import leafprep
from bench._mnist import CACHE, ROOT, mnist
from bench.speed import interleaved, phone_jpeg
from leafprep.synthetic import ink_on_paper

RESULTS = ROOT / "bench" / "results"
LEAFPREP = str(Path(sys.executable).with_name("leafprep"))
RUN = CACHE / "serve-run"


def served_run() -> Path:
    """A conv-net run folder, trained once by leafprep's own build and train (about a minute on 2 cores)."""
    if (RUN / "model.keras").exists():
        return RUN
    from leafprep.build import BuildOptions, build
    from leafprep.idx import write_idx
    from trainers.train import train

    images, labels = mnist("train")
    test_images, test_labels = mnist("test")
    idx = CACHE / "serve-idx"
    idx.mkdir(parents=True, exist_ok=True)
    write_idx(idx / "train-images-idx3-ubyte.gz", images[:10000])
    write_idx(idx / "train-labels-idx1-ubyte.gz", labels[:10000])
    write_idx(idx / "t10k-images-idx3-ubyte.gz", test_images[:2000])
    write_idx(idx / "t10k-labels-idx1-ubyte.gz", test_labels[:2000])
    build(idx, CACHE / "serve-data", BuildOptions(kind="none"), workers=0, overwrite=True)
    train(CACHE / "serve-data", RUN, model="convnet", epochs=4, learning_rate=0.002, verbose=2)
    return RUN


def drawn_digits(count: int) -> list[tuple[int, bytes]]:
    """MNIST test digits drawn as dark ink on a white 280x280 pad, as PNG: (label, bytes)."""
    images, labels = mnist("test")
    drawn = []
    for image, label in zip(images[:count], labels[:count], strict=True):
        pad = cv2.resize(ink_on_paper(image, scale=8, margin=0.25, ink=(17, 17, 17)), (280, 280), interpolation=cv2.INTER_AREA)
        buffer = cv2.imencode(".png", cv2.cvtColor(pad, cv2.COLOR_RGB2BGR))[1].tobytes()
        drawn.append((int(label), buffer))
    return drawn


class Client:
    """One keep-alive HTTP connection to the server."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)

    def predict(self, body: bytes, query: str = "") -> tuple[int, dict, float, float]:
        """(status, JSON, the server's time from Server-Timing in seconds, the round trip in seconds)."""
        start = time.perf_counter()
        self.connection.request("POST", "/api/predict" + query, body=body, headers={"content-type": "application/octet-stream"})
        response = self.connection.getresponse()
        payload = json.loads(response.read())
        trip = time.perf_counter() - start
        timing = response.getheader("server-timing") or "app;dur=nan"
        server = float(timing.split(",")[0].split("=")[1]) / 1000
        return response.status, payload, server, trip


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def start_server(run: Path) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([LEAFPREP, "serve", str(run), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = server.stdout.readline().strip() if server.stdout else ""
    if not url.startswith("http://"):
        server.kill()
        raise SystemExit(f"the server did not start (it printed {url!r})")
    return server, url


def main() -> None:
    parser = argparse.ArgumentParser(description="leafprep serve speed benchmark")
    parser.add_argument("--requests", type=int, default=300, help="drawn digits sent one after another")
    parser.add_argument("--repeats", type=int, default=15, help="12 MP photos, each side")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--total", type=int, default=400, help="requests of the concurrent clients in all")
    args = parser.parse_args()

    run = served_run()
    digits = drawn_digits(args.requests)
    photos = [path.read_bytes() for path in sorted((ROOT / "sample_data" / "digits").rglob("*.jpg"))]
    phone = phone_jpeg()
    server, url = start_server(run)
    try:
        client = Client(url)
        for _, body in digits[:10]:  # warm the connection and the server's first calls
            client.predict(body)

        # 1. Drawn digits, one after another, top classes only.
        server_times, trips, correct = [], [], 0
        for label, body in digits:
            status, answer, server_time, trip = client.predict(body)
            assert status == 200, answer
            server_times.append(server_time)
            trips.append(trip)
            correct += answer["label"] == str(label)

        # 2. A 12 MP phone photo: the server against leafprep.normalize alone, interleaved.
        leafprep.normalize(phone)
        client.predict(phone)
        phone_server: list[float] = []
        phone_trips: list[float] = []

        def ask() -> None:
            status, answer, server_time, trip = client.predict(phone)
            assert status == 200, answer
            phone_server.append(server_time)
            phone_trips.append(trip)

        normalize_s, _ = interleaved(lambda: leafprep.normalize(phone), ask, args.repeats)
        phone_server_s, phone_trip_s = statistics.median(phone_server), statistics.median(phone_trips)

        # 3. Concurrent clients.
        jobs = [(digits[i % len(digits)][1] if i % 4 else photos[i % len(photos)], "?steps=true" if i % 4 == 1 else "") for i in range(args.total)]
        latencies: list[float] = []
        statuses: list[int] = []
        lock = threading.Lock()

        def worker(share: list[tuple[bytes, str]]) -> None:
            mine = Client(url)
            for body, query in share:
                status, _, _, trip = mine.predict(body, query)
                with lock:
                    statuses.append(status)
                    latencies.append(trip)

        threads = [threading.Thread(target=worker, args=(jobs[k :: args.clients],)) for k in range(args.clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=30)

    errors = sum(status != 200 for status in statuses)
    results = {
        "run": "convnet, 10,000 MNIST digits, 4 epochs",
        "drawn_requests": len(server_times),
        "drawn_server_median_ms": 1000 * statistics.median(server_times),
        "drawn_server_p95_ms": 1000 * percentile(server_times, 95),
        "drawn_round_trip_median_ms": 1000 * statistics.median(trips),
        "drawn_round_trip_p95_ms": 1000 * percentile(trips, 95),
        "drawn_read_correctly": correct / len(digits),
        "phone_jpeg_bytes": len(phone),
        "phone_normalize_ms": 1000 * normalize_s,
        "phone_server_ms": 1000 * phone_server_s,
        "phone_round_trip_ms": 1000 * phone_trip_s,
        "phone_server_over_normalize": phone_server_s / normalize_s,
        "phone_round_trip_over_normalize": phone_trip_s / normalize_s,
        "clients": args.clients,
        "concurrent_requests": len(statuses),
        "concurrent_errors": errors,
        "concurrent_wall_s": wall,
        "concurrent_per_second": len(statuses) / wall,
        "concurrent_median_ms": 1000 * statistics.median(latencies),
        "concurrent_p95_ms": 1000 * percentile(latencies, 95),
        "phone_repeats": args.repeats,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serve_speed.json").write_text(json.dumps(results, indent=2) + "\n")
    r = results
    print("| measure | result | target |")
    print("|---|---|---|")
    print(
        f"| drawn digit, server time ({r['drawn_requests']} requests) | median {r['drawn_server_median_ms']:.1f} ms, "
        f"p95 {r['drawn_server_p95_ms']:.1f} ms | <= 50 ms, <= 150 ms |"
    )
    print(f"| drawn digit, round trip | median {r['drawn_round_trip_median_ms']:.1f} ms, p95 {r['drawn_round_trip_p95_ms']:.1f} ms | |")
    print(
        f"| 12 MP phone JPEG ({len(phone) / 1e6:.1f} MB): server / `leafprep.normalize` alone | {r['phone_server_ms']:.0f} ms / "
        f"{r['phone_normalize_ms']:.0f} ms = {r['phone_server_over_normalize']:.2f}x (round trip {r['phone_round_trip_over_normalize']:.2f}x) "
        "| <= 1.5x |"
    )
    print(
        f"| {r['clients']} clients, {r['concurrent_requests']} requests | {r['concurrent_errors']} errors, "
        f"{r['concurrent_per_second']:.1f} requests/s, median {r['concurrent_median_ms']:.0f} ms, p95 {r['concurrent_p95_ms']:.0f} ms | no error |"
    )
    print(f"\ndrawn digits read correctly: {r['drawn_read_correctly']:.1%}")


if __name__ == "__main__":
    main()
