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
