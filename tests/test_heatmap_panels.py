"""A heat-map panel: the cells in σ-major order, and the ρ = 1 contour only where the grid crosses it."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from flatbias.heatmap_panels import stability_panel  # noqa: E402


def test_panel_image_and_contour():
    sigmas, batches = [1, 2, 3], [1, 2]
    rho = np.array([2.0, 1.5, 1.2, 0.9, 0.8, 0.5])
    fig, ax = plt.subplots()
    assert stability_panel(ax, rho < 1, rho, sigmas, batches, "t") is ax
    img = ax.images[0].get_array()
    assert img.shape == (3, 2) and img[0, 0] == 0 and img[2, 1] == 1
    assert len(ax.collections) == 1 and ax.get_title() == "t"
    fig2, ax2 = plt.subplots()
    stability_panel(ax2, np.ones(6, bool), np.full(6, 0.5), sigmas, batches)
    assert len(ax2.collections) == 0  # no boundary on the grid: no contour
    plt.close(fig), plt.close(fig2)
