"""Where a full-size ResNet generator's time goes on CPU, per 512 x 512 tile.

Builds one random-weight ngf=64 ResNet-9 generator and one UNet-512 (``fullsize_model.py``'s
state dicts; random weights run as fast as the released ones), runs ``--tiles`` tiles per
forward pass with the engine's CPU settings, and prints seconds per tile for each net and,
for the ResNet, the wall time inside each kind of call (wall-clock timers around the calls,
so the figures add up to the whole; ``torch.profiler`` inflates the many small ones).

``--against FILE`` also builds the same ResNet and UNet from another version of ``networks.py``
(for example ``git show REV:src/napari_deepliif/networks.py > /tmp/networks_old.py``) and times
each pair in alternation in this one process, which is the only fair comparison on a machine whose
speed drifts between runs; it also says whether their outputs are identical.

``--fast`` runs everything under ``fast`` precision's bf16 autocast (as the engine does on a
CPU with bf16 kernels).

Run::

    PYTHONPATH=src python benchmarks/profile_resnet.py [--tiles 2] [--repeat 3] [--fast] [--against FILE]
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from fullsize_model import resnet_state, unet_state


def seconds_per_tile(net: torch.nn.Module, x: torch.Tensor, repeat: int) -> float:
    net(x)  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        net(x)
        best = min(best, time.perf_counter() - t0)
    return best / x.shape[0]


def load_networks(path: Path):
    """Another version of ``napari_deepliif/networks.py``, imported inside the package (its
    relative imports resolve against the installed one)."""
    spec = importlib.util.spec_from_file_location("napari_deepliif._networks_against", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def compare(nets: dict[str, torch.nn.Module], x: torch.Tensor, rounds: int) -> None:
    """Time the nets in alternation (the order flips every round); min and median s/tile."""
    outputs = {label: net(x) for label, net in nets.items()}
    first, *others = outputs.values()
    print("outputs identical:", all(torch.equal(first, other) for other in others))
    times: dict[str, list[float]] = {label: [] for label in nets}
    for r in range(rounds):
        for label in (list(nets) if r % 2 == 0 else list(reversed(nets))):
            t0 = time.perf_counter()
            nets[label](x)
            times[label].append((time.perf_counter() - t0) / x.shape[0])
    for label, values in times.items():
        print(f"  {label:10s} min {min(values):.3f}  median {statistics.median(values):.3f} s/tile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=2, help="tiles per forward pass")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes (the best is kept)")
    parser.add_argument("--against", type=Path, help="another networks.py to time side by side")
    parser.add_argument("--rounds", type=int, default=8, help="--against: alternating passes per version")
    parser.add_argument("--fast", action="store_true", help="under fast precision's bf16 autocast")
    args = parser.parse_args()

    from napari_deepliif.engine import networks
    from napari_deepliif.engine.cpu_memory import keep_freed_memory

    keep_freed_memory()
    gen = torch.Generator().manual_seed(0)
    state = resnet_state(64, gen)
    resnet = networks.ResnetGenerator(state).eval()
    unet_weights = unet_state(64, gen)
    unet = networks.UnetGenerator(unet_weights).eval()
    for net in (resnet, unet):
        net.optimise_layout()
    x = torch.rand(args.tiles, 3, 512, 512, generator=gen) * 2 - 1
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.tiles} tiles per pass, "
          f"best of {args.repeat}" + (", bf16 autocast (fast)" if args.fast else ""))
    precision = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.fast)
    with torch.inference_mode(), precision:
        print(f"UNet-512:  {seconds_per_tile(unet, x, args.repeat):.3f} s/tile")
        print(f"ResNet-9:  {seconds_per_tile(resnet, x, args.repeat):.3f} s/tile")
        spent = collections.defaultdict(float)

        def timed(label: str, call: Callable) -> Callable:
            def wrapper(*a, **k):
                t0 = time.perf_counter()
                result = call(*a, **k)
                spent[label] += time.perf_counter() - t0
                return result
            return wrapper

        patched = {
            (torch, "_nnpack_spatial_convolution"): "NNPACK convolutions (3x3 residual, 7x7 tail)",
            (F, "conv2d"): "direct convolutions (7x7 head, stride-2)",
            (F, "conv_transpose2d"): "transposed convolutions",
            (networks, "_norm_act"): "norms and activations",
            (networks, "_copy_to_channels_last"): "layout copies",
        }
        originals = {key: getattr(*key) for key in patched}
        try:
            for (owner, name), label in patched.items():
                setattr(owner, name, timed(label, originals[(owner, name)]))
            t0 = time.perf_counter()
            for _ in range(args.repeat):
                resnet(x)
            total = time.perf_counter() - t0
        finally:
            for (owner, name), call in originals.items():
                setattr(owner, name, call)
    per_tile = args.repeat * args.tiles
    for label, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {label:48s} {seconds / per_tile:6.3f} s/tile")
    print(f"  {'everything else (adds, tanh, ...)':48s} {(total - sum(spent.values())) / per_tile:6.3f} s/tile")
    if args.against:
        against = load_networks(args.against)
        others = (against.ResnetGenerator(state).eval(), against.UnetGenerator(unet_weights).eval())
        for name, net, other in (("ResNet-9", resnet, others[0]), ("UNet-512", unet, others[1])):
            other.optimise_layout()
            print(f"{name}, this code against {args.against}, {args.rounds} alternating passes each:")
            with torch.inference_mode(), precision:
                compare({"this": net, "against": other}, x, args.rounds)


if __name__ == "__main__":
    main()
