"""Figure helpers: one style, byte-stable PNG/PDF output, a json sidecar per figure."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # figures are files here; notebooks display them inline themselves
import matplotlib.pyplot as plt  # noqa: E402

from . import storage  # noqa: E402

STYLE = Path(__file__).with_name("polystep.mplstyle")

#: colours used for methods everywhere (colour-blind safe, Okabe-Ito)
METHOD_COLORS = {
    "PolyStep": "#0072B2", "Adam": "#D55E00", "SGD": "#E69F00", "OpenAI-ES": "#009E73",
    "SPSA": "#CC79A7", "CMA-ES": "#56B4E9", "Sinkhorn": "#F0E442", "softmax": "#0072B2",
}


def style():
    """Context manager applying the package's matplotlib style."""
    return plt.style.context(str(STYLE))


def save_figure(fig, path_stem: Path, sidecar: dict[str, Any] | None = None) -> list[Path]:
    """Write ``path_stem``.png and .pdf with metadata stripped (reruns are byte-identical) and,
    when given, ``path_stem``.json with the sidecar (git sha, seed, scale, device, versions, ...)."""
    path_stem = Path(path_stem)
    written = []
    for ext, meta in (("png", {"Software": None}),
                      ("pdf", {"Creator": None, "Producer": None, "CreationDate": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, metadata=meta)
        target = path_stem.with_suffix(f".{ext}")
        storage.atomic_write_bytes(target, buf.getvalue())
        written.append(target)
    if sidecar is not None:
        import json

        target = path_stem.with_suffix(".json")
        storage.atomic_write_text(target, json.dumps(storage.to_jsonable(sidecar), indent=1,
                                                     sort_keys=True) + "\n")
        written.append(target)
    return written
