from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from leafprep.cli import app
from photos import encode, page_with_digit, png_header_only

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


def bad_inputs(folder: Path) -> dict[str, tuple[Path, str | None]]:
    """The bad inputs of the foundation issue: name -> (path, expected message or None for success)."""
    good = page_with_digit()
    cases: dict[str, tuple[bytes | None, str, str | None]] = {}
    jpeg = encode(good, "JPEG")
    cases["empty file"] = (b"", "empty.png", "empty")
    cases["truncated JPEG"] = (jpeg[: len(jpeg) // 2], "truncated.jpg", "truncated")
    cases["text named .jpg"] = (b"shopping list: milk\n", "text.jpg", "not a recognised image")
    cases["1x1 image"] = (encode(np.zeros((1, 1, 3), np.uint8), "PNG"), "one.png", "no digit found")
    cases["blank white page"] = (encode(np.full((300, 200, 3), 245, np.uint8), "JPEG"), "blank.jpg", "no digit found")
    cases["all-black image"] = (encode(np.zeros((300, 200, 3), np.uint8), "PNG"), "black.png", "no digit found")
    gray16 = (page_with_digit()[..., 0].astype(np.uint16) * 257).astype(np.uint16)
    cases["16-bit PNG"] = (encode(Image.fromarray(gray16), "PNG"), "sixteen.png", None)
    rgba = np.dstack([np.zeros_like(good), 255 - good[..., :1]])  # black ink, transparent paper
    cases["RGBA PNG"] = (encode(rgba, "PNG"), "rgba.png", None)
    cases["CMYK JPEG"] = (encode(Image.fromarray(good).convert("CMYK"), "JPEG"), "cmyk.jpg", None)
    cases["greyscale JPEG"] = (encode(good[..., 0], "JPEG"), "grey.jpg", None)
    buffer = io.BytesIO()
    frames = [Image.fromarray(good), Image.new("RGB", good.shape[1::-1])]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    cases["animated GIF"] = (buffer.getvalue(), "anim.gif", None)
    cases["PNG header 30000x30000"] = (png_header_only(30000, 30000), "huge.png", "over the limit")
    cases["non-ASCII name"] = (jpeg, "zahl sieben ñ ü 七.jpg", None)
    cases["folder passed as a file"] = (None, "folder.jpg", "no image files")
    paths = {}
    for name, (data, filename, expected) in cases.items():
        path = folder / filename
        if data is None:
            path.mkdir()
        else:
            path.write_bytes(data)
        paths[name] = (path, expected)
    return paths


def test_normalize_batch_reports_each_bad_input_and_goes_on(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cases = bad_inputs(folder)
    arguments = [str(path) for path, _ in cases.values()]
    result = runner.invoke(app, ["normalize", *arguments, "--out", str(tmp_path / "out")], terminal_width=400)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    written = {p.stem for p in (tmp_path / "out").iterdir()}
    failures = [name for name, (_, expected) in cases.items() if expected]
    assert f"{len(cases) - len(failures)} of {len(cases)} input(s); {len(failures)} failed" in result.output
    for name, (path, expected) in cases.items():
        if expected is None:
            assert path.stem in written, name
        else:
            line = next((line for line in result.output.splitlines() if path.name in line), "")
            assert expected in line, f"{name}: {line!r}"


@pytest.mark.parametrize("case", ["empty file", "text named .jpg", "blank white page"])
def test_normalize_single_bad_input_exits_1_with_message(tmp_path, case):
    path, expected = bad_inputs(tmp_path)[case]
    result = runner.invoke(app, ["normalize", str(path), "--out", str(tmp_path / "o.png")], terminal_width=400)
    assert result.exit_code == 1
    assert expected in result.output and path.name in result.output


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


@pytest.fixture
def leaf_file(tmp_path) -> Path:
    from leafprep.synthetic import leaf_photo

    photo, _ = leaf_photo("ovata", np.random.default_rng(3), background="card")
    path = tmp_path / "leaf.jpg"
    path.write_bytes(encode(photo, "JPEG", quality=92))
    return path


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


def test_segment_leaf_batch_over_bad_inputs_reports_every_failure(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cases = bad_inputs(folder)
    arguments = [str(path) for path, _ in cases.values()]
    result = runner.invoke(app, ["segment", *arguments, "--kind", "leaf", "--out", str(tmp_path / "masks")], terminal_width=400)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    written = {p.stem for p in (tmp_path / "masks").iterdir()}
    for name, (path, expected) in cases.items():
        if expected is None:
            assert path.stem in written, name
            continue
        line = next((line for line in result.output.splitlines() if path.name in line and ":" in line), "")
        wanted = "no leaf found" if expected == "no digit found" else expected
        assert wanted in line, f"{name}: {line!r}"
