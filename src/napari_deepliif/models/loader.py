"""Load a DeepLIIF model directory in the official release layout.

A directory holds ``train_opt.txt`` and, for each net, a TorchScript ``G<n>.pt`` and/or an
eager ``latest_net_G<n>.pth`` state dict. Both are turned into the fast networks of
:mod:`napari_deepliif.engine.networks`, built from the weights' shapes. Only the nets a caller
needs are read. Errors name the file and the problem.
"""

from __future__ import annotations

import logging
import threading
import warnings
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_deepliif.engine.cpu_memory import keep_freed_memory
from napari_deepliif.errors import ModelError
from napari_deepliif.models.options import ModelOptions, read_model_options
from napari_deepliif.models.registry import NET_IDS, OPTIONS_FILE, net_file_names

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SUPPORTED_NET_G = ("resnet_9blocks", "resnet_6blocks")
SUPPORTED_NET_GS = ("unet_512", "unet_256", "unet_128")
SUPPORTED_NORM = ("batch",)


def translation_nets(options: ModelOptions) -> tuple[str, ...]:
    """Names of the translation nets: ``G1`` .. ``G<modalities_no>``."""
    return tuple(f"G{i}" for i in range(1, options.modalities_no + 1))


def segmentation_nets(options: ModelOptions) -> tuple[str, ...]:
    """Names of the segmentation nets: ``G51`` (on IHC) .. ``G5<modalities_no + 1>``."""
    return tuple(f"G5{i}" for i in range(1, options.modalities_no + 2))


def net_files(directory: Path, name: str) -> list[Path]:
    """Files that may hold net ``name``, in the order they are tried."""
    return [directory / f for f in net_file_names(name) if (directory / f).is_file()]


def _read_state_dict(path: Path) -> dict[str, Any]:
    import torch

    if path.stat().st_size == 0:
        raise ModelError(f"{path} is empty (0 bytes): re-download the model or copy the file again")
    if not zipfile.is_zipfile(path):
        raise ModelError(
            f"{path} is truncated or not a PyTorch file: re-download the model "
            "(napari-deepliif models fetch NAME) or copy the file again"
        )
    try:
        if path.suffix == ".pt":
            with warnings.catch_warnings():
                # TorchScript is the release's format; its deprecation is not the user's concern
                warnings.simplefilter("ignore", DeprecationWarning)
                state = torch.jit.load(str(path), map_location="cpu").state_dict()
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, pickle and zip errors alike
        raise ModelError(f"{path} cannot be read ({type(exc).__name__}: {exc}); it may be corrupt") from exc
    if not isinstance(state, dict) or not state:
        raise ModelError(f"{path} does not hold a network's weights")
    return dict(state)


def _check_options(options: ModelOptions, directory: Path) -> None:
    where = directory / "train_opt.txt"
    if options.net_g not in SUPPORTED_NET_G:
        raise ModelError(f"{where}: netG '{options.net_g}' is not supported (supported: {', '.join(SUPPORTED_NET_G)})")
    if options.net_gs not in SUPPORTED_NET_GS:
        raise ModelError(f"{where}: net_gs '{options.net_gs}' is not supported (supported: {', '.join(SUPPORTED_NET_GS)})")
    if options.norm not in SUPPORTED_NORM:
        raise ModelError(f"{where}: norm '{options.norm}' is not supported (supported: {', '.join(SUPPORTED_NORM)})")
    if options.input_no != 1:
        raise ModelError(f"{where}: input_no {options.input_no} is not supported (DeepLIIF takes one IHC input)")


@dataclass
class DeepLIIFModel:
    """A model directory with its options; nets are built on first use and kept.

    Use :func:`load_model` rather than building one directly, so loaded models are shared.
    """

    directory: Path
    options: ModelOptions
    device: str = "cpu"
    _nets: dict[str, "torch.nn.Module"] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _signature: tuple = field(default=(), repr=False)

    @property
    def name(self) -> str:
        """The directory's name, used in outputs to say which model produced them."""
        return self.directory.name

    def net(self, name: str) -> "torch.nn.Module":
        """The fast network ``name`` (``G1``.. or ``G51``..), loaded on first use."""
        with self._lock:
            if name not in self._nets:
                self._nets[name] = self._build(name)
            return self._nets[name]

    def preload(self, names: tuple[str, ...]) -> None:
        """Build the given nets now (so errors surface before any tile runs)."""
        for name in names:
            self.net(name)

    def _build(self, name: str) -> "torch.nn.Module":
        from napari_deepliif.engine.networks import ResnetGenerator, UnetGenerator

        files = net_files(self.directory, name)
        if not files:
            raise ModelError(
                f"{self.directory} has neither {name}.pt nor latest_net_{name}.pth: "
                "the model directory is incomplete"
            )
        path = files[0]
        state = _read_state_dict(path)
        what = str(path)
        net = UnetGenerator(state, what) if name.startswith("G5") else ResnetGenerator(state, what, self.options.padding)
        del state  # the net now holds the only references, so each weight it re-lays out is freed at once
        if net.in_channels != 3:
            raise ModelError(f"{path}: the net takes {net.in_channels} input channels, expected 3 (RGB)")
        log.info("loaded %s from %s", name, path)
        net = net.to(self.device).eval()
        net.optimise_layout()
        return net

    def fingerprint(self) -> str:
        """A short sha256 over ``train_opt.txt`` and the bytes of each net's file, by content.

        Each net's file name and the sha256 of its bytes are hashed in net order, so weights
        changed in place or two nets swapped change it (see :mod:`napari_deepliif.models.hash`).
        File hashes are cached against each file's size and mtime, so only the first call on
        new or changed files reads them. Recorded in outputs so a result names the exact
        weights it came from.
        """
        from napari_deepliif.models.hash import content_hash

        nets = [(name, files[0]) for name in (*translation_nets(self.options), *segmentation_nets(self.options))
                if (files := net_files(self.directory, name))]
        return content_hash(self.directory / OPTIONS_FILE, nets)


def _signature(directory: Path) -> tuple:
    """Name, size and mtime of the options and net files: a cached model is stale when it changes."""
    names = [OPTIONS_FILE, *(f for i in NET_IDS for f in net_file_names(f"G{i}"))]
    signature = []
    for name in names:
        try:
            st = (directory / name).stat()
        except FileNotFoundError:
            continue
        signature.append((name, st.st_size, st.st_mtime_ns))
    return tuple(signature)


_CACHE: "OrderedDict[tuple[str, str], DeepLIIFModel]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 2


def load_model(path: str | Path, device: str = "cpu") -> DeepLIIFModel:
    """Open a model directory; the same directory and device give the same cached model.

    Parameters
    ----------
    path : str or Path
        A directory in the release layout.
    device : str
        A torch device string (``cpu``, ``cuda``, ``cuda:1``, ``mps``).

    Raises
    ------
    ModelError
        Missing or empty directory, missing ``train_opt.txt`` or nets, unsupported options.
    """
    directory = Path(path).expanduser()
    if not directory.exists():
        raise ModelError(f"model directory {directory} does not exist")
    if not directory.is_dir():
        raise ModelError(f"{directory} is a file; give the model directory that holds train_opt.txt and G*.pt")
    if not any(directory.iterdir()):
        raise ModelError(f"model directory {directory} is empty")
    key = (str(directory.resolve()), str(device))
    signature = _signature(directory)
    with _CACHE_LOCK:
        if key in _CACHE:
            if _CACHE[key]._signature == signature:
                _CACHE.move_to_end(key)
                return _CACHE[key]
            log.info("%s: model files changed since they were loaded; loading them again", directory)
            del _CACHE[key]
    options = read_model_options(directory)
    _check_options(options, directory)
    if str(device).startswith("cpu"):
        keep_freed_memory()
    missing = [
        n for n in (*translation_nets(options), *segmentation_nets(options)) if not net_files(directory, n)
    ]
    if missing:
        raise ModelError(
            f"{directory} lacks nets {', '.join(missing)} (need G<n>.pt or latest_net_G<n>.pth for each)"
        )
    model = DeepLIIFModel(directory=directory, options=options, device=str(device), _signature=signature)
    with _CACHE_LOCK:
        _CACHE[key] = model
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return model
