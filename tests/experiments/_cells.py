"""The cells an experiment declares, without computing them (for the experiments' cell tests)."""

from __future__ import annotations

from repro.context import RunContext


class Declared(Exception):
    """Raised by :class:`Capture` (``stop=True``) once the experiment has declared its first cells."""


class Capture(RunContext):
    """A run context whose ``map`` records each call's cells and computes none: it raises
    :class:`Declared` after the first call (``stop=True``), or returns ``None`` for every cell."""

    def __init__(self, *, stop: bool = True, **kw):
        super().__init__(**kw)
        self.stop = stop
        self.calls: list[list] = []

    @property
    def cells(self) -> list:
        return [c for call in self.calls for c in call]

    def map(self, cells, *, desc: str = "cells"):
        self.calls.append(list(cells))
        if self.stop:
            raise Declared
        return [None] * len(self.calls[-1])


def first_cells(module, cfg) -> list:
    """The cells of ``module.run(cfg, ...)``'s first ``ctx.map`` call."""
    ctx = Capture(stop=True)
    try:
        module.run(cfg, ctx)
    except Declared:
        return ctx.cells
    raise AssertionError(f"{module.__name__}.run() declared no cells")
