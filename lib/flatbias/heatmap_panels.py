"""One panel of a (batch size, coherence) stability heat-map, as in Paper 2's Figure 1 (chapters 11 and 13).

Green cells are stable, red unstable; a black line marks the exact mean-square boundary ρ(𝒯) = 1 where the grid
crosses it. Cells are listed σ-major (every B for the first σ, then the next σ), as
:func:`flatbias.simulate.authors_grid` builds them.
"""

from __future__ import annotations

import numpy as np


def stability_panel(ax, stable, rho, sigmas, batches, title: str = ""):
    """Draw ``stable`` (bool per cell) on ``ax`` with the contour ρ = 1 of ``rho`` (per cell); returns ``ax``."""
    sigmas, batches = list(sigmas), list(batches)
    shape = (len(sigmas), len(batches))
    stable = np.asarray(stable, dtype=float).reshape(shape)
    rho = np.asarray(rho, dtype=float).reshape(shape)
    ext = [min(batches) - 0.5, max(batches) + 0.5, min(sigmas) - 0.5, max(sigmas) + 0.5]
    ax.imshow(stable, origin="lower", aspect="auto", extent=ext, cmap="RdYlGn", vmin=0, vmax=1)
    finite = rho[np.isfinite(rho)]
    if finite.size and finite.min() < 1 < rho.max():
        ax.contour(np.array(batches), np.array(sigmas), rho, levels=[1.0], colors="k", linewidths=0.8)
    ax.set(title=title, xlabel="batch size $B$")
    return ax
