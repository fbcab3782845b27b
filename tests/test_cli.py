from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from leafprep.cli import app
from photos import encode, page_with_digit

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "seven.jpg"
    path.write_bytes(encode(page_with_digit(), "JPEG", quality=92))
    return path


def test_help_lists_every_command():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "normalize" in result.output and "segment" in result.output


def test_version_prints_version():
    from leafprep import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_normalize_writes_28x28_mnist_polarity_png(photo, tmp_path):
    out = tmp_path / "digit.png"
    result = invoke("normalize", photo, "--out", out)
    assert result.exit_code == 0, result.output
    image = np.asarray(Image.open(out))
    assert image.shape == (28, 28) and image.dtype == np.uint8
    assert image.max() == 255 and image[0, 0] == 0  # ink bright on black


def test_normalize_writes_npy_by_extension_and_honours_size(photo, tmp_path):
    out = tmp_path / "digit.npy"
    assert invoke("normalize", photo, "--out", out, "--size", 56).exit_code == 0
    array = np.load(out)
    assert array.shape == (56, 56) and array.dtype == np.float32 and array.max() == 1.0


def test_normalize_output_equals_api(photo, tmp_path):
    import leafprep

    out = tmp_path / "d.npy"
    invoke("normalize", photo, "--out", out)
    np.testing.assert_array_equal(np.load(out), leafprep.normalize(photo))


def test_normalize_preview_prints_block_picture(photo, tmp_path):
    result = invoke("normalize", photo, "--out", tmp_path / "d.png", "--preview")
    assert result.exit_code == 0
    picture = [line for line in result.stdout.splitlines() if "█" in line]
    assert 10 <= len(picture) <= 28
    assert all(len(line) <= 56 for line in picture)


def test_normalize_steps_writes_picture(photo, tmp_path):
    steps = tmp_path / "steps.png"
    assert invoke("normalize", photo, "--out", tmp_path / "d.png", "--steps", steps).exit_code == 0
    picture = Image.open(steps)
    assert picture.format == "PNG" and picture.width > 3 * picture.height


def test_normalize_all_writes_every_digit_of_a_sheet(tmp_path):
    sheet = Path(__file__).resolve().parent.parent / "sample_data" / "sheets" / "sheet-0123456789.jpg"
    result = invoke("normalize", sheet, "--all", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [f"sheet-0123456789-{i:02d}.png" for i in range(10)]
    # The preview names each digit as its file and as segment --all do: #00 .. #09, with its box.
    shown = invoke("normalize", sheet, "--all", "--out", tmp_path / "again", "--preview")
    assert shown.exit_code == 0 and "sheet-0123456789.jpg #00: box x=" in shown.output and " #09: box " in shown.output


def test_normalize_folder_mirrors_its_layout(tmp_path):
    source = tmp_path / "photos"
    for label in ("3", "8"):
        (source / label).mkdir(parents=True)
        (source / label / "a.png").write_bytes(encode(page_with_digit(digit=label), "PNG"))
    assert invoke("normalize", source, "--out", tmp_path / "out").exit_code == 0
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png")) == ["3/a.png", "8/a.png"]


def test_normalize_accepts_glob_patterns(tmp_path):
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(encode(page_with_digit(), "PNG"))
    result = invoke("normalize", str(tmp_path / "*.png"), "--out", tmp_path / "out")
    assert result.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]


def test_normalize_refuses_single_output_file_for_many_inputs(photo, tmp_path):
    other = tmp_path / "other.jpg"
    other.write_bytes(photo.read_bytes())
    result = invoke("normalize", photo, other, "--out", tmp_path / "one.png")
    assert result.exit_code == 2
    assert "give a folder" in result.output


@pytest.mark.parametrize("case", ["zero-byte PNG", "text file named .jpg", "blank white page"])
def test_normalize_single_bad_input_exits_1_with_message(tmp_path, case):
    """The whole corpus goes through every command in test_reliability.py."""
    from corpus import make_corpus

    found = next(c for c in make_corpus(tmp_path / "in") if c.name == case)
    result = runner.invoke(app, ["normalize", str(found.path), "--out", str(tmp_path / "o.png")], terminal_width=400)
    assert result.exit_code == 1
    assert found.failure in result.output and found.path.name in result.output


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_leafprep_does_not_import_tensorflow_or_opencv():
    assert run_python("import sys, leafprep; print(sorted(m for m in ('tensorflow', 'keras', 'cv2') if m in sys.modules))") == "[]"


def test_help_and_normalize_do_not_import_tensorflow(photo, tmp_path):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from leafprep.cli import app\n"
        "CliRunner().invoke(app, ['--help'])\n"
        "assert 'cv2' not in sys.modules\n"
        f"r = CliRunner().invoke(app, ['normalize', {str(photo)!r}, '--out', {str(tmp_path / 'x.png')!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    assert run_python(code) == "False False"


def test_normalize_contact_sheet_shows_every_input(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes(encode(page_with_digit(), "PNG"))
    sheet = tmp_path / "sheet.png"
    result = invoke("normalize", tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png", "--out", tmp_path / "o", "--contact-sheet", sheet)
    assert result.exit_code == 0
    picture = np.asarray(Image.open(sheet))
    assert picture.shape[0] < picture.shape[1] and picture.shape[1] >= 3 * 2 * 112


def test_two_inputs_that_would_share_a_result_name_both_get_one_and_the_renamed_one_is_said(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "seven.png").write_bytes(encode(page_with_digit(), "PNG"))
    (tmp_path / "in" / "seven.jpg").write_bytes(encode(page_with_digit(), "JPEG"))
    result = invoke("normalize", tmp_path / "in", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["seven.png", "seven_2.png"]
    assert "written as" in result.output and "seven_2.png" in result.output and "seven.png is" in result.output


def test_normalize_all_contact_sheet_shows_each_digits_piece_of_the_photo_beside_it(tmp_path):
    from leafprep.figures import thumbnail

    source = Path(__file__).resolve().parent.parent / "sample_data" / "sheets" / "sheet-0123456789.jpg"
    sheet = tmp_path / "sheet.png"
    result = invoke("normalize", source, "--all", "--out", tmp_path / "o", "--contact-sheet", sheet)
    assert result.exit_code == 0, result.output
    picture = np.asarray(Image.open(sheet).convert("RGB")).astype(int)
    assert picture.shape[1] == 5 * (2 * 112 + 8)  # ten digits, five a row: each a photo and a result
    import leafprep

    first = leafprep.normalize_all(source)[0]
    x, y, w, h = first.box
    photo = leafprep.load_image(source)
    pad = max(2, round(0.05 * max(w, h)))
    expected = thumbnail(photo[max(0, y - pad) : y + h + pad, max(0, x - pad) : x + w + pad], 112).astype(int)
    assert np.abs(picture[4:116, 4:116] - expected).mean() < 2  # the "0" as it is on the sheet, not a blank tile


@pytest.fixture
def leaf_file(tmp_path) -> Path:
    from leafprep.synthetic import leaf_photo

    photo, _ = leaf_photo("ovata", np.random.default_rng(3), background="card")
    path = tmp_path / "leaf.jpg"
    path.write_bytes(encode(photo, "JPEG", quality=92))
    return path


def test_normalize_makes_leaves_the_size_build_makes_them_and_digits_mnists_when_no_size_is_given(leaf_file, tmp_path):
    assert invoke("normalize", leaf_file, "--kind", "leaf", "--out", tmp_path / "leaf.png").exit_code == 0
    (tmp_path / "digit.png").write_bytes(encode(page_with_digit(), "PNG"))
    assert invoke("normalize", tmp_path / "digit.png", "--out", tmp_path / "digit-out.png").exit_code == 0
    assert Image.open(tmp_path / "leaf.png").size == (64, 64) and Image.open(tmp_path / "digit-out.png").size == (28, 28)


def test_segment_writes_full_size_mask_and_overlay(leaf_file, tmp_path):
    result = invoke("segment", leaf_file, "--out", tmp_path / "mask.png", "--overlay", tmp_path / "overlay.png")
    assert result.exit_code == 0, result.output
    mask = np.asarray(Image.open(tmp_path / "mask.png"))
    photo = Image.open(leaf_file)
    assert mask.shape == (photo.height, photo.width) and set(np.unique(mask)) == {0, 255}
    assert np.asarray(Image.open(tmp_path / "overlay.png")).shape == (photo.height, photo.width, 3)


def test_segment_batch_reports_no_leaf_and_goes_on(leaf_file, tmp_path):
    blank = tmp_path / "blank.png"
    blank.write_bytes(encode(np.full((200, 150, 3), (200, 120, 150), np.uint8), "PNG"))
    result = runner.invoke(app, ["segment", str(leaf_file), str(blank), "--out", str(tmp_path / "masks")], terminal_width=300)
    assert result.exit_code == 1
    assert "no leaf found" in result.output and "blank.png" in result.output
    assert (tmp_path / "masks" / "leaf.png").exists()


def test_normalize_leaf_rgb_mode_writes_colour_png(leaf_file, tmp_path):
    out = tmp_path / "leaf.png"
    result = invoke("normalize", leaf_file, "--kind", "leaf", "--size", 64, "--mode", "rgb", "--orient", "--out", out, "--steps", tmp_path / "s.png")
    assert result.exit_code == 0, result.output
    image = np.asarray(Image.open(out))
    assert image.shape == (64, 64, 3) and image[0, 0].max() == 0
    assert (tmp_path / "s.png").exists()


def test_normalize_reports_leaf_warnings_without_failing(tmp_path):
    from leafprep.synthetic import leaf_photo

    photo, _ = leaf_photo("ovata", np.random.default_rng(3), background="card")
    cut = tmp_path / "cut.png"
    cut.write_bytes(encode(np.ascontiguousarray(photo[150:]), "PNG"))
    result = runner.invoke(app, ["normalize", str(cut), "--kind", "leaf", "--out", str(tmp_path / "o.png")], terminal_width=300)
    assert result.exit_code == 0
    assert "warning" in result.output and "touches the image border" in result.output


def test_normalize_auto_says_what_it_chose(leaf_file, tmp_path):
    result = runner.invoke(app, ["normalize", str(leaf_file), "--kind", "auto", "--out", str(tmp_path / "o.png")], terminal_width=300)
    assert result.exit_code == 0
    assert "kind=auto chose leaf" in result.output


def test_normalize_refuses_mode_for_digits(photo, tmp_path):
    result = invoke("normalize", photo, "--mode", "rgb", "--out", tmp_path / "o.png")
    assert result.exit_code == 2 and "--mode is for leaves" in result.output


@pytest.mark.parametrize("runner_name", ["beam", "dask"])
def test_build_all_on_beam_or_dask_is_refused_as_a_usage_error_naming_the_runner_given(tmp_path, runner_name):
    result = runner.invoke(app, ["build", str(tmp_path), "--kind", "leaf", "--all", "--out", str(tmp_path / "ds"), "--runner", runner_name])
    assert result.exit_code == 2
    assert f"--all (every leaf of a photo) is built by the local runner only: leave out --runner {runner_name}" in result.output
    assert "building on" not in result.output and "every:" not in result.output
    assert not (tmp_path / "ds").exists()
