"""One figure style for every chapter: readable on the website, consistent colours."""

from __future__ import annotations

import matplotlib as mpl
import seaborn as sns

#: Colours used across chapters for the same objects.
COLORS = {"closed_form": "#1f77b4", "autograd": "#ff7f0e", "sgd": "#2ca02c", "sam": "#d62728", "flow": "#9467bd",
          "reference": "#7f7f7f"}


def set_style() -> None:
    """Seaborn ``whitegrid`` with sizes tuned for a ~700 px wide book column."""
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.95)
    mpl.rcParams.update({
        "figure.figsize": (7.0, 3.4),
        "figure.dpi": 110,
        "savefig.dpi": 150,
        "savefig.bbox": "tight",
        "axes.titlesize": "medium",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
        "figure.constrained_layout.use": True,
    })
