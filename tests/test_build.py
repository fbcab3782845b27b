from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from leafprep import LeafprepError
from leafprep.build import BuildOptions, assign_split, build, find_inputs, parse_split
from leafprep.cli import app
from leafprep.records import info, load, parse_shard_name, verify
from photos import SHARED, encode

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"


def write_idx(folder: Path, images: np.ndarray, labels: np.ndarray, prefix: str) -> None:
    from leafprep.idx import write_idx as write

    folder.mkdir(parents=True, exist_ok=True)
    write(folder / f"{prefix}-images-idx3-ubyte.gz", images)
    write(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)


def mnist_idx(folder: Path, images: np.ndarray, labels: np.ndarray, train: int, test: int = 0) -> Path:
    """``folder`` holding the first ``train`` digits as MNIST's train files and the next ``test`` as its test files."""
    write_idx(folder, images[:train], labels[:train], "train")
    if test:
        write_idx(folder, images[train : train + test], labels[train : train + test], "t10k")
    return folder


def mnist_records(root: Path, images: np.ndarray, labels: np.ndarray, train: int, test: int = 0) -> Path:
    """``root/ds``: a dataset of MNIST's own pixels (``kind="none"``) built from :func:`mnist_idx`."""
    build(mnist_idx(root / "idx", images, labels, train, test), root / "ds", BuildOptions(kind="none"), workers=0)
    return root / "ds"


@pytest.fixture
def digit_folder(tmp_path, mnist_test) -> Path:
    """20 digits of each of 3 classes, drawn on paper, in class folders."""
    from leafprep.synthetic import ink_on_paper

    images, labels = mnist_test
    root = tmp_path / "digits"
    for digit in (1, 2, 10):  # folder "10" sorts after "2"
        folder = root / str(digit)
        folder.mkdir(parents=True)
        for n, index in enumerate(np.flatnonzero(labels == digit % 10)[:12]):
            (folder / f"d{n}.png").write_bytes(encode(ink_on_paper(images[index], scale=3), "PNG"))
    return root


def shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.tfrecord"))}


def test_parse_split_accepts_percentages_and_ratios():
    assert parse_split("80/10/10") == pytest.approx((0.8, 0.1, 0.1))
    assert parse_split("2/1") == pytest.approx((2 / 3, 0.0, 1 / 3))
    with pytest.raises(LeafprepError):
        parse_split("80/x")


def test_assign_split_is_stable_and_follows_proportions():
    keys = [f"file{i}" for i in range(3000)]
    splits = [assign_split(k, (0.8, 0.1, 0.1), 7) for k in keys]
    assert abs(splits.count("train") / 3000 - 0.8) < 0.03
    assert splits == [assign_split(k, (0.8, 0.1, 0.1), 7) for k in keys]
    assert splits != [assign_split(k, (0.8, 0.1, 0.1), 8) for k in keys]


def test_build_writes_shards_labels_manifest_and_info(digit_folder, tmp_path):
    report = build(digit_folder, tmp_path / "out", BuildOptions(kind="digit"), workers=2)
    meta = info(tmp_path / "out")
    assert meta["labels"] == ["1", "2", "10"]  # natural order
    assert (tmp_path / "out" / "labels.txt").read_text().split() == ["1", "2", "10"]
    assert meta["image_shape"] == [28, 28, 1]
    assert meta["inputs"] == {"found": 36, "written": 36, "rejected": 0, "duplicate": 0, "doubtful": 0}
    assert sum(s["examples"] for s in meta["shards"]) == 36
    for shard in meta["shards"]:
        split, _, count = parse_shard_name(shard["file"])
        assert split in ("train", "val", "test") and count >= 1
    rows = list(csv.DictReader(open(tmp_path / "out" / "manifest.csv")))
    assert len(rows) == 36 and {r["status"] for r in rows} == {"written"}
    assert 0.0 < meta["train_pixel_mean"] < 0.5 and meta["train_pixel_std"] > 0.1
    assert verify(tmp_path / "out") == []
    assert report.count("written") == 36


def test_build_is_byte_identical_for_same_inputs_and_seed(digit_folder, tmp_path):
    build(digit_folder, tmp_path / "a", BuildOptions(seed=3), workers=2)
    build(digit_folder, tmp_path / "b", BuildOptions(seed=3), workers=0)
    assert shard_bytes(tmp_path / "a") == shard_bytes(tmp_path / "b")
    build(digit_folder, tmp_path / "c", BuildOptions(seed=4), workers=0)
    assert shard_bytes(tmp_path / "a") != shard_bytes(tmp_path / "c")


def test_adding_files_does_not_move_assigned_images(digit_folder, tmp_path, mnist_test):
    from leafprep.synthetic import ink_on_paper

    before = {r.source: r.split for r in build(digit_folder, tmp_path / "a", workers=0).items}
    images, labels = mnist_test
    for n, index in enumerate(np.flatnonzero(labels == 2)[20:30]):
        (digit_folder / "2" / f"new{n}.png").write_bytes(encode(ink_on_paper(images[index], scale=3), "PNG"))
    report = build(digit_folder, tmp_path / "a", workers=0)  # the same folder: a rebuild
    after = {r.source: r.split for r in report.items}
    assert all(after[source] == split for source, split in before.items())
    assert len(after) == len(before) + 10
    twos = report.info["splits"]
    assert sum(twos[s]["per_class"]["2"] for s in twos) == 22
    assert twos["train"]["per_class"]["2"] in (17, 18)  # the new files fill the shares


def test_bad_and_duplicate_files_are_listed_never_dropped(digit_folder, tmp_path):
    (digit_folder / "1" / "notes.txt").write_text("not an image")
    (digit_folder / "1" / "empty.png").write_bytes(b"")
    (digit_folder / "2" / "blank.png").write_bytes(encode(np.full((60, 60, 3), 240, np.uint8), "PNG"))
    shutil.copy(digit_folder / "2" / "d0.png", digit_folder / "2" / "copy-of-d0.png")
    report = build(digit_folder, tmp_path / "out", workers=2)
    statuses = {item.source: (item.status, item.reason) for item in report.items}
    assert statuses["1/notes.txt"][0] == "rejected" and "not a recognised image" in statuses["1/notes.txt"][1]
    assert statuses["1/empty.png"][0] == "rejected" and "empty" in statuses["1/empty.png"][1]
    assert statuses["2/blank.png"][0] == "rejected" and "no digit found" in statuses["2/blank.png"][1]
    pair = sorted([statuses["2/copy-of-d0.png"][0], statuses["2/d0.png"][0]])
    assert pair == ["duplicate", "written"]  # the first in natural order is written
    meta = report.info["inputs"]
    assert meta["written"] + meta["rejected"] + meta["duplicate"] == meta["found"] == 40
    splits = {item.source: item.split for item in report.items}
    assert splits["2/copy-of-d0.png"] == splits["2/d0.png"]


def test_presplit_folders_and_csv_groups_keep_their_split(tmp_path, digit_folder):
    root = tmp_path / "presplit"
    shutil.copytree(digit_folder / "1", root / "train" / "one")
    shutil.copytree(digit_folder / "2", root / "test" / "two")
    shutil.copytree(digit_folder / "10", root / "test" / "one")
    report = build(root, tmp_path / "out", workers=0)
    assert {item.split for item in report.items if item.label == "two"} == {"test"}
    assert report.info["splits"]["train"]["per_class"]["one"] == 12
    assert not report.dealt and report.empty_splits() == []  # no val folder: not a split the build left empty
    table = tmp_path / "list.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "group"])
        for n, file in enumerate(sorted((digit_folder / "1").glob("*.png"))):
            writer.writerow([file.relative_to(tmp_path).as_posix(), "one", f"writer{n % 2}"])
    grouped = build(table, tmp_path / "csvout", workers=0)
    by_group: dict[str, set[str]] = {}
    for n, item in enumerate(grouped.items):
        by_group.setdefault(f"writer{n % 2}", set()).add(item.split or "")
    assert all(len(splits) == 1 for splits in by_group.values())


def test_idx_build_gives_mnist_train_and_test(tmp_path, mnist_test):
    images, labels = mnist_test
    build(mnist_idx(tmp_path / "idx", images, labels, 300, 100), tmp_path / "out", BuildOptions(kind="none"))
    meta = info(tmp_path / "out")
    assert meta["splits"]["train"]["examples"] == 300 and meta["splits"]["test"]["examples"] == 100
    batches = list(load(tmp_path / "out", "test", batch_size=64))
    x = np.concatenate([b[0].numpy() for b in batches])
    y = np.concatenate([b[1].numpy() for b in batches])
    assert x.shape == (100, 28, 28, 1) and x.dtype == np.float32 and x.max() <= 1.0
    # every MNIST test image is in there, exactly
    expected = {(images[i].tobytes(), int(labels[i])) for i in range(300, 400)}
    assert {(np.rint(a[:, :, 0] * 255).astype(np.uint8).tobytes(), int(b)) for a, b in zip(x, y)} == expected


def test_augment_adds_copies_to_train_only(digit_folder, tmp_path):
    meta = build(digit_folder, tmp_path / "out", BuildOptions(augment=2, split=(0.5, 0.25, 0.25)), workers=0).info
    rows = list(csv.DictReader(open(tmp_path / "out" / "manifest.csv")))
    per_split = {s: sum(1 for r in rows if r["split"] == s and r["status"] == "written") for s in ("train", "val", "test")}
    assert meta["splits"]["train"]["examples"] == 3 * per_split["train"]
    assert meta["splits"].get("val", {"examples": 0})["examples"] == per_split["val"]


def test_verify_names_the_damaged_shard_and_record(digit_folder, tmp_path):
    build(digit_folder, tmp_path / "out", workers=0)
    shard = sorted((tmp_path / "out").glob("train-*.tfrecord"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    problems = verify(tmp_path / "out")
    assert any(shard.name in p and "SHA-256" in p for p in problems)
    assert any(shard.name in p and "byte offset" in p for p in problems)
    result = CliRunner().invoke(app, ["verify", str(tmp_path / "out")])
    assert result.exit_code == 1 and shard.name in result.output


def test_unfinished_build_is_not_a_dataset_and_rerun_finishes_it(digit_folder, tmp_path):
    build(digit_folder, tmp_path / "out", workers=0)
    reference = shard_bytes(tmp_path / "out")
    (tmp_path / "out" / "_COMPLETE").unlink()  # as if killed before the end
    (tmp_path / "out" / ".tmp-train-00000-of-00001.tfrecord").write_bytes(b"half")
    with pytest.raises(LeafprepError, match="did not finish"):
        info(tmp_path / "out")
    build(digit_folder, tmp_path / "out", workers=0)
    assert shard_bytes(tmp_path / "out") == reference
    assert not list((tmp_path / "out").glob(".tmp-*"))


def test_build_refuses_a_foreign_non_empty_folder(digit_folder, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_text("precious")
    with pytest.raises(LeafprepError, match="not a leafprep dataset"):
        build(digit_folder, out, workers=0)
    assert (out / "thesis.docx").exists()


def test_cli_build_inspect_verify(digit_folder, tmp_path):
    runner = CliRunner()
    out = tmp_path / "ds"
    result = runner.invoke(app, ["build", str(digit_folder), "--out", str(out), "--split", "70/15/15", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "36 found = 36 written" in result.output
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 0
    inspected = runner.invoke(app, ["inspect", str(out)])
    assert inspected.exit_code == 0 and (out / "inspect.png").exists()
    assert "built with kind digit" in inspected.output and "split 0.7/0.15/0.15" in inspected.output  # not a Python dict


def test_swedish_leaves_build_with_two_to_one_split():
    source = SHARED / "leaves" / "swedish"
    if not source.exists():
        pytest.skip("../shared/data/leaves is not here")
    items = find_inputs(source)
    assert len(items) == 1125 and len({i.label for i in items}) == 15


def test_load_reports_missing_dataset(tmp_path):
    with pytest.raises(LeafprepError, match="not a leafprep dataset"):
        info(tmp_path)
    assert json.dumps(BuildOptions().__dict__)


def test_near_duplicates_share_a_split_and_crossing_pairs_are_reported(digit_folder, tmp_path, mnist_test):
    import cv2

    from leafprep.synthetic import ink_on_paper

    images, labels = mnist_test
    original = digit_folder / "2" / "big.png"  # a photo-sized picture and a resized, re-encoded copy of it
    original.write_bytes(encode(ink_on_paper(images[np.flatnonzero(labels == 2)[40]], scale=8), "PNG"))
    smaller = cv2.resize(cv2.imread(str(original)), None, fx=0.9, fy=0.9, interpolation=cv2.INTER_AREA)
    (digit_folder / "2" / "big-resent.jpg").write_bytes(cv2.imencode(".jpg", smaller, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
    report = build(digit_folder, tmp_path / "out", workers=0)
    splits = {item.source: item.split for item in report.items}
    assert splits["2/big.png"] == splits["2/big-resent.jpg"]
    assert report.info["near_duplicates"]["pairs"] == 1  # and no other pair among the small digits
    # With given splits the pair cannot be kept together: it is reported.
    root = tmp_path / "presplit"
    (root / "train" / "2").mkdir(parents=True)
    (root / "test" / "2").mkdir(parents=True)
    shutil.copy(original, root / "train" / "2" / "a.png")
    shutil.copy(digit_folder / "2" / "big-resent.jpg", root / "test" / "2" / "b.jpg")
    crossing = build(root, tmp_path / "out2", workers=0).info["near_duplicates"]["across_splits"]
    assert crossing == [["train/2/a.png", "test/2/b.jpg", "train", "test"]]


def test_ctrl_c_during_the_tensorflow_import_waits_for_the_import_to_finish():
    """A KeyboardInterrupt inside TensorFlow's import broke the import and made Python exit with -2 instead of 130."""
    import signal

    from leafprep._tf import interrupts_deferred

    # Python's own Ctrl-C handler, whatever earlier tests or the shell that started pytest left (a background job ignores SIGINT).
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        reached_end = False
        with pytest.raises(KeyboardInterrupt):
            with interrupts_deferred():
                signal.raise_signal(signal.SIGINT)
                reached_end = True
        assert reached_end
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


def test_tensorflow_for_records_comes_without_keras_and_keras_still_loads_in_full_later():
    """TensorFlow 2.21 imports Keras's optimizers (and matplotlib.pyplot) on import; records never use them."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from leafprep._tf import tensorflow\n"
        "tf = tensorflow()\n"
        "print(sorted(m for m in ('keras', 'keras.src.optimizers', 'matplotlib') if m in sys.modules))\n"
        "import keras\n"
        "print(keras.optimizers.Adam.__module__, tf.keras.layers.Dense.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "keras.src.optimizers.adam keras.src.layers.core.dense"


def test_ctrl_c_deferred_while_ignored_stays_ignored():
    """Under a shell that ignores SIGINT (nohup, a background job) the deferred interrupt is dropped, as it would have been."""
    import signal

    from leafprep._tf import interrupts_deferred

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts_deferred():
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
def test_interrupted_build_reruns_to_the_same_bytes(digit_folder, tmp_path, signal_name):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) or kill -9 at random moments."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    build(digit_folder, tmp_path / "reference", workers=0)
    out = tmp_path / "out"

    def command(folder: Path) -> list[str]:
        return [sys.executable, "-m", "leafprep.cli", "build", str(digit_folder), "--out", str(folder), "--workers", "2"]

    # The moments fall within how long an uninterrupted run takes here (3.2 s on an idle 2-core machine, far
    # longer on a busy one): fixed moments (they were 0.5-4 s) could all come after the end.
    started = time.perf_counter()
    subprocess.run(command(tmp_path / "timed"), check=True, capture_output=True)
    duration = time.perf_counter() - started
    assert shard_bytes(tmp_path / "timed") == shard_bytes(tmp_path / "reference")
    moments = random.Random(f"interrupt {signal_name}")
    interrupted = 0
    for _ in range(2):
        # Ctrl-C as a terminal delivers it: SIGINT not ignored (as it is under a background job) and sent to the process group.
        default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
        process = subprocess.Popen(
            command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=default_sigint
        )
        time.sleep(moments.uniform(0.2, 0.8) * duration)
        os.killpg(process.pid, getattr(signal, signal_name))
        _, errors = process.communicate(timeout=60)
        finished = (out / "_COMPLETE").exists()
        interrupted += not finished
        if signal_name == "SIGINT" and not finished:
            assert process.returncode == 130, errors
            assert "interrupted" in errors and "Traceback" not in errors
            assert not list(out.glob(".tmp-*"))  # no half-written shard, no spill file
        if not finished:
            assert verify(out) != []  # an unfinished dataset never passes
        build(digit_folder, out, workers=0)
        assert verify(out) == []
        assert shard_bytes(out) == shard_bytes(tmp_path / "reference")
    assert interrupted  # at least one moment fell before the end


def test_swedish_build_is_stratified_and_keeps_identical_scans_together(tmp_path):
    source = SHARED / "leaves" / "swedish"
    if not source.exists():
        pytest.skip("../shared/data/leaves is not here")
    report = build(source, tmp_path / "sw", BuildOptions(kind="leaf", size=28, split=parse_split("2/1")), workers=2)
    meta = report.info
    assert meta["labels"][0] == "01_Ulmus_carpinifolia" and len(meta["labels"]) == 15
    assert meta["inputs"]["found"] == 1125
    assert meta["inputs"]["written"] + meta["inputs"]["duplicate"] + meta["inputs"]["rejected"] == 1125
    assert meta["inputs"]["duplicate"] == 3  # the three identical pairs of Populus tremula
    for name in meta["labels"]:
        train, test = meta["splits"]["train"]["per_class"][name], meta["splits"]["test"]["per_class"][name]
        assert abs(train - 2 / 3 * (train + test)) <= 1, name  # stratified: 50 or 49 of 75 in train
    splits = {item.source: item.split for item in report.items}
    for a, b in (("l8nr016", "l8nr017"), ("l8nr031", "l8nr032"), ("l8nr070", "l8nr071")):
        assert splits[f"08_Populus_tremula/{a}.jpg"] == splits[f"08_Populus_tremula/{b}.jpg"]
    assert verify(tmp_path / "sw") == []


def test_full_disk_gives_a_clear_error_and_no_complete_marker(digit_folder, tmp_path, monkeypatch):
    import errno

    import leafprep.build as builder

    real = builder.serialize_example
    calls = {"n": 0}

    def filling_up(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 10:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(builder, "serialize_example", filling_up)
    result = CliRunner().invoke(app, ["build", str(digit_folder), "--out", str(tmp_path / "out"), "--workers", "0"])
    assert result.exit_code == 1
    assert "No space left on device" in result.output and "incomplete" in result.output
    assert not (tmp_path / "out" / "_COMPLETE").exists()
    assert not list((tmp_path / "out").glob("*.tfrecord"))  # no shard, not even a temporary one
    with pytest.raises(LeafprepError, match=r"not a leafprep dataset|did not finish"):
        info(tmp_path / "out")
