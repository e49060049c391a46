"""Model index, registry, resolver and downloads (over real loopback HTTP)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
from model_server import FIXTURE_MODEL as MODEL

from napari_deepliif.cli import models as cli_models
from napari_deepliif.errors import Cancelled, ModelError
from napari_deepliif.models import index as model_index
from napari_deepliif.models.download import select_members
from napari_deepliif.models.index import (
    BUILTIN_INDEX,
    EAGER_FILES,
    TORCHSCRIPT_FILES,
    IndexEntry,
    add_model,
    fetch_model,
    list_models,
    remove_model,
    resolve_model,
    verify_model,
)

NEEDED_PT = sorted(["train_opt.txt", *TORCHSCRIPT_FILES])
NEEDED_PTH = sorted(["train_opt.txt", *EAGER_FILES])


@pytest.fixture(autouse=True)
def user_dirs(user_model_dirs: tuple[Path, Path]) -> tuple[Path, Path]:
    return user_model_dirs


def _leftovers() -> list[str]:
    folder = model_index.models_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _registry() -> dict:
    path = model_index.registry_path()
    return json.loads(path.read_text()) if path.exists() else {}


def test_builtin_entry_and_not_downloaded_message() -> None:
    entry = BUILTIN_INDEX["deepliif-latest"]
    assert entry.url == (
        "https://zenodo.org/records/4751737/files/DeepLIIF_Latest_Model.zip?download=1"
    )
    assert entry.size is None and entry.sha256 is None
    (row,) = [e for e in list_models() if e.name == "deepliif-latest"]
    assert row.kind == "download" and not row.installed and row.path is None
    with pytest.raises(ModelError, match="napari-deepliif models fetch deepliif-latest"):
        resolve_model("deepliif-latest")
    with pytest.raises(ModelError, match="no model named 'nope'"):
        resolve_model("nope")


def test_fetch_with_known_hash(served: tuple[str, Path, dict]) -> None:
    base, _, hashes = served
    index = {"fix": IndexEntry("fix", f"{base}/both.zip", sha256=hashes["both.zip"])}
    calls: list[tuple[int, int | None]] = []
    path = fetch_model("fix", progress=lambda d, t: calls.append((d, t)), index=index)

    assert path == model_index.models_dir() / "fix"
    assert sorted(p.name for p in path.iterdir()) == NEEDED_PT  # nothing else unpacked
    assert (path / "G1.pt").read_bytes() == (MODEL / "G1.pt").read_bytes()
    assert _leftovers() == ["fix"]  # no partial folder, no archive
    total = calls[-1][1]
    assert total is not None and total > 0
    done = [d for d, _ in calls]
    assert len(calls) > 2 and done == sorted(set(done)) and done[-1] == total
    assert all(t == total for _, t in calls)

    assert resolve_model("fix", index=index) == path
    (row,) = list_models(index)
    assert row.installed and row.pinned and row.sha256 == hashes["both.zip"]
    assert row.size == total
    assert _registry()["downloaded"]["fix"]["sha256"] == hashes["both.zip"]
    report = verify_model("fix", index=index)
    assert report.ok and report.format == "torchscript", report.messages
    # installed: a second fetch does not download
    again: list[tuple[int, int | None]] = []
    assert fetch_model("fix", progress=lambda d, t: again.append((d, t)), index=index) == path
    assert again == []


def test_fetch_wrong_hash_leaves_nothing(served: tuple[str, Path, dict]) -> None:
    base, _, _ = served
    index = {"fix": IndexEntry("fix", f"{base}/both.zip", sha256="0" * 64)}
    with pytest.raises(ModelError, match="expected SHA256 0000"):
        fetch_model("fix", index=index)
    assert _leftovers() == []
    assert "fix" not in _registry().get("downloaded", {})
    assert not list_models(index)[0].installed
    with pytest.raises(ModelError, match="not downloaded yet"):
        resolve_model("fix", index=index)


def test_cancel_mid_download_leaves_nothing(served: tuple[str, Path, dict]) -> None:
    base, _, _ = served
    index = {"fix": IndexEntry("fix", f"{base}/both.zip")}
    seen: list[int] = []

    def cancel(done: int, total: int | None) -> None:
        seen.append(done)
        assert total is not None and done < total  # really mid-download
        raise Cancelled("stop")

    with pytest.raises(Cancelled):
        fetch_model("fix", progress=cancel, index=index)
    assert seen and _leftovers() == []
    assert _registry().get("downloaded", {}) == {}


def test_unpinned_hash_is_recorded_then_checked(served: tuple[str, Path, dict]) -> None:
    base, root, hashes = served
    shutil.copy(root / "both.zip", root / "tofu.zip")
    index = {"fix": IndexEntry("fix", f"{base}/tofu.zip")}
    path = fetch_model("fix", index=index)
    row = list_models(index)[0]
    assert row.sha256 == hashes["both.zip"] and not row.pinned
    # the file behind the URL changes: a forced re-download fails, the old model stays
    shutil.copy(root / "eager.zip", root / "tofu.zip")
    with pytest.raises(ModelError, match="does not have the expected SHA256"):
        fetch_model("fix", index=index, force=True)
    assert sorted(p.name for p in path.iterdir()) == NEEDED_PT
    assert _leftovers() == ["fix"]
    # an explicitly given hash replaces it
    path = fetch_model("fix", index=index, force=True, sha256=hashes["eager.zip"])
    assert sorted(p.name for p in path.iterdir()) == NEEDED_PTH
    assert list_models(index)[0].sha256 == hashes["eager.zip"]


def test_eager_only_archive(served: tuple[str, Path, dict]) -> None:
    base, _, hashes = served
    path = fetch_model("own", url=f"{base}/eager.zip", sha256=hashes["eager.zip"], index={})
    assert sorted(p.name for p in path.iterdir()) == NEEDED_PTH
    assert model_index.model_format(path) == "eager"
    (row,) = list_models({})
    assert row.name == "own" and row.installed and row.source == f"{base}/eager.zip"
    assert resolve_model("own", index={}) == path
    remove_model("own", index={})
    assert _leftovers() == [] and list_models({}) == []


@pytest.mark.parametrize(
    ("file", "match"),
    [
        ("broken.zip", "holds no DeepLIIF model folder"),
        ("notazip.zip", "not a zip archive"),
        ("missing.zip", "cannot download"),
    ],
)
def test_bad_downloads_leave_nothing(
    served: tuple[str, Path, dict], file: str, match: str
) -> None:
    base, _, _ = served
    with pytest.raises(ModelError, match=match):
        fetch_model("bad", url=f"{base}/{file}", index={})
    assert _leftovers() == [] and list_models({}) == []


def test_select_members_prefers_torchscript_and_skips_junk() -> None:
    pt = [f"A/{f}" for f in ["train_opt.txt", *TORCHSCRIPT_FILES]]
    pth = [f"B/{f}" for f in ["train_opt.txt", *EAGER_FILES]]
    junk = ["__MACOSX/A/train_opt.txt", "A/notes.txt", "B/G1.pt"]
    assert select_members(pth + pt + junk) == ("A/", sorted(pt, key=pt.index))
    assert select_members(pth + junk)[0] == "B/"
    assert select_members([f.split("/", 1)[1] for f in pt])[0] == ""
    with pytest.raises(ModelError):
        select_members(pt[:-1])


def test_progress_without_content_length() -> None:
    from napari_deepliif.models.download import _ProgressAdapter

    calls: list[tuple[int, int | None]] = []
    adapter = _ProgressAdapter(lambda d, t: calls.append((d, t)))
    adapter.total = 0  # what pooch sets when the server sends no Content-Length
    for _ in range(3):
        adapter.update(10)
    adapter.reset()
    adapter.update(0)
    adapter.close()
    assert calls == [(10, None), (20, None), (30, None)]


def test_local_folders(tmp_path: Path) -> None:
    row = add_model("mine", MODEL)
    assert row.kind == "local" and row.installed and row.path == MODEL.resolve()
    assert resolve_model("mine") == MODEL.resolve()
    assert resolve_model(str(MODEL)) == MODEL  # a path is used as is
    assert resolve_model(MODEL) == MODEL
    assert [e.name for e in list_models()] == ["deepliif-latest", "mine"]
    with pytest.raises(ModelError, match="already registered"):
        add_model("mine", MODEL)
    with pytest.raises(ModelError, match="downloadable model"):
        add_model("deepliif-latest", MODEL)
    with pytest.raises(ModelError, match="bad model name"):
        add_model("../x", MODEL)
    with pytest.raises(ModelError, match="missing train_opt.txt"):
        add_model("empty", tmp_path)
    # a registered folder that disappears gives a clear error
    copy = tmp_path / "copy"
    shutil.copytree(MODEL, copy)
    add_model("gone", copy)
    shutil.rmtree(copy)
    with pytest.raises(ModelError, match="no longer exists"):
        resolve_model("gone")
    remove_model("gone")
    assert [e.name for e in list_models()] == ["deepliif-latest", "mine"]


def test_verify_reports_missing_files(tmp_path: Path) -> None:
    report = verify_model(MODEL)
    assert report.ok and report.format == "torchscript", report.messages
    folder = tmp_path / "partial"
    folder.mkdir()
    for name in NEEDED_PT:
        if name != "G55.pt":
            shutil.copy(MODEL / name, folder / name)
    report = verify_model(folder)
    assert not report.ok and report.format is None and report.loaded is None
    assert report.missing == ["G55.pt"]


def test_verify_loads_each_net(tmp_path: Path) -> None:
    assert verify_model(MODEL).loaded is True
    folder = tmp_path / "junk"
    folder.mkdir()
    shutil.copy(MODEL / "train_opt.txt", folder / "train_opt.txt")
    for name in TORCHSCRIPT_FILES:
        shutil.copy(MODEL / name, folder / name)
    (folder / "G53.pt").write_bytes(b"not a torch file")
    report = verify_model(folder)
    assert report.format == "torchscript" and report.loaded is False and not report.ok
    assert any(m.startswith("G53 does not load") for m in report.messages), report.messages


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="napari-deepliif")
    cli_models.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    assert args.func is cli_models.run
    return cli_models.run(args)


def test_cli(served: tuple[str, Path, dict], capsys: pytest.CaptureFixture[str]) -> None:
    base, _, hashes = served
    assert _cli("models", "add", "mine", str(MODEL)) == 0
    assert _cli("models", "list") == 0
    out = capsys.readouterr().out
    assert "deepliif-latest" in out and "mine" in out and "installed" in out

    url = f"{base}/both.zip"
    assert _cli("models", "fetch", "web", "--url", url, "--sha256", hashes["both.zip"]) == 0
    captured = capsys.readouterr()
    assert f"sha256: {hashes['both.zip']}" in captured.out
    assert _cli("models", "verify", "web") == 0
    assert "web: OK" in capsys.readouterr().out
    assert _cli("models", "list", "--json") == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["web"]["installed"] and rows["web"]["source"] == url

    assert _cli("models", "fetch", "other", "--quiet", "--url", url, "--sha256", "1" * 64) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert _cli("models", "verify", "deepliif-latest") == 1
    assert "models fetch deepliif-latest" in capsys.readouterr().err
    assert _cli("models", "fetch", "deepliif-latest", "--sha256", "xyz") == 1
    assert "not a SHA256" in capsys.readouterr().err


def test_an_index_file_named_by_the_environment_extends_the_builtin_one(
    served: tuple[str, Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _, hashes = served
    mirror = tmp_path / "mirror.json"
    mirror.write_text(json.dumps({"lab-mirror": {"url": f"{base}/both.zip", "sha256": hashes["both.zip"],
                                                 "description": "our copy of the release"}}))
    monkeypatch.setenv(model_index.INDEX_ENV, str(mirror))
    rows = {row.name: row for row in list_models()}
    assert list(rows)[:2] == ["deepliif-latest", "lab-mirror"]
    assert rows["lab-mirror"].pinned and not rows["lab-mirror"].installed
    folder = fetch_model("lab-mirror")
    assert resolve_model("lab-mirror") == folder
    assert model_index.get_model("lab-mirror").installed


def test_a_bad_index_file_is_an_error_naming_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "mirror.json"
    broken.write_text("{not json")
    monkeypatch.setenv(model_index.INDEX_ENV, str(broken))
    with pytest.raises(ModelError, match="NAPARI_DEEPLIIF_MODEL_INDEX"):
        list_models()
    monkeypatch.setenv(model_index.INDEX_ENV, str(tmp_path / "missing.json"))
    with pytest.raises(ModelError, match="missing.json"):
        resolve_model("deepliif-latest")
