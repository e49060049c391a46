"""Sample images: the one shipped inside the package and ones downloaded on first use.

A downloaded sample is fetched once from its upstream repository at a pinned commit, checked
against its SHA256 and kept in the cache dir (:func:`napari_deepliif.models.registry.cache_dir`),
so the package never redistributes it. ``$NAPARI_DEEPLIIF_SAMPLES_URL`` replaces the upstream
folder with a mirror holding the same file names (for sites without internet access).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from napari_deepliif.errors import ModelError
from napari_deepliif.io.sample import SAMPLE_NAME, SAMPLE_SOURCE, sample_path
from napari_deepliif.models.download import ProgressCallback, retrieve
from napari_deepliif.models.registry import cache_dir

#: Environment variable naming a mirror folder (URL) for the downloaded samples.
SAMPLES_URL_ENV = "NAPARI_DEEPLIIF_SAMPLES_URL"
#: DeepLIIF's sample tiles at the commit the shared test data was taken from.
DEEPLIIF_SAMPLES_URL = ("https://raw.githubusercontent.com/nadeemlab/DeepLIIF/"
                        "eab8bddd031d42cf6b12546d9081babb41f6b7e5/Datasets/Sample_Dataset/test_cli")


@dataclass(frozen=True)
class Sample:
    """One sample image.

    Attributes
    ----------
    key : str
        What ``score --sample KEY`` and the napari sample menu call it.
    name : str
        The image's name (output folder, layer name).
    title : str
        One line for menus and help.
    source : str
        Where it comes from, its stain and its licence.
    file : str
        File name upstream (and in the cache).
    url : str or None
        Upstream folder; None for the sample shipped in the package.
    sha256 : str or None
        SHA256 of the file (lowercase hex); None for the shipped sample.
    """

    key: str
    name: str
    title: str
    source: str
    file: str
    url: str | None = None
    sha256: str | None = None


SAMPLES: dict[str, Sample] = {s.key: s for s in (
    Sample("fhl2", SAMPLE_NAME, "IHC sample (scikit-image, FHL2 DAB, colon; membrane/cytoplasm)", SAMPLE_SOURCE,
           f"{SAMPLE_NAME}.png"),
    Sample("ki67", "ki67_deepliif_22_2", "Ki67 tile (DeepLIIF sample, 40x; nuclear; downloaded on first use)",
           "DeepLIIF repository (github.com/nadeemlab/DeepLIIF, Datasets/Sample_Dataset/test_cli/22_2.png at "
           "commit eab8bdd): 512 x 512 Ki67 IHC at 40x, DAB and hematoxylin; licence Apache 2.0 with Commons "
           "Clause (no selling); cite Ghahremani et al., Nature Machine Intelligence 4, 401-412 (2022)",
           "22_2.png", DEEPLIIF_SAMPLES_URL, "1fb79c96ab96d008fb075310a096ed3ee822d8faf41062e5c1e3341ba796d057"),
)}


def sample_file(key: str, *, progress: ProgressCallback | None = None) -> Path:
    """The file of sample ``key``, downloading it into the cache on first use.

    Parameters
    ----------
    key : str
        A key of :data:`SAMPLES`.
    progress : callable, optional
        ``progress(done_bytes, total_bytes)`` while downloading.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ModelError
        An unknown key, or a download that failed or does not match its SHA256 (nothing is
        kept then).
    """
    if key not in SAMPLES:
        raise ModelError(f"no sample called '{key}'; the samples are: {', '.join(SAMPLES)}")
    sample = SAMPLES[key]
    if sample.url is None:
        return Path(str(sample_path()))
    target = cache_dir() / "samples" / sample.file
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    url = f"{os.environ.get(SAMPLES_URL_ENV, sample.url).rstrip('/')}/{sample.file}"
    with tempfile.TemporaryDirectory(prefix=".partial-", dir=target.parent) as staging:
        try:
            retrieve(url, Path(staging) / sample.file, sha256=sample.sha256, progress=progress)
        except ModelError as exc:
            raise ModelError(f"the {key} sample could not be downloaded ({exc}); check the connection, set "
                             f"${SAMPLES_URL_ENV} to a mirror of {sample.url}, or use the shipped sample "
                             "(--sample fhl2)") from exc
        os.replace(Path(staging) / sample.file, target)
    return target
