"""What a notebook calls: run (or load) an experiment at ``$POLYSTEP_SCALE`` and show its figures.

Notebooks stay thin: all computation and plotting lives in the experiment modules.
"""

from __future__ import annotations

import os

from . import registry, runner
from .scale import scale_from_env


def run_and_show(experiment_id: str, *, seed: int | None = None, device: str | None = None):
    """Run ``experiment_id`` (cached) at the scale named by ``$POLYSTEP_SCALE`` (default cpu).

    Returns ``(results, measurements)``; figures are displayed inline and written to ``figures/``.
    """
    import matplotlib.pyplot as plt

    from .figures import style

    scale = scale_from_env()
    seed = int(os.environ.get("POLYSTEP_SEED", 0)) if seed is None else seed
    device = os.environ.get("POLYSTEP_DEVICE", "auto") if device is None else device
    stored = runner.run_experiment(experiment_id, scale=scale, device=device, seed=seed)
    module = registry.get(experiment_id)
    if hasattr(module, "plot"):
        with style():
            figs = module.plot(stored["results"])
        for fig in (figs.values() if isinstance(figs, dict) else [figs]):
            try:
                from IPython.display import display

                display(fig)
            except ImportError:  # plain python
                pass
            plt.close(fig)
    if hasattr(module, "table"):
        try:
            from IPython.display import Markdown, display

            display(Markdown(module.table(stored["results"])))
        except ImportError:
            print(module.table(stored["results"]))
    return stored["results"], runner.measurements(experiment_id, stored["results"])


def _short(value, width: int = 48) -> str:
    """A value as a table cell: floats to 4 significant digits, lists shortened, at most ``width``
    characters (the full value is in the sidecar and in ``polystep-repro claim ID``)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_short(v, 12) for v in value[:6]) + (", …" if len(value) > 6 else "") + "]"
    else:
        text = str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


class VerdictTable:
    """The verdict table a notebook shows: per claim of an experiment, the paper's value, ours, the
    verdict of :func:`repro.claims.judge` at the run's scale (below the claim's registered scale:
    *indicative*, with the rule's outcome in brackets) and the registered rule. Renders as markdown in
    Jupyter, as text in a console."""

    def __init__(self, experiment_id: str, measurements: dict, scale: str):
        from .claims import claims_of, get_claim, judge

        self.experiment_id, self.scale = experiment_id, scale
        self.rows = []
        for cid in claims_of(experiment_id):
            c = get_claim(cid)
            j = judge(c, measurements.get(cid), scale)
            self.rows.append({"claim": cid, "scale": c.scale, "paper": c.paper_value,
                              "rule": c.rule_text or "–", "value": j.value, "verdict": j.label,
                              "rule_verdict": j.rule_verdict})
        #: claim id -> verdict label, what the table shows
        self.verdicts = {r["claim"]: r["verdict"] for r in self.rows}

    def markdown(self) -> str:
        lines = [f"Verdicts of a **{self.scale}**-scale run (rules registered in `paper/claims.toml`; "
                 "`polystep-repro claim ID` shows one claim in full):", "",
                 "| claim | paper | ours | verdict | registered scale | rule |", "|---|---|---|---|---|---|"]
        for r in self.rows:
            shown = r["verdict"]
            if shown.startswith("indicative") and r["rule_verdict"]:
                shown = f"indicative [{r['rule_verdict']}]"
            lines.append(f"| `{r['claim'].split('.', 1)[1]}` | {_short(r['paper'], 40)} | {_short(r['value'])} "
                         f"| {shown} | {r['scale']} | `{_short(r['rule'], 60)}` |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return self.markdown()


def verdict_table(experiment_id: str, measurements: dict, scale: str | None = None) -> VerdictTable:
    """The verdicts of ``experiment_id``'s claims on ``measurements`` (from :func:`run_and_show`) at
    ``scale`` (default ``$POLYSTEP_SCALE``): what a notebook's last cell shows."""
    return VerdictTable(experiment_id, measurements, scale_from_env() if scale is None else scale)
