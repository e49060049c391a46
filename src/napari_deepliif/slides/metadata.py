"""Pixel size and magnification of a slide, from the metadata its file carries.

Sources, in the order they are trusted (the first that gives a value wins):

1. OME-XML ``Pixels PhysicalSizeX`` (+ ``PhysicalSizeXUnit``, micrometres by default) and
   ``Objective NominalMagnification``;
2. Aperio ``ImageDescription``: ``MPP = 0.2527`` and ``AppMag = 20``;
3. Hamamatsu NDPI ``Magnification`` tag;
4. TIFF ``XResolution`` with ``ResolutionUnit`` inch or centimetre (never unit "none").

A pixel size alone is enough; a magnification alone gives the nominal pixel size
``10 / magnification`` µm/px (40x -> 0.25, 20x -> 0.5, 10x -> 1.0).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

log = logging.getLogger(__name__)

#: Micrometres per unit of OME ``PhysicalSizeXUnit``.
_OME_UNITS_UM = {"µm": 1.0, "um": 1.0, "micron": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6, "Å": 1e-4}
#: Micrometres per TIFF ``ResolutionUnit`` (2 inch, 3 centimetre).
_TIFF_UNITS_UM = {2: 25400.0, 3: 10000.0}
#: Pixel size (µm/px) times objective magnification for a nominal scanner (40x -> 0.25).
MPP_TIMES_MAGNIFICATION = 10.0


@dataclass(frozen=True)
class PixelSize:
    """What a slide's metadata says about its full-resolution level.

    Attributes
    ----------
    mpp : float or None
        Pixel size in µm/px (x; slides have square pixels).
    magnification : float or None
        Objective power (e.g. 40.0).
    source : str
        Where the values came from (for logs and provenance), ``'none'`` if nowhere.
    """

    mpp: float | None = None
    magnification: float | None = None
    source: str = "none"

    @property
    def effective_mpp(self) -> float | None:
        """The pixel size, else ``10 / magnification``, else None."""
        if self.mpp:
            return self.mpp
        if self.magnification:
            return MPP_TIMES_MAGNIFICATION / self.magnification
        return None


def _positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def from_ome_xml(xml: str) -> PixelSize:
    """Pixel size and magnification of the first image of an OME-XML document."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        log.warning("unreadable OME-XML (%s); ignoring it", exc)
        return PixelSize()
    mpp = magnification = None
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "Pixels" and mpp is None:
            size = _positive(element.get("PhysicalSizeX"))
            unit = element.get("PhysicalSizeXUnit", "µm")
            if size is not None and unit in _OME_UNITS_UM:
                mpp = size * _OME_UNITS_UM[unit]
        elif tag == "Objective" and magnification is None:
            magnification = _positive(element.get("NominalMagnification"))
    return PixelSize(mpp, magnification, "OME-XML") if mpp or magnification else PixelSize()


def from_aperio(description: str) -> PixelSize:
    """``MPP = `` and ``AppMag = `` of an Aperio SVS ``ImageDescription``."""
    if not description.startswith("Aperio"):
        return PixelSize()
    found = dict(re.findall(r"(MPP|AppMag)\s*=\s*([0-9.eE+-]+)", description))
    mpp, magnification = _positive(found.get("MPP")), _positive(found.get("AppMag"))
    return PixelSize(mpp, magnification, "Aperio") if mpp or magnification else PixelSize()


def from_tiff_resolution(page: Any) -> PixelSize:
    """Pixel size from a tifffile page's ``XResolution`` and ``ResolutionUnit`` tags."""
    tags = page.tags
    unit_tag, res_tag = tags.get("ResolutionUnit"), tags.get("XResolution")
    if unit_tag is None or res_tag is None:
        return PixelSize()
    unit = int(unit_tag.value)
    numerator, denominator = res_tag.value if isinstance(res_tag.value, tuple) else (res_tag.value, 1)
    per_unit = _positive(numerator / denominator) if denominator else None
    if unit not in _TIFF_UNITS_UM or per_unit is None:
        return PixelSize()
    return PixelSize(_TIFF_UNITS_UM[unit] / per_unit, None, "TIFF resolution tags")


def from_tiff(tif: Any) -> PixelSize:
    """Pixel size and magnification of an open ``tifffile.TiffFile`` (see module docstring)."""
    page = tif.pages.first
    found = [PixelSize()]
    if tif.is_ome and tif.ome_metadata:
        found.append(from_ome_xml(tif.ome_metadata))
    description = page.description or ""
    found.append(from_aperio(description))
    if tif.is_ndpi:
        ndpi = page.ndpi_tags or {}
        found.append(PixelSize(None, _positive(ndpi.get("Magnification")), "NDPI"))
    found.append(from_tiff_resolution(page))
    mpp = next((f for f in found if f.mpp), None)
    magnification = next((f for f in found if f.magnification), None)
    if mpp is None and magnification is None:
        return PixelSize()
    sources = dict.fromkeys(f.source for f in (mpp, magnification) if f is not None)
    return PixelSize(mpp.mpp if mpp else None, magnification.magnification if magnification else None,
                     " + ".join(sources))


def from_openslide(properties: Any) -> PixelSize:
    """Pixel size and magnification from OpenSlide's standard properties."""
    mpp = _positive(properties.get("openslide.mpp-x"))
    magnification = _positive(properties.get("openslide.objective-power"))
    return PixelSize(mpp, magnification, "OpenSlide") if mpp or magnification else PixelSize()
