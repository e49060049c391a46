"""A first run of the README's test command on a machine without Xvfb or a JDK: the tests that
need them are skipped with what to install (no abort in Qt), and fail instead when CI is set.

Runs pytest in a subprocess whose PATH holds only the Python interpreter (so neither Xvfb nor
javac/java is found), with no DISPLAY and an empty JAVA_LIB."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: One module of each kind: the napari reader in a viewer (make_napari_viewer) and the QuPath
#: extension's Java core (JUnit); 1 + 3 tests.
MODULES = ("tests/test_slides_napari.py", "tests/test_qupath_regions.py")


def run_pytest(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "python").exists():
        (bin_dir / "python").symlink_to(sys.executable)
    (tmp_path / "java-lib").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "CI", "PYTEST_ADDOPTS")}
    env.update(PATH=str(bin_dir), JAVA_LIB=str(tmp_path / "java-lib"), PYTHONPATH=str(ROOT / "src"))
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [str(bin_dir / "python"), "-m", "pytest", "-q", "-rsE", "-p", "no:cacheprovider",
         f"--basetemp={tmp_path / ('ci' if ci else 'local')}", *MODULES],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


DISPLAY_REASON = "needs a display for napari/Qt"
XVFB_HINT = "apt-get install xvfb"
JDK_REASON = "needs a JDK and JUnit 5 jars"
JDK_HINT = "apt-get install openjdk-17-jdk-headless junit5"


def test_without_xvfb_or_jdk_the_tests_are_skipped_saying_what_to_install(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, ci=False)
    output = run.stdout + run.stderr
    assert "Fatal Python error" not in output
    assert run.returncode == 0, output[-4000:]
    assert "4 skipped" in output, output[-4000:]
    for text in (DISPLAY_REASON, XVFB_HINT, JDK_REASON, JDK_HINT, "javac"):
        assert text in output, f"{text!r} not in:\n{output[-4000:]}"


def test_with_ci_set_the_same_tests_fail_with_the_reason(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, ci=True)
    output = run.stdout + run.stderr
    assert "Fatal Python error" not in output
    assert run.returncode == 1, output[-4000:]
    assert "4 errors" in output and "skipped" not in output, output[-4000:]
    for text in (DISPLAY_REASON, XVFB_HINT, JDK_REASON, JDK_HINT, "CI is set"):
        assert text in output, f"{text!r} not in:\n{output[-4000:]}"


@pytest.mark.parametrize("value, expected", [("true", True), ("1", True), ("", False), ("false", False), ("0", False)])
def test_ci_values(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    from conftest import running_in_ci

    monkeypatch.setenv("CI", value)
    assert running_in_ci() is expected
