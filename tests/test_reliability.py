"""Reliability: the bad-input corpus through every command, build accounting, writes kept inside --out,
damaged shards, property-based tests and the security rules (docs/reliability.md)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from corpus import cases, make_corpus, markdown_table
from test_build import digit_folder, mnist_records  # noqa: F401 - a fixture

from leafprep.errors import LeafprepError, printable
from photos import ROOT, encode, page_with_digit

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def cli(*args: str | os.PathLike[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``leafprep`` in a process of its own, as a user would.

    As root, the process runs without the capabilities that let root read any
    file, so that a file without read permission is unreadable, as it is for a
    user (and in CI, which runs as root).
    """
    command = [sys.executable, "-m", "leafprep.cli", *map(str, args)]
    if os.geteuid() == 0 and shutil.which("setpriv"):
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *command]
    environment = {**os.environ, "COLUMNS": "400", "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=environment, timeout=300)


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]


def message_for(case, output: str) -> str:
    """The line of ``output`` about ``case``'s file ('' when there is none)."""
    shown = printable(case.path.name)
    return next((line for line in output.splitlines() if shown in line and ": " in line), "")


def check_outcome(case, expected: str, output: str, written: bool) -> None:
    kind, _, text = expected.partition(": ")
    line = message_for(case, output)
    if kind == "error":
        assert not written, f"{case.name}: written, but {expected!r} was promised"
        assert text in line, f"{case.name}: {expected!r} promised, got {line!r}"
    else:
        assert written, f"{case.name}: not written ({line!r})"
        if kind == "warning":
            assert text in line, f"{case.name}: {expected!r} promised, got {line!r}"


@pytest.fixture(scope="module")
def digit_corpus(tmp_path_factory) -> list:
    return make_corpus(tmp_path_factory.mktemp("corpus") / "7", "digit")


def test_the_corpus_table_in_the_docs_is_the_one_the_tests_check():
    assert len(cases()) >= 25 and len({case.name for case in cases()}) == len(cases())
    page = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    assert markdown_table() in page, "docs/reliability.md is out of date: paste the table that 'python tests/corpus.py' prints"


def test_normalize_gives_every_corpus_case_its_documented_result(digit_corpus, tmp_path):
    result = cli("normalize", *(case.path for case in digit_corpus), "--out", tmp_path / "out")
    no_traceback(result)
    failures = [case for case in digit_corpus if case.digit.startswith("error")]
    assert result.returncode == 1
    assert f"{len(digit_corpus) - len(failures)} of {len(digit_corpus)} input(s); {len(failures)} failed" in result.stderr
    written = {path.stem for path in (tmp_path / "out").iterdir()}
    for case in digit_corpus:
        check_outcome(case, case.digit, result.stderr, Path(case.filename).stem in written)


def test_segment_gives_every_leaf_corpus_case_its_documented_result(tmp_path):
    corpus = make_corpus(tmp_path / "leaves", "leaf")
    result = cli("segment", *(case.path for case in corpus), "--kind", "leaf", "--out", tmp_path / "masks")
    no_traceback(result)
    assert result.returncode == 1
    written = {path.stem for path in (tmp_path / "masks").iterdir()}
    for case in corpus:
        check_outcome(case, case.leaf, result.stderr, Path(case.filename).stem in written)


def manifest(folder: Path) -> list[dict[str, str]]:
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def check_accounting(folder: Path, found: int) -> list[dict[str, str]]:
    """written + rejected + duplicate = inputs found, in dataset_info.json and in the manifest; every rejection says why."""
    import json

    rows = manifest(folder)
    counts = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))["inputs"]
    assert counts["found"] == found == len(rows)
    assert counts["written"] + counts["rejected"] + counts["duplicate"] == found
    assert all(row["reason"] for row in rows if row["status"] in ("rejected", "duplicate"))
    return rows


def test_build_accounts_for_every_corpus_file_and_gives_each_its_result(digit_corpus, tmp_path):
    source = digit_corpus[0].path.parent.parent
    result = cli("build", source, "--out", tmp_path / "ds", "--kind", "digit", "--workers", "2")
    no_traceback(result)
    assert result.returncode == 1  # some inputs were rejected
    files = [case for case in digit_corpus if case.is_file]
    rows = {row["source"]: row for row in check_accounting(tmp_path / "ds", len(files))}
    for case in files:
        row = rows[printable(f"7/{case.filename}".encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))]
        kind, _, text = case.digit.partition(": ")
        if kind == "error":
            assert row["status"] == "rejected" and text in row["reason"], (case.name, row)
        else:
            assert row["status"] == "written", (case.name, row)
    assert cli("verify", tmp_path / "ds").returncode == 0


@pytest.fixture(scope="module")
def digit_run(tmp_path_factory, mnist_test):
    """A softmax run trained for a few steps on MNIST digits: enough to predict with."""
    from trainers.train import train

    images, labels = mnist_test
    root = tmp_path_factory.mktemp("run")
    train(mnist_records(root, images, labels, 256), root / "run", model="softmax", epochs=1, max_steps=4, batch_size=64, verbose=0)
    return root / "run"


def test_predict_gives_every_corpus_case_its_documented_result(digit_corpus, digit_run):
    result = cli("predict", digit_run, *(case.path for case in digit_corpus))
    no_traceback(result)
    assert result.returncode == 1
    for case in digit_corpus:
        answered = bool(message_for(case, result.stdout))
        check_outcome(case, case.digit, result.stderr, answered)


def test_exif_orientations_normalise_like_the_upright_photo(digit_corpus, tmp_path):
    from leafprep import normalize

    upright = tmp_path / "upright.jpg"
    upright.write_bytes(encode(page_with_digit(), "JPEG", quality=95))
    reference = normalize(upright)
    for case in digit_corpus:
        if case.name.startswith("EXIF orientation"):
            image = normalize(case.path)
            assert np.corrcoef(image.ravel(), reference.ravel())[0, 1] > 0.95, case.name


def test_a_file_that_vanishes_during_a_build_is_rejected_and_counted(digit_folder, tmp_path, monkeypatch):  # noqa: F811
    import leafprep.build as builder

    listed = builder.find_inputs

    def find_then_lose_one(source):
        items = listed(source)
        items[3].path.unlink()  # gone between the listing and the reading
        return items

    monkeypatch.setattr(builder, "find_inputs", find_then_lose_one)
    report = builder.build(digit_folder, tmp_path / "ds", workers=0)
    rows = check_accounting(tmp_path / "ds", len(report.items))
    lost = [row for row in rows if row["status"] == "rejected"]
    assert len(lost) == 1 and "vanished" in lost[0]["reason"]


# -- nothing written outside --out ----------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` (links not followed) with its size and modification time."""
    found = {}
    for path in folder.rglob("*"):
        status = path.lstat()
        found[str(path)] = (status.st_size, status.st_mtime_ns)
    return found


def test_nothing_is_written_outside_out_whatever_the_inputs_point_at(tmp_path):
    page = encode(page_with_digit(), "PNG")
    outside = tmp_path / "elsewhere"
    (outside / "photos").mkdir(parents=True)
    for n in range(3):
        (outside / "photos" / f"{n}.png").write_bytes(encode(page_with_digit(digit=str(n)), "PNG"))
    work = tmp_path / "work"
    tree = work / "tree"
    (tree / "7").mkdir(parents=True)
    (tree / "7" / "own.png").write_bytes(page)
    os.symlink(outside / "photos" / "1.png", tree / "7" / "link-to-file.png")  # a file outside the tree: read
    os.symlink(outside / "photos", tree / "7" / "link-to-folder")  # a folder outside: listed, not followed
    rows = [
        ("../elsewhere/photos/0.png", "../../../etc"),  # '..' in the path and in the label
        (str(outside / "photos" / "2.png"), "/absolute/label"),  # an absolute path
        ("tree/7/own.png", "seven\nlines"),
    ]
    table = work / "list.csv"
    with open(table, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("path", "label"), *rows])
    out = work / "out"
    out.mkdir()
    before = snapshot(tmp_path)
    for arguments in (
        ("build", table, "--out", out / "from-csv", "--kind", "digit", "--workers", "0", "--split", "100/0/0"),
        ("build", tree, "--out", out / "from-tree", "--kind", "digit", "--workers", "0"),
        ("normalize", tree, "--out", out / "normalised"),
        ("augment", tree, "--out", out / "augmented", "--n", "1"),
        ("segment", tree, "--kind", "leaf", "--out", out / "masks"),
    ):
        result = cli(*arguments, cwd=work)
        no_traceback(result)
    after = snapshot(tmp_path)
    changed = {path for path in after if path not in before or after[path] != before[path]}
    assert changed and all(path.startswith(str(out)) for path in changed), sorted(p for p in changed if not p.startswith(str(out)))
    labels = (out / "from-csv" / "labels.txt").read_text(encoding="utf-8").splitlines()
    assert labels == ["../../../etc", "/absolute/label", "seven\\nlines"]  # names, never paths; one line each
    tree_rows = {row["source"]: row for row in manifest(out / "from-tree")}
    assert tree_rows["7/link-to-file.png"]["status"] == "written"
    assert tree_rows["7/link-to-folder"]["status"] == "rejected" and "does not follow" in tree_rows["7/link-to-folder"]["reason"]
    assert {path.name for path in (out / "normalised" / "7").iterdir()} == {"own.png", "link-to-file.png"}


# -- damaged shards -------------------------------------------------------------------------------


@pytest.fixture
def built(digit_folder, tmp_path) -> Path:  # noqa: F811
    from leafprep.build import BuildOptions, build

    build(digit_folder, tmp_path / "ds", BuildOptions(split=(1.0, 0.0, 0.0)), workers=0)
    return tmp_path / "ds"


def damage(shard: Path, how: str) -> None:
    from leafprep.records import iter_records

    starts = [offset for offset, _ in iter_records(shard)]
    assert len(starts) == 36
    data = bytearray(shard.read_bytes())
    if how == "flipped bytes":
        data[starts[5] + 12 + 100] ^= 0xFF  # inside record 5's payload
        data[starts[9] + 3] ^= 0xFF  # inside record 9's length field
    else:
        del data[starts[30] + 50 :]  # cut inside record 30
    shard.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["flipped bytes", "truncated"])
def test_verify_and_the_reader_name_the_damaged_file_and_record(built, how):
    from leafprep.records import DatasetError, iter_records, verify

    shard = next(built.glob("train-*.tfrecord"))
    damage(shard, how)
    damaged = [5, 9] if how == "flipped bytes" else [30]
    problems = verify(built)
    for number in damaged:
        assert any(shard.name in problem and f"record {number} (byte offset" in problem for problem in problems), problems
    with pytest.raises(DatasetError, match=f"record {damaged[0]} "):
        list(iter_records(shard))
    result = cli("verify", built)
    assert result.returncode == 1 and shard.name in result.stderr
    no_traceback(result)


@pytest.mark.parametrize("how", ["flipped bytes", "truncated"])
def test_the_reader_skips_damaged_records_when_asked(built, how):
    from leafprep.errors import LeafprepWarning
    from leafprep.records import DatasetError, iter_records, load, reading

    shard = next(built.glob("train-*.tfrecord"))
    damage(shard, how)
    good = 34 if how == "flipped bytes" else 30
    with pytest.warns(LeafprepWarning, match=shard.name):
        assert len(list(iter_records(shard, skip_damaged=True))) == good
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = np.concatenate([y.numpy() for _, y in load(built, "train", batch_size=8, skip_damaged=True)])
    assert len(labels) == good
    assert any(shard.name in str(w.message) and "skipped" in str(w.message) for w in caught)
    with pytest.raises(DatasetError, match=r"record \d+ \(byte offset \d+\) is damaged") as error:
        with reading(built):
            for _ in load(built, "train", batch_size=8):
                pass
    assert error.value.source == str(shard)


def test_training_on_a_damaged_dataset_names_the_record_or_skips_it(built, tmp_path):
    shard = next(built.glob("train-*.tfrecord"))
    damage(shard, "flipped bytes")
    stopped = cli("train", built, "--out", tmp_path / "run", "--model", "softmax", "--epochs", "1")
    no_traceback(stopped)
    assert stopped.returncode == 1 and shard.name in stopped.stderr and "record 5 (byte offset" in stopped.stderr
    skipped = cli("train", built, "--out", tmp_path / "run", "--model", "softmax", "--epochs", "1", "--skip-damaged")
    no_traceback(skipped)
    assert skipped.returncode == 0 and "warning:" in skipped.stderr and "record 5" in skipped.stderr


# -- property-based tests -------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

_DTYPES = st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64, np.bool_])
_SHAPES = st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=80),
    st.tuples(st.integers(1, 80), st.integers(1, 80), st.sampled_from([1, 2, 3, 4, 5])),
    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
)


@st.composite
def images(draw):
    """Arrays of many shapes and dtypes: noise, constants, floats out of range, NaN and inf."""
    dtype = np.dtype(draw(_DTYPES))
    shape = draw(_SHAPES)
    if dtype.kind == "f":
        width = 32 if dtype == np.float32 else 64
        elements = st.one_of(st.floats(-2.0, 2.0, width=width), st.sampled_from([np.nan, np.inf, -np.inf]))
    else:
        elements = None
    array = draw(hnp.arrays(dtype, shape, elements=elements, fill=st.nothing() if elements is None else None))
    if draw(st.booleans()) and array.size:
        array = np.full_like(array, array.flat[0])  # a constant image
    return array


_PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(images(), st.sampled_from(["digit", "leaf"]), st.sampled_from([28, 32]))
def test_normalize_gives_the_promised_shape_and_range_or_a_documented_error(array, kind, size):
    from leafprep import normalize

    try:
        result = normalize(array, kind, size)
    except LeafprepError:
        return
    assert result.dtype == np.float32 and result.shape[:2] == (size, size)
    assert np.isfinite(result).all() and result.min() >= 0.0 and result.max() <= 1.0


@_PROPERTY
@given(images(), st.sampled_from(["digit", "leaf"]))
def test_segment_gives_a_full_size_mask_or_a_documented_error(array, kind):
    from leafprep import segment

    try:
        mask = segment(array, kind)
    except LeafprepError:
        return
    assert mask.dtype == np.bool_ and mask.shape == array.shape[:2] and mask.any()


# -- security -------------------------------------------------------------------------------------


def test_models_load_only_in_keras_safe_mode(tmp_path, digit_run):
    """A run whose model holds a Lambda layer (arbitrary Python code) is refused, not executed."""
    import keras

    from trainers.runs import load_run

    run = tmp_path / "run"
    shutil.copytree(digit_run, run)
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(keras.layers.Lambda(lambda x: x * 2.0)(inputs)))
    keras.Model(inputs, outputs).save(run / "model.keras")
    with pytest.raises(LeafprepError, match=r"cannot be loaded"):
        load_run(run)


def test_no_pickle_eval_or_shell_on_user_data():
    """The library never unpickles, evaluates or hands user data to a shell."""
    import re

    forbidden = re.compile(
        r"\bpickle\b|\beval\(|\bexec\(|shell=True|os\.system|os\.popen|allow_pickle=True|yaml\.load\(|yaml\.unsafe_load|safe_mode=False"
    )
    offenders = []
    for folder in ("leafprep", "trainers"):
        for path in (ROOT / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if forbidden.search(line.split("#")[0]):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, offenders


def test_the_pixel_limit_applies_to_every_command(tmp_path):
    from photos import png_header_only

    bomb = tmp_path / "7" / "bomb.png"
    bomb.parent.mkdir()
    bomb.write_bytes(png_header_only(20000, 20000))
    (tmp_path / "7" / "ok.png").write_bytes(encode(page_with_digit(), "PNG"))
    for arguments in (("normalize", bomb, "--out", tmp_path / "n"), ("segment", bomb, "--out", tmp_path / "s")):
        result = cli(*arguments)
        assert result.returncode == 1 and "over the limit" in result.stderr
    cli("build", tmp_path, "--out", tmp_path / "ds", "--workers", "0")
    row = next(row for row in manifest(tmp_path / "ds") if row["source"] == "7/bomb.png")
    assert row["status"] == "rejected" and "over the limit" in row["reason"]
