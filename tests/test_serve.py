"""``leafprep serve``: the JSON API through FastAPI's in-process client, the command, and a real server process."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serving import SAMPLES, drawn_seven
from typer.testing import CliRunner

import leafprep
from leafprep.cli import app as cli
from leafprep.errors import printable
from photos import encode, png_header_only

pytest.importorskip("fastapi", reason="leafprep serve's extra is not installed (pip install 'leafprep[serve]')")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

from fastapi.testclient import TestClient  # noqa: E402

from leafprep.serve.app import Limits, create_app  # noqa: E402

SEVEN = encode(drawn_seven(), "PNG")
PHOTO = SAMPLES / "digits" / "3" / "photo-1.jpg"
SHEET = SAMPLES / "sheets" / "sheet-0123456789.jpg"
LEAF = SAMPLES / "leaves" / "ovata" / "leaf-1.jpg"


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(served, Limits(max_upload_bytes=2 * 1024 * 1024, dream_steps=20))) as client:
        yield client


def picture(url: str) -> np.ndarray:
    """The pixels of a PNG data URL."""
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :]))))


def assert_refused(response, status: int, words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and words in body["reason"], body
    assert body["message"].startswith(body["source"] + ": ")
    return body


def assert_reads_seven(client) -> None:
    response = client.post("/api/predict", content=SEVEN)
    assert response.status_code == 200 and response.json()["label"] == "7", response.text


# --- the routes ------------------------------------------------------------------------------


def test_runs_lists_each_run_with_kind_size_labels_and_test_accuracy(client):
    body = client.get("/api/runs").json()
    runs = {run["name"]: run for run in body["runs"]}
    assert list(runs) == ["convnet", "softmax", "leaves"] and body["default"] == "convnet"
    assert runs["convnet"]["kind"] == "digit" and runs["convnet"]["size"] == 28 and runs["convnet"]["labels"] == [str(d) for d in range(10)]
    assert runs["convnet"]["test_accuracy"] > 0.9 and runs["convnet"]["model"] == "convnet"
    assert (runs["convnet"]["learned"], runs["convnet"]["attention"]) == ("dream", "gradcam")
    assert (runs["softmax"]["learned"], runs["softmax"]["attention"]) == ("weights", "saliency")
    assert runs["leaves"]["kind"] == "leaf" and runs["leaves"]["labels"] == ["lanceolata", "ovata", "palmata", "quercoides"]
    assert runs["leaves"]["test_accuracy"] is None  # trained without a test split: nothing to show
    assert body["limits"]["max_upload_bytes"] == 2 * 1024 * 1024


def test_a_drawn_seven_is_read_as_seven_with_its_probability_as_body_or_multipart(client):
    for response in (
        client.post("/api/predict", content=SEVEN, headers={"content-type": "image/png"}),
        client.post("/api/predict?run=convnet&top=3", files={"file": ("drawing.png", SEVEN, "image/png")}),
    ):
        body = response.json()
        assert response.status_code == 200, body
        assert body["run"] == "convnet" and body["kind"] == "digit" and body["sheet"] is False and body["digits"] == []
        assert body["label"] == "7" and body["top"][0] == {"label": "7", "probability": body["probability"]} and body["probability"] > 0.5
        assert [entry["probability"] for entry in body["top"]] == sorted((entry["probability"] for entry in body["top"]), reverse=True)
        assert body["image_size"] == [280, 280] and "steps" not in body
        assert body["learned"] == {"what": "dream", "label": "7", "url": "/api/learned?run=convnet&label=7"}
        assert re.match(r"app;dur=[\d.]+, decode;dur=[\d.]+, normalize;dur=[\d.]+, network;dur=[\d.]+$", response.headers["server-timing"])
    assert len(body["top"]) == 3


def test_steps_add_every_step_picture_and_the_attention_map_as_png_data_urls(client):
    body = client.post("/api/predict?steps=true", files={"file": (PHOTO.name, PHOTO.read_bytes(), "image/jpeg")}).json()
    assert list(body["steps"]) == ["photo", "light", "mask", "crop", "input"]
    pictures = {name: picture(url) for name, url in body["steps"].items()}
    assert max(pictures["photo"].shape[:2]) <= 480 and pictures["photo"].ndim == 3
    expected = np.clip(np.rint(leafprep.normalize(PHOTO) * 255), 0, 255).astype(np.uint8)
    assert np.array_equal(pictures["input"], expected)  # the network's input is leafprep.normalize's image
    assert body["attention"]["method"] == "gradcam" and picture(body["attention"]["picture"]).shape == (112, 112, 3)
    assert body["notes"] == ["ink darker than the paper"]


def test_a_photo_of_one_digit_gets_the_answer_of_leafprep_predict(client, served):
    from trainers.predict import predict

    for path in sorted((SAMPLES / "digits").rglob("*.jpg"))[::3]:
        expected = predict(served["convnet"].run, [path], top_k=3)[0]
        for steps in ("false", "true"):
            body = client.post(f"/api/predict?steps={steps}&top=3", content=path.read_bytes()).json()
            assert [entry["label"] for entry in body["top"]] == [label for label, _ in expected.top], path
            assert body["probability"] == pytest.approx(expected.top[0][1], abs=1e-5)


def test_a_sheet_gives_every_digit_with_its_box_in_reading_order(client):
    body = client.post("/api/predict?steps=true", content=SHEET.read_bytes()).json()
    width, height = Image.open(SHEET).size
    assert body["sheet"] is True and body["image_size"] == [width, height] and len(body["digits"]) == 10
    assert body["number"] == "".join(digit["label"] for digit in body["digits"]) and body["label"] == body["digits"][0]["label"]
    rows = [body["digits"][:5], body["digits"][5:]]
    for row in rows:
        assert [d["box"][0] for d in row] == sorted(d["box"][0] for d in row)  # left to right
        for digit in row:
            x, y, w, h = digit["box"]
            assert 0 <= x < x + w <= width and 0 <= y < y + h <= height and h > 20
            assert picture(digit["input"]).shape == (28, 28)
    assert min(d["box"][1] for d in rows[1]) > max(d["box"][1] for d in rows[0])  # the second row below the first
    assert picture(body["steps"]["photo"]).shape[2] == 3
    single = client.post("/api/predict?sheet=false", content=SHEET.read_bytes()).json()
    assert single["sheet"] is False and single["digits"] == []
    forced = client.post("/api/predict?sheet=true", content=SEVEN).json()
    assert forced["sheet"] is True and forced["number"] == "7" and len(forced["digits"]) == 1


def test_a_leaf_run_outlines_the_leaf_names_the_top_species_and_warns_of_a_cut_leaf(client):
    from leafprep.synthetic import leaf_photo

    body = client.post("/api/predict?run=leaves&steps=true", content=LEAF.read_bytes()).json()
    assert body["kind"] == "leaf" and body["label"] in {"lanceolata", "ovata", "palmata", "quercoides"} and len(body["top"]) == 4
    assert list(body["steps"]) == ["photo", "light", "mask", "crop", "input"] and picture(body["steps"]["input"]).shape == (32, 32)
    assert body["attention"]["method"] == "saliency" and body["warnings"] == []
    photo, _ = leaf_photo("ovata", np.random.default_rng(3), background="card")
    cut = client.post("/api/predict?run=leaves", files={"file": ("cut.png", encode(photo[150:], "PNG"), "image/png")}).json()
    assert any("touches the image border" in warning for warning in cut["warnings"]), cut["warnings"]


def test_a_photo_of_several_leaves_names_every_leaf_with_its_box_and_the_species_over_all_of_them(client, served):
    from leafprep.synthetic import leaf_bed

    photo, truths = leaf_bed(np.random.default_rng(8), leaves=4, species="ovata", side=1000)
    body = client.post("/api/predict?run=leaves&steps=true", files={"file": ("bed.png", encode(photo, "PNG"), "image/png")}).json()
    assert body["sheet"] is True and len(body["leaves"]) == 4 and body["digits"] == []
    for entry, truth in zip(body["leaves"], truths, strict=True):  # reading order: leaf_bed lays them row by row
        x, y, w, h = entry["box"]
        ys, xs = np.nonzero(truth)
        assert abs(x - xs.min()) <= 3 and abs(y - ys.min()) <= 3 and abs(x + w - 1 - xs.max()) <= 3 and abs(y + h - 1 - ys.max()) <= 3
        assert entry["label"] == entry["top"][0]["label"] and picture(entry["input"]).shape == (32, 32)
    # The species over every leaf: their probabilities averaged (a leaf run of four classes lists them all in each top).
    mean = np.mean([next(t["probability"] for t in entry["top"] if t["label"] == body["label"]) for entry in body["leaves"]])
    assert body["label"] == body["top"][0]["label"] and body["probability"] == pytest.approx(mean, abs=1e-5)
    assert any(w.startswith("left out as not leaves") for w in body["warnings"]) and picture(body["steps"]["photo"]).ndim == 3
    assert any(w.startswith("the leaves disagree") for w in body["warnings"]) == (len({e["label"] for e in body["leaves"]}) > 1)
    single = client.post("/api/predict?run=leaves&sheet=false", files={"file": ("bed.png", encode(photo, "PNG"), "image/png")}).json()
    assert single["sheet"] is False and single["leaves"] == [] and any("the largest is used" in w for w in single["warnings"])


def test_learned_gives_a_softmax_weight_map_and_a_convnets_dream_made_once(client, served):
    weights = client.get("/api/learned?run=softmax&label=3")
    assert weights.status_code == 200 and weights.headers["content-type"] == "image/png"
    assert np.asarray(Image.open(io.BytesIO(weights.content))).shape == (28, 28, 3)
    first = client.get("/api/learned", params={"run": "convnet", "label": "4"})
    assert first.status_code == 200 and 4 in served["convnet"]._learned
    again = client.get("/api/learned", params={"run": "convnet", "label": "4"})
    assert again.content == first.content and float(again.headers["server-timing"].split("=")[1]) < 50  # kept, not dreamt again
    assert np.asarray(Image.open(io.BytesIO(first.content))).shape == (28, 28, 3)


def test_normalize_gives_leafprep_normalizes_image_as_png_or_npy_without_pickles(client):
    expected = leafprep.normalize(PHOTO)
    response = client.post("/api/normalize", content=PHOTO.read_bytes())
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(response.content))), np.clip(np.rint(expected * 255), 0, 255).astype(np.uint8))
    response = client.post("/api/normalize?format=npy&size=28", files={"file": ("a.jpg", PHOTO.read_bytes())})
    assert response.headers["content-type"] == "application/octet-stream"
    assert np.array_equal(np.load(io.BytesIO(response.content), allow_pickle=False), expected)
    leaf = client.post("/api/normalize?kind=auto&size=64&mode=silhouette", content=LEAF.read_bytes())
    assert np.asarray(Image.open(io.BytesIO(leaf.content))).shape == (64, 64)
    assert json.loads(leaf.headers["x-leafprep-notes"])[0] == "kind=auto chose leaf"


def test_the_page_and_its_files_come_from_this_server_only(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"] and page.headers["x-content-type-options"] == "nosniff"
    linked = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert linked and all(link.startswith("/") for link in linked), linked
    for link in linked:
        assert client.get(link).status_code == 200, link
    assert 'accept="image/*" capture' in page.text
    static = Path(leafprep.__file__).parent / "serve" / "static"
    for path in static.iterdir():
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", path.read_text(encoding="utf-8")), f"{path.name} links outside"


def test_the_api_page_is_drawn_from_the_openapi_description(client):
    assert client.get("/docs").status_code == 200
    api = client.get("/openapi.json").json()
    assert {"/api/predict", "/api/normalize", "/api/runs", "/api/learned"} <= set(api["paths"])
    predict = api["paths"]["/api/predict"]["post"]
    assert "multipart/form-data" in predict["requestBody"]["content"] and {"400", "413", "415", "422", "503"} <= set(predict["responses"])


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "upload", "status", "words"),
    [
        ("post", "/api/predict", b"shopping list: milk\n", 415, "not a recognised image"),
        ("post", "/api/predict", b"%PDF-1.7\n", 415, "a PDF document"),
        ("post", "/api/predict", SEVEN[:300], 400, "corrupt"),
        ("post", "/api/predict", encode(np.full((200, 150, 3), 240, np.uint8), "PNG"), 400, "no digit found"),
        ("post", "/api/predict", b"", 400, "the file is empty"),
        ("post", "/api/predict", png_header_only(30000, 30000), 413, "over the limit of 150,000,000 pixels"),
        ("post", "/api/predict", SEVEN + bytes(3 * 1024 * 1024), 413, "over the limit of 2.0 MB"),
        ("post", "/api/predict?run=nothing", SEVEN, 422, "no run named 'nothing'"),
        ("post", "/api/predict?steps=perhaps", SEVEN, 422, "steps: Input should be a valid boolean"),
        ("post", "/api/predict?top=0", SEVEN, 422, "top: Input should be greater than or equal to 1"),
        ("post", "/api/normalize?size=2000", SEVEN, 422, "size: Input should be less than or equal to 1024"),
        ("post", "/api/normalize?format=gif", SEVEN, 422, "format: Input should be 'png' or 'npy'"),
        ("post", "/api/normalize?kind=cat", SEVEN, 422, "kind: Input should be 'digit', 'leaf' or 'auto'"),
        ("post", "/api/normalize?mode=silhouette", SEVEN, 422, "digits are normalised in gray only"),
        ("get", "/api/learned?run=softmax&label=eleven", None, 422, "has no class 'eleven'"),
        ("get", "/api/learned", None, 422, "label: Field required"),
        ("get", "/api/nothing", None, 404, "Not Found"),
        ("get", "/api/predict", None, 405, "Method Not Allowed"),
    ],
)
def test_every_error_is_json_with_its_status_and_reason(client, method, url, upload, status, words):
    response = client.request(method.upper(), url, content=upload)
    assert_refused(response, status, words)
    assert_reads_seven(client)


def test_a_form_without_a_file_field_is_a_bad_parameter(client):
    assert_refused(client.post("/api/predict", files={"photo": ("seven.png", SEVEN)}), 422, "no file in a field named 'file'")
    assert_refused(client.post("/api/predict", files=[("file", ("a.png", SEVEN)), ("file", ("b.png", SEVEN))]), 400, "Too many files")


def test_an_upload_over_the_limit_is_refused_by_its_length_before_it_is_read(client):
    def body():
        yield SEVEN
        raise AssertionError("the body was read past its Content-Length")

    response = client.post("/api/predict", content=body(), headers={"content-length": str(10 * 1024 * 1024)})
    assert_refused(response, 413, "the upload is 10.0 MB, over the limit of 2.0 MB")


def test_an_upload_without_a_length_is_cut_off_at_the_limit(client):
    chunks = (bytes(512 * 1024) for _ in range(100))  # 50 MB, chunked: no Content-Length
    assert_refused(client.post("/api/predict", content=chunks), 413, "over the limit of 2.0 MB")
    assert_reads_seven(client)


def test_a_full_work_queue_answers_503_busy_and_the_next_request_is_served(served):
    app = create_app(served, Limits(places=1))
    with TestClient(app) as client:
        with app.state.service.queue.place():  # the one place is taken
            response = client.post("/api/predict", content=SEVEN)
            assert_refused(response, 503, "busy: all 1 places of the work queue are taken")
            assert response.headers["retry-after"] == "1"
            assert_refused(client.get("/api/learned?run=softmax&label=1"), 503, "busy")
        assert app.state.service.queue.taken == 0
        assert_reads_seven(client)


def test_a_server_for_this_machine_only_refuses_other_host_names(served):
    with TestClient(create_app(served, allowed_hosts=["127.0.0.1", "localhost"]), base_url="http://localhost") as client:
        assert client.get("/api/runs").status_code == 200
        assert client.get("/api/runs", headers={"host": "localhost:8000"}).status_code == 200
        assert_refused(client.get("/api/runs", headers={"host": "rebound.example"}), 400, "does not answer for the host 'rebound.example'")


def test_no_request_names_a_file_on_the_server(client):
    for text in (str(PHOTO.resolve()), "../sample_data/digits/3/photo-1.jpg", "/etc/passwd"):
        assert_refused(client.post("/api/predict", content=text.encode()), 415, "not a recognised image")
        response = client.post("/api/predict", files={"file": (text, SEVEN, "image/png")})
        assert response.json()["label"] == "7"  # the file name is a name, the bytes are the image


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from corpus import make_corpus

    return make_corpus(tmp_path_factory.mktemp("corpus"), "digit")


# What each bad input of tests/corpus.py is, as HTTP: a damaged image 400, too large 413, not an image 415.
_CORPUS_STATUS = {
    "the file is empty": 400,
    "truncated": 400,
    "not a recognised image": 415,
    "no digit found": 400,
    "over the limit": 413,
    "fails its CRC check": 400,
    "is corrupt": 400,
    "an SVG drawing": 415,
    "HEIC": 415,
}


def test_each_bad_input_of_the_corpus_gets_a_4xx_with_a_reason_and_the_next_good_request_still_works(client, corpus):
    sent = 0
    for case in corpus:
        if not case.path.is_file() or case.path.is_symlink() or "permission" in case.digit:
            continue  # about the file system (folders, links, permissions), not about an upload's bytes
        name = case.filename.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        response = client.post("/api/predict", files={"file": (name, case.path.read_bytes())})
        if case.failure is None:
            assert response.status_code == 200, (case.name, response.text)
        else:
            body = assert_refused(response, _CORPUS_STATUS[case.failure], case.failure)
            assert body["source"] == printable(name), case.name
        sent += 1
        assert_reads_seven(client)
    assert sent >= 30


# --- the command -----------------------------------------------------------------------------


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_leafprep_and_help_load_neither_fastapi_nor_tensorflow():
    code = (
        "import sys, leafprep\n"
        "from typer.testing import CliRunner\n"
        "from leafprep.cli import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        "assert CliRunner().invoke(app, ['serve', '--help']).exit_code == 0\n"
        "print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn', 'tensorflow', 'keras') if m in sys.modules))"
    )
    assert run_python(code) == "[]"


def test_serve_without_the_extra_says_what_to_install(monkeypatch, serve_runs):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = CliRunner().invoke(cli, ["serve", str(serve_runs["convnet"])])
    assert result.exit_code == 1
    assert "needs uvicorn, which is not installed (pip install 'leafprep[serve]')" in " ".join(result.output.split())


def test_serve_names_a_folder_that_is_not_a_run(tmp_path):
    result = CliRunner().invoke(cli, ["serve", str(tmp_path)])
    assert result.exit_code == 1 and "is not a leafprep run" in result.output


def test_serve_says_so_when_it_listens_beyond_this_machine(monkeypatch, serve_runs):
    import leafprep.serve.app as web

    started = []
    monkeypatch.setattr(web, "run_server", lambda app, sock: started.append((app, sock.getsockname())) or sock.close())
    local = CliRunner().invoke(cli, ["serve", str(serve_runs["softmax"]), "--port", "0"])
    assert local.exit_code == 0, local.output
    assert re.search(r"^http://127\.0\.0\.1:\d+/$", local.stdout, re.MULTILINE) and "warning" not in local.output
    wide = CliRunner().invoke(cli, ["serve", str(serve_runs["softmax"]), "--host", "0.0.0.0", "--port", "0"])
    assert wide.exit_code == 0 and "warning: listening on 0.0.0.0: other machines can reach this server" in " ".join(wide.output.split())
    assert [address[0] for _, address in started] == ["127.0.0.1", "0.0.0.0"]


def test_a_real_server_process_answers_and_stops_on_ctrl_c(serve_runs):
    command = [sys.executable, "-m", "leafprep.cli", "serve", str(serve_runs["softmax"]), str(serve_runs["leaves"]), "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), (url, process.stderr.read() if process.poll() is not None else "")
        runs = json.load(urllib.request.urlopen(url + "api/runs", timeout=30))
        assert [run["name"] for run in runs["runs"]] == ["softmax", "leaves"]
        request = urllib.request.Request(url + "api/predict", data=SEVEN, method="POST", headers={"content-type": "image/png"})
        assert json.load(urllib.request.urlopen(request, timeout=30))["label"] == "7"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) in (0, 130)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_convnets_learned_picture_is_dreamt_on_the_runs_prior_when_visualize_has_trained_one(serve_runs, tmp_path, monkeypatch):
    import shutil

    import trainers.visualize
    from leafprep.serve.runs import load_runs
    from trainers.prior import PRIOR_FILE, train_prior

    folder = tmp_path / "convnet"
    shutil.copytree(serve_runs["convnet"], folder)
    decoder, _ = train_prior(np.random.default_rng(0).uniform(0, 1, (64, 28, 28, 1)).astype(np.float32), steps=5)
    decoder.save(folder / PRIOR_FILE)
    priors = []
    real_dream = trainers.visualize.dream
    monkeypatch.setattr(trainers.visualize, "dream", lambda *args, **kwargs: priors.append(kwargs.get("prior")) or real_dream(*args, **kwargs))
    served = load_runs([folder])["convnet"]
    assert served.learned_png(7).startswith(b"\x89PNG") and priors and priors[0] is not None
    assert tuple(priors[0].output_shape[1:]) == (28, 28, 1)
