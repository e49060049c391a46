"""``napari-deepliif serve`` and ``napari-deepliif token``: the local HTTP engine."""

from __future__ import annotations

import argparse

from napari_deepliif.engine.devices import DEVICES, PRECISIONS
from napari_deepliif.engine.engines import ENGINES


def cmd_serve(args: argparse.Namespace) -> int:
    """``serve``: load the engine, listen, and serve until Ctrl-C."""
    from napari_deepliif.server import ServerHandle
    from napari_deepliif.server.security import Limits

    limits = Limits(max_request_bytes=args.max_request_mb * 1024 * 1024, max_pixels=args.max_pixels,
                    queue_size=args.queue_size)
    handle = ServerHandle.start(args.engine, model=args.model, device=args.device, precision=args.precision,
                                batch_size=args.batch_size, host=args.host, port=args.port, limits=limits)
    engine = handle.app.state.deepliif.engine
    model = f", model {engine.model_name}" if engine.model_name else ""
    print(f"napari-deepliif engine '{engine.name}'{model} on {handle.app.state.deepliif.device}")
    print(f"serving at {handle.url} (API: {handle.url}/openapi.json); Ctrl-C stops")
    print(f"token file: {handle.token_path} (`napari-deepliif token` prints the token)", flush=True)
    handle.wait()
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """``token``: print the server token, creating it if there is none yet."""
    from napari_deepliif.server import load_or_create_token

    print(load_or_create_token())
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _not_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` and ``token`` sub-commands."""
    from napari_deepliif.server.defaults import (
        DEFAULT_HOST,
        DEFAULT_MAX_PIXELS,
        DEFAULT_MAX_REQUEST_MB,
        DEFAULT_PORT,
        DEFAULT_QUEUE_SIZE,
    )

    p = subparsers.add_parser(
        "serve", help="serve the engine over HTTP on this machine (for QuPath, scripts, ImageJ)",
        description="Serve the engine over HTTP (API: docs/server.md, or /openapi.json). Every request "
                    "but /api/health needs the token that `napari-deepliif token` prints.")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default: %(default)s, this machine only); requests must name it, "
                   "or a loopback name, in their Host header")
    p.add_argument("--port", type=_not_negative, default=DEFAULT_PORT, help="TCP port; 0 picks a free one (default: %(default)s)")
    p.add_argument("--engine", choices=ENGINES, default="auto", help="auto: DeepLIIF if --model is given or deepliif-latest is installed, else the classical stain engine")
    p.add_argument("--model", default=None, help="model name from `napari-deepliif models list`, or a model directory (default: deepliif-latest)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="where to run (default: %(default)s = cuda, else mps, else cpu)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help="fp32 matches the reference; fast uses bf16/fp16 (default: %(default)s)")
    p.add_argument("--batch-size", type=_positive, default=None, help="tiles per batch (default: 1 on CPU, 8 on CUDA, 4 on MPS)")
    p.add_argument("--max-pixels", type=_positive, default=DEFAULT_MAX_PIXELS, metavar="N", help="largest image, width x height (default: %(default)s)")
    p.add_argument("--max-request-mb", type=_positive, default=DEFAULT_MAX_REQUEST_MB, metavar="N", help="largest request body in MiB (default: %(default)s)")
    p.add_argument("--queue-size", type=_not_negative, default=DEFAULT_QUEUE_SIZE, metavar="N", help="requests that may wait while one runs; more get 429 (default: %(default)s)")
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser("token", help="print the server's token (created if needed)",
                              description="Print the token clients send as 'Authorization: Bearer <token>'.")
    p.set_defaults(func=cmd_token)
