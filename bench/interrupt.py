"""Interrupted builds: Ctrl-C and kill -9 at random moments, then the same command again.

For each of ``--runs`` seeded random moments and each signal, a ``leafprep
build`` of 400 digit photos (2 workers) is stopped; the script records what the
interruption left behind (exit status, whether the folder passes ``leafprep
verify``, temporary files), reruns the command, and checks that the rerun
verifies and that its shards equal an uninterrupted build's byte for byte. A
full disk, simulated with a 60 kB file-size limit (``RLIMIT_FSIZE``: writes
past it fail as they do on a full disk), must give a clear error and no
``_COMPLETE``.

Run:  python -m bench.interrupt [--runs 10]     (about 10 minutes on 2 cores)
Writes bench/results/interrupt.json, docs/images/interrupt.png and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._mnist import ROOT, mnist

RESULTS = ROOT / "bench" / "results"


def photos(folder: Path, count: int = 400) -> None:
    from leafprep.synthetic import ink_on_paper
    from tests.photos import encode

    images, labels = mnist("t10k")
    for index in range(count):
        target = folder / str(int(labels[index])) / f"{index:04d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(encode(ink_on_paper(images[index], scale=4), "PNG"))


def command(source: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "leafprep.cli", "build", str(source), "--out", str(out), "--workers", "2", "--kind", "digit"]


def shards(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.tfrecord"))}


def verifies(folder: Path) -> bool:
    from leafprep.records import verify

    return not verify(folder)


def _ctrl_c_as_in_a_terminal() -> None:
    """A build started from a background job inherits an ignored SIGINT; a terminal's has the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="interruptions per signal")
    arguments = parser.parse_args()
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        photos(root / "photos")
        start = time.perf_counter()
        subprocess.run(command(root / "photos", root / "reference"), check=True, capture_output=True, env=environment)
        whole = time.perf_counter() - start
        reference = shards(root / "reference")
        rows = []
        for name in ("SIGINT", "SIGKILL"):
            moments = random.Random(f"interrupt {name}")
            for run in range(arguments.runs):
                out = root / f"{name}-{run}"
                moment = moments.uniform(0.2, whole * 1.05)
                process = subprocess.Popen(
                    command(root / "photos", out),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=environment,
                    start_new_session=True,
                    preexec_fn=_ctrl_c_as_in_a_terminal,
                )
                time.sleep(moment)
                os.killpg(process.pid, getattr(signal, name))
                process.communicate(timeout=120)
                finished = (out / "_COMPLETE").exists()
                leftovers = sorted(p.name for p in out.glob(".tmp-*")) if out.exists() else []
                interrupted_verifies = out.exists() and verifies(out)
                again = subprocess.run(command(root / "photos", out), capture_output=True, env=environment)
                rows.append(
                    {
                        "signal": name,
                        "moment_s": round(moment, 2),
                        "exit_status": process.returncode,
                        "finished_before_signal": finished,
                        "temporary_files_left": leftovers,
                        "unfinished_folder_verifies": bool(interrupted_verifies) and not finished,
                        "rerun_exit_status": again.returncode,
                        "rerun_verifies": verifies(out),
                        "rerun_shards_identical": shards(out) == reference,
                    }
                )
                print(rows[-1], flush=True)
                shutil.rmtree(out, ignore_errors=True)
        full = root / "full"

        def small_files() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, like ENOSPC

        disk = subprocess.run(command(root / "photos", full), capture_output=True, text=True, env=environment, preexec_fn=small_files)
        full_disk = {
            "exit_status": disk.returncode,
            "message": disk.stderr.strip().splitlines()[-1] if disk.stderr.strip() else "",
            "complete_marker": (full / "_COMPLETE").exists(),
            "traceback": "Traceback" in disk.stderr,
        }
    results = {"photos": 400, "uninterrupted_seconds": round(whole, 1), "runs": rows, "full_disk": full_disk}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "interrupt.json").write_text(json.dumps(results, indent=2) + "\n")
    figure(rows, whole)
    table(results)


def figure(rows: list[dict], whole: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.6))
    for lane, name in enumerate(("SIGINT", "SIGKILL")):
        for row in (r for r in rows if r["signal"] == name):
            good = row["rerun_verifies"] and row["rerun_shards_identical"] and not row["unfinished_folder_verifies"]
            marker = "o" if not row["finished_before_signal"] else "s"
            ax.scatter(row["moment_s"], lane, marker=marker, s=70, color="tab:green" if good else "tab:red", zorder=3)
    ax.axvline(whole, color="grey", linestyle="--", linewidth=1)
    ax.text(whole, 1.35, " uninterrupted build ends", color="grey", fontsize=8, va="center")
    ax.set_yticks([0, 1], ["Ctrl-C (SIGINT)", "kill -9 (SIGKILL)"])
    ax.set_ylim(-0.6, 1.6)
    ax.set_xlabel("moment of the signal after the start (s)")
    title = "Interrupted builds: green = rerun verifies and equals an uninterrupted build byte for byte"
    ax.set_title(title + "\n(circle: stopped unfinished; square: had finished)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "images" / "interrupt.png", dpi=110)


def table(results: dict) -> None:
    rows = results["runs"]
    print(f"\nuninterrupted build of {results['photos']} photos: {results['uninterrupted_seconds']} s\n")
    print(
        "| signal | runs | stopped unfinished | exit status (unfinished) | unfinished folder passed verify "
        "| temporary files left | rerun verifies | rerun byte-identical |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in ("SIGINT", "SIGKILL"):
        mine = [r for r in rows if r["signal"] == name]
        unfinished = [r for r in mine if not r["finished_before_signal"]]
        statuses = sorted({r["exit_status"] for r in unfinished})
        print(
            f"| {name} | {len(mine)} | {len(unfinished)} | {', '.join(map(str, statuses))} | "
            f"{sum(r['unfinished_folder_verifies'] for r in mine)} | {sum(bool(r['temporary_files_left']) for r in unfinished)} | "
            f"{sum(r['rerun_verifies'] for r in mine)}/{len(mine)} | {sum(r['rerun_shards_identical'] for r in mine)}/{len(mine)} |"
        )
    disk = results["full_disk"]
    print(f"\nfull disk: exit {disk['exit_status']}, _COMPLETE written: {disk['complete_marker']}, traceback: {disk['traceback']}; {disk['message']}")


if __name__ == "__main__":
    main()
