"""``leafprep build --runner beam`` and ``--runner dask`` beside the local build, in one run.

The Swedish leaves (1,125 JPEG scans, ``--kind leaf --size 64 --split 2/1``)
and 3,000 MNIST digits drawn on paper (PNG photos) are each built by the local build (2
worker processes), by Apache Beam's local runner (FnApiRunner, multi-processing, 2
workers) and by Beam's DaskRunner on a Dask ``LocalCluster`` of 2 worker
processes (started once, before the timings, as a cluster would be), twice
each, alternating; the outputs are compared byte for byte.

Run:  python -m bench.beam_speed      (about 8 minutes on 2 cores)
Writes bench/results/beam_speed.json and prints a Markdown table.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from bench._mnist import DATA, ROOT

RESULTS = ROOT / "bench" / "results"


def same_output(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def timed(function, *args, **kwargs) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    import logging

    from leafprep.beam import build_with_beam
    from leafprep.build import BuildOptions, build, parse_split

    warnings.simplefilter("ignore")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    beam_options = ["--direct_num_workers=2", "--default_sdk_harness_log_level=WARNING"]
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    results = {}
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    dask_options = ["--runner=DaskRunner", f"--dask_client_address={cluster.scheduler_address}"]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        sets = {"swedish_leaves": (DATA / "leaves" / "swedish", BuildOptions(kind="leaf", size=64, split=parse_split("2/1")))}
        from bench.compare import digits

        digits(root / "digits", {str(d): d for d in range(10)}, 300)  # 3,000 MNIST digits drawn on paper, as PNG photos
        sets["mnist_digits_drawn"] = (root / "digits", BuildOptions(kind="digit"))
        for name, (source, options) in sets.items():
            local, beam, dask = [], [], []
            for run in range(2):
                local.append(timed(build, source, root / f"local-{name}", options, workers=2, overwrite=True))
                shutil.rmtree(root / f"beam-{name}", ignore_errors=True)
                beam.append(timed(build_with_beam, source, root / f"beam-{name}", options, beam_options=beam_options))
                shutil.rmtree(root / f"dask-{name}", ignore_errors=True)
                dask.append(timed(build_with_beam, source, root / f"dask-{name}", options, beam_options=dask_options))
                print(name, run, f"local {local[-1]:.1f} s, beam {beam[-1]:.1f} s, dask {dask[-1]:.1f} s", flush=True)
            files = sum(1 for _ in (root / f"local-{name}").glob("*.tfrecord"))
            inputs = json.loads((root / f"local-{name}" / "dataset_info.json").read_text())["inputs"]["found"]
            results[name] = {
                "inputs": inputs,
                "shards": files,
                "local_seconds": min(local),
                "beam_direct_seconds": min(beam),
                "dask_seconds": min(dask),
                "local_images_per_second": inputs / min(local),
                "beam_images_per_second": inputs / min(beam),
                "dask_images_per_second": inputs / min(dask),
                "beam_over_local_time": min(beam) / min(local),
                "dask_over_local_time": min(dask) / min(local),
                "identical_output": same_output(root / f"local-{name}", root / f"beam-{name}"),
                "dask_identical_output": same_output(root / f"local-{name}", root / f"dask-{name}"),
            }
    cluster.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "beam_speed.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| data set | inputs | local (2 workers) | Beam local runner (2 workers) | Beam on Dask (2 workers) | Beam / local | Dask / local | same |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['inputs']:,} | {r['local_seconds']:.1f} s ({r['local_images_per_second']:.0f}/s) | "
            f"{r['beam_direct_seconds']:.1f} s ({r['beam_images_per_second']:.0f}/s) | "
            f"{r['dask_seconds']:.1f} s ({r['dask_images_per_second']:.0f}/s) | "
            f"{r['beam_over_local_time']:.2f}x | {r['dask_over_local_time']:.2f}x | {r['identical_output'] and r['dask_identical_output']} |"
        )


if __name__ == "__main__":
    main()
