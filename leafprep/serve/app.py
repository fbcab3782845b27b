"""The FastAPI app of ``leafprep serve``: the page, the JSON API, its limits and errors, and the server.

Routes::

    GET  /                  the page (draw, photo, answers, steps, what the run learned)
    GET  /docs              the API's page, drawn from /openapi.json (no CDN)
    GET  /api/runs          the runs served, with their facts
    POST /api/predict       ?run=NAME&steps=true&sheet=&top=  an image as multipart 'file' or as the body
    POST /api/normalize     ?kind=digit|leaf|auto&size=28&mode=&format=png|npy
    GET  /api/learned       ?run=NAME&label=LABEL  the weight map or dream of a class (PNG)

Errors are JSON ``{"status", "error", "source", "reason", "hint", "message"}``:
400 a damaged image or nothing found in it, 413 an upload or image too large,
415 not an image, 422 a bad parameter, 503 every place of the work queue taken.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._version import __version__
from ..errors import ImageLoadError, ImageTooLargeError, LeafprepError, ParameterError, printable
from ..loading import DEFAULT_MAX_PIXELS
from . import answers
from .runs import ServedRun
from .work import Busy, WorkQueue

__all__ = ["Limits", "create_app", "is_loopback", "listen", "run_server"]

T = TypeVar("T")

STATIC = Path(__file__).resolve().parent / "static"

#: Where the page's scripts, styles, pictures and requests may come from: this server only.
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; "
        b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]

# The first bytes of the raster formats load_image decodes: an upload that starts otherwise is not an image (415).
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image: a multipart form with the field `file`, or the image's bytes as the body.",
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}, "required": ["file"]}
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A damaged image, or no digit (leaf) found in it"},
    413: {"description": "The upload (--max-upload-mb) or the image's pixels (--max-pixels) over the limit"},
    415: {"description": "Not an image (JPEG, PNG, BMP, TIFF, WebP or GIF)"},
    422: {"description": "A bad parameter: an unknown run or label, a value out of range"},
    503: {"description": "Busy: every place of the work queue is taken; try again"},
}


@dataclass(frozen=True)
class Limits:
    """What a server accepts and how much work it takes on.

    Attributes
    ----------
    max_upload_bytes : int
        Largest request body; a larger one is refused (413) from its
        Content-Length header before it is read, or as soon as it grows past.
    max_pixels : int
        Largest image, as its header declares it (413), checked before decoding.
    places : int
        Requests waiting or at work at once; more are refused (503).
    workers : int
        Threads that decode and read photos.
    dream_steps : int
        Gradient steps of a dream (what a conv-net learned of a class).
    """

    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    places: int = 16
    workers: int = 2
    dream_steps: int = 150


class Refused(Exception):
    """A request refused with an HTTP status, in the words of a :class:`~leafprep.errors.LeafprepError`."""

    def __init__(self, status: int, source: str, reason: str, hint: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.source, self.reason, self.hint, self.headers = status, source, reason, hint, headers

    @classmethod
    def of(cls, error: LeafprepError, status: int) -> Refused:
        return cls(status, error.source, error.reason, error.hint)

    def response(self) -> JSONResponse:
        source = printable(self.source)
        message = f"{source}: {self.reason}" + (f" ({self.hint})" if self.hint else "")
        body = {"status": self.status, "error": HTTPStatus(self.status).phrase, "source": source, "reason": self.reason, "hint": self.hint}
        return JSONResponse({**body, "message": message}, status_code=self.status, headers=self.headers)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _status(error: LeafprepError, data: bytes) -> int:
    """The HTTP status of an error the work raised for an upload of ``data``."""
    if isinstance(error, ImageTooLargeError):
        return 413
    if isinstance(error, ImageLoadError):
        return 415 if data and not data.startswith(_IMAGE_SIGNATURES) and data[8:12] != b"WEBP" else 400
    if isinstance(error, ParameterError):
        return 422
    return 400  # NothingFoundError, and any other problem of the image itself


async def _read_upload(request: Request, limit: int) -> tuple[bytes, str]:
    """The uploaded image and its name: the multipart field ``file``, or the whole body; never more than ``limit`` bytes read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refused(413, "<upload>", f"the upload is {_megabytes(int(declared))}, over the limit of {_megabytes(limit)}", "send a smaller photo")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Refused(413, "<upload>", f"the upload is over the limit of {_megabytes(limit)}", "send a smaller photo")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "multipart/form-data":
        return bytes(body), "<upload>"

    async def replay() -> Message:
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    form = await Request(request.scope, replay).form(max_files=1, max_fields=16)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Refused(422, "file", "the form has no file in a field named 'file'", "send the image as the multipart field 'file'")
        return await upload.read(), upload.filename or "<upload>"
    finally:
        await form.close()


class _Service:
    """The runs, the limits and the work queue of one app."""

    def __init__(self, runs: dict[str, ServedRun], limits: Limits) -> None:
        if not runs:
            raise ParameterError("RUN", "no run to serve", "give the --out folder of 'leafprep train'")
        self.runs, self.limits = runs, limits
        self.queue = WorkQueue(limits.places, limits.workers)

    def pick(self, name: str | None) -> ServedRun:
        if name is None:
            return next(iter(self.runs.values()))
        if name not in self.runs:
            raise Refused(422, "run", f"no run named {name!r} is served", f"the runs are {', '.join(self.runs)} (GET /api/runs)")
        return self.runs[name]

    async def upload_work(self, request: Request, work: Callable[[bytes, str], T]) -> T:
        """Take a place, read the upload, and run ``work(data, name)`` on a worker; errors become :class:`Refused`."""
        with self.place():
            data, name = await _read_upload(request, self.limits.max_upload_bytes)
            name = printable(name)[:200]
            try:
                return await self.queue.run(lambda: work(data, name))
            except LeafprepError as error:
                raise Refused.of(error, _status(error, data)) from None

    @contextlib.contextmanager
    def place(self) -> Iterator[None]:
        try:
            with self.queue.place():
                yield
        except Busy:
            raise Refused(
                503,
                "<server>",
                f"busy: all {self.queue.places} places of the work queue are taken",
                "try again in a moment",
                headers={"Retry-After": "1"},
            ) from None


class _SecurityHeaders:
    """Adds the content security policy (this server only) and friends to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, sending)


class _HostCheck:
    """Answers only requests for ``allowed`` host names (400 otherwise): a page elsewhere cannot rebind a DNS name to this server."""

    def __init__(self, app: ASGIApp, allowed: Sequence[str]) -> None:
        self.app, self.allowed = app, {host.lower() for host in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = next((value.decode("latin-1") for key, value in scope["headers"] if key == b"host"), "")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.lower() not in self.allowed:
                refusal = Refused(400, "<request>", f"this server does not answer for the host {host!r}", "use http://127.0.0.1 or http://localhost")
                await refusal.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _timing(started: float, seconds: dict[str, float] | None = None) -> dict[str, str]:
    """A Server-Timing header: the app's time for the request, and the parts of the work (milliseconds)."""
    parts = [f"app;dur={(time.perf_counter() - started) * 1000:.2f}"]
    parts += [f"{name};dur={value * 1000:.2f}" for name, value in (seconds or {}).items()]
    return {"Server-Timing": ", ".join(parts)}


def create_app(runs: dict[str, ServedRun], limits: Limits | None = None, *, allowed_hosts: Sequence[str] | None = None) -> FastAPI:
    """The web app over ``runs`` (from :func:`leafprep.serve.runs.load_runs`; the first is the default).

    Parameters
    ----------
    runs : dict of str to ServedRun
    limits : Limits, optional
    allowed_hosts : list of str, optional
        Host names the app answers to (others get 400): a server on
        127.0.0.1 answers to its loopback names only, so that a web page
        elsewhere cannot reach it through a DNS name of its own. None: any.
    """
    service = _Service(runs, limits or Limits())

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        service.queue.close()

    app = FastAPI(
        title="leafprep serve",
        version=__version__,
        description="Trained leafprep runs read digits and leaves: the top classes, a sheet's digits, the preprocessing steps.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(_SecurityHeaders)
    if allowed_hosts is not None:
        app.add_middleware(_HostCheck, allowed=allowed_hosts)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _errors(app)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html")

    @app.get("/api/runs", summary="The runs served, with their facts", tags=["runs"])
    async def list_runs() -> dict[str, Any]:
        """Each run's name, kind (digit, leaf or none), input size and mode, labels, model, test and validation
        accuracy (from its metrics.json), and what the page draws for it (`learned`: weights or dream; `attention`:
        gradcam or saliency); the default run; the server's limits."""
        limits = service.limits
        return {
            "runs": [served.describe() for served in service.runs.values()],
            "default": next(iter(service.runs)),
            "limits": {"max_upload_bytes": limits.max_upload_bytes, "max_pixels": limits.max_pixels, "queue": limits.places},
        }

    @app.post("/api/predict", summary="Read an image with a run", tags=["predict"], openapi_extra=_UPLOAD_BODY, responses=_ERRORS)
    async def predict(
        request: Request,
        run: str | None = Query(None, description="The run's name (GET /api/runs); default: the first run."),
        steps: bool = Query(False, description="Add the step pictures and the attention map as PNG data URLs."),
        sheet: bool | None = Query(
            None, description="Read every digit of a sheet, every leaf of a photo of several (default: when there are two or more)."
        ),
        top: int = Query(5, ge=1, le=1000, description="Classes listed in `top`."),
    ) -> JSONResponse:
        """The run's top classes for the image, normalised as its training data were. A digit run reads a photo of
        several digits as a sheet: `number`, and `digits` with each box `[x, y, width, height]` in the upright photo."""
        started = time.perf_counter()
        served = service.pick(run)
        limits = service.limits
        answer = await service.upload_work(
            request, lambda data, name: answers.predict(served, data, name, steps=steps, sheet=sheet, top_k=top, max_pixels=limits.max_pixels)
        )
        return JSONResponse(answer, headers=_timing(started, answer["seconds"]))

    @app.post(
        "/api/normalize",
        summary="Normalise an image to MNIST style",
        tags=["normalize"],
        openapi_extra=_UPLOAD_BODY,
        responses={200: {"content": {"image/png": {}, "application/octet-stream": {}}, "description": "The image"}, **_ERRORS},
        response_class=Response,
    )
    async def normalize(
        request: Request,
        kind: Literal["digit", "leaf", "auto"] = Query("digit", description="What the image shows."),
        size: int = Query(28, ge=8, le=1024, description="Side of the result in pixels."),
        mode: Literal["gray", "silhouette", "rgb"] | None = Query(None, description="Leaves: gray (default), silhouette or rgb."),
        file_format: Literal["png", "npy"] = Query("png", alias="format", description="png (8-bit) or npy (float32 in [0, 1])."),
    ) -> Response:
        """The image as `leafprep normalize` writes it. Notes (the kind chosen by `auto`, a leaf cut by the border)
        come in the header `X-Leafprep-Notes`, as JSON."""
        import json

        started = time.perf_counter()
        limits = service.limits
        content, notes = await service.upload_work(
            request,
            lambda data, name: answers.normalized(data, name, kind=kind, size=size, mode=mode, file_format=file_format, max_pixels=limits.max_pixels),
        )
        headers = {**_timing(started), "X-Leafprep-Notes": json.dumps(notes, ensure_ascii=True)}
        headers["Content-Disposition"] = f'{"inline" if file_format == "png" else "attachment"}; filename="normalized.{file_format}"'
        return Response(content, media_type="image/png" if file_format == "png" else "application/octet-stream", headers=headers)

    @app.get(
        "/api/learned",
        summary="What a run learned of a class",
        tags=["runs"],
        responses={200: {"content": {"image/png": {}}, "description": "The picture"}, 422: _ERRORS[422], 503: _ERRORS[503]},
        response_class=Response,
    )
    async def learned(
        label: str = Query(description="The class, as the run labels it."),
        run: str | None = Query(None, description="The run's name; default: the first run."),
    ) -> Response:
        """A softmax run's weight map of the class (blue: ink there speaks for it, red: against), or a conv-net's
        dream of it (an input it takes for the class; seconds the first time, then kept)."""
        started = time.perf_counter()
        served = service.pick(run)
        try:
            index = served.label_index(label)
        except ParameterError as error:
            raise Refused.of(error, 422) from None
        with service.place():
            picture = await service.queue.run(lambda: served.learned_png(index, dream_steps=service.limits.dream_steps))
        return Response(picture, media_type="image/png", headers={**_timing(started), "Cache-Control": "private, max-age=3600"})

    return app


def _errors(app: FastAPI) -> None:
    """Every error as JSON with a reason."""

    @app.exception_handler(Refused)
    async def refused(_: Request, error: Refused) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for problem in error.errors():
            where = ".".join(str(part) for part in problem.get("loc", ()) if part not in ("query", "body"))
            problems.append(f"{where}: {problem.get('msg', 'invalid')}")
        return Refused(422, "parameters", "; ".join(problems) or "invalid parameters", "see the API's page at /docs").response()

    @app.exception_handler(HTTPException)
    async def http(_: Request, error: HTTPException) -> JSONResponse:
        hint = "the page is at /, the API's page at /docs" if error.status_code == 404 else None
        return Refused(error.status_code, "<request>", str(error.detail), hint, headers=error.headers).response()

    @app.exception_handler(LeafprepError)
    async def leafprep_error(_: Request, error: LeafprepError) -> JSONResponse:
        return Refused.of(error, 422 if isinstance(error, ParameterError) else 400).response()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.1, ::1, localhost).

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: any free port) and listening.

    Raises
    ------
    LeafprepError
        The address cannot be used (taken, not this machine's, not allowed).
    """
    where = f"{host}:{port}"
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, protocol)
    except OSError as exc:
        raise LeafprepError(where, f"cannot listen there: {exc.strerror or exc}", "check --host") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise LeafprepError(where, f"cannot listen there: {exc.strerror or exc}", "choose another --port, or stop the program that uses it") from None
    return sock


def run_server(app: FastAPI, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` with uvicorn until Ctrl-C (or SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
