"""``napari-deepliif models``: list, fetch, add, verify and remove models.

A thin shell over :mod:`napari_deepliif.models.index`. Wire it into the main parser with::

    sub = parser.add_subparsers(dest="command")
    cli_models.add_parser(sub)
    ...
    if args.command == "models":
        return cli_models.run(args)

Results go to stdout; errors are one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from napari_deepliif.cli.options import download_bar
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.models import index as model_index

#: Exit codes.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CANCELLED = 130


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``models`` sub-command to an argparse sub-parsers object.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers()`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The ``models`` parser (its defaults set ``func=run``).
    """
    parser = subparsers.add_parser(
        "models",
        help="list, download and register DeepLIIF models",
        description="Manage the models every napari-deepliif front end can use.",
    )
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")
    sub.required = True

    p_list = sub.add_parser("list", help="list indexed, downloaded and local models")
    p_list.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p_fetch = sub.add_parser("fetch", help="download a model (hash-checked) into the cache")
    p_fetch.add_argument("name", metavar="NAME", help="model name, e.g. deepliif-latest")
    p_fetch.add_argument("--url", help="download from this URL instead of the index's")
    p_fetch.add_argument("--sha256", help="expected SHA256 of the archive")
    p_fetch.add_argument("--force", action="store_true", help="download again if installed")
    p_fetch.add_argument("--quiet", action="store_true", help="no progress bar")

    p_add = sub.add_parser("add", help="register a local model folder under a name")
    p_add.add_argument("name", metavar="NAME")
    p_add.add_argument("path", metavar="PATH", help="folder with train_opt.txt and the nets")
    p_add.add_argument("--replace", action="store_true", help="replace a local model")

    p_verify = sub.add_parser("verify", help="check a model's files and that it loads")
    p_verify.add_argument("name", metavar="NAME", help="model name or folder")

    p_remove = sub.add_parser(
        "remove", help="forget a local model, or delete a downloaded model's files"
    )
    p_remove.add_argument("name", metavar="NAME")

    parser.set_defaults(func=run)
    return parser


def _human_size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _list(args: argparse.Namespace) -> int:
    entries = model_index.list_models()
    if args.json:
        print(json.dumps([model_index.entry_as_dict(e) for e in entries], indent=2))
        return EXIT_OK
    rows = [("NAME", "KIND", "STATUS", "SIZE", "SOURCE")]
    for e in entries:
        status = "installed" if e.installed else ("missing" if e.kind == "local" else "-")
        rows.append((e.name, e.kind, status, _human_size(e.size), e.source))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
    for e in entries:
        if e.sha256:
            note = "pinned" if e.pinned else "recorded at first download"
            print(f"{e.name}: sha256 {e.sha256} ({note})")
    print(f"registry: {model_index.registry_path()}")
    print(f"downloads: {model_index.models_dir()}")
    return EXIT_OK


def _fetch(args: argparse.Namespace) -> int:
    update, close = (None, None) if args.quiet else download_bar()
    try:
        path = model_index.fetch_model(
            args.name, progress=update, url=args.url, sha256=args.sha256, force=args.force
        )
    finally:
        if close is not None:
            close()
    entry = model_index.get_model(args.name)
    print(f"{args.name}: {path}")
    if entry.sha256:
        print(f"sha256: {entry.sha256}")
        if not entry.pinned:
            print(
                f"(not pinned in the index; recorded in {model_index.registry_path()} and "
                "checked on later downloads)"
            )
    return EXIT_OK


def _add(args: argparse.Namespace) -> int:
    entry = model_index.add_model(args.name, args.path, replace=args.replace)
    print(f"{entry.name}: {entry.path}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    report = model_index.verify_model(args.name)
    for line in report.messages:
        print(line)
    if report.ok:
        print(f"{args.name}: OK")
        return EXIT_OK
    print(f"error: model {args.name!r} is not usable", file=sys.stderr)
    return EXIT_ERROR


def _remove(args: argparse.Namespace) -> int:
    model_index.remove_model(args.name)
    print(f"{args.name}: removed")
    return EXIT_OK


_ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "list": _list,
    "fetch": _fetch,
    "add": _add,
    "verify": _verify,
    "remove": _remove,
}


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``models`` command.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser built with :func:`add_parser`.

    Returns
    -------
    int
        0 on success, 1 on an error (reason printed to stderr), 130 when interrupted.
    """
    try:
        return _ACTIONS[args.models_command](args)
    except DeepLIIFError as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
