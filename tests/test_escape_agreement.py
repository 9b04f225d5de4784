"""The heat-map kernel against the independent log-norm simulator: agreement, and a planted kernel bug."""

import torch

from flatbias import escape_agreement, simulate


def test_kernel_and_paths_agree_where_escapes_are_random():
    z = escape_agreement.escape_z(100, 5, 16, 0.5, runs=150, steps=300, generator=torch.Generator().manual_seed(0))
    assert z < 4


def test_sam_cell_agrees_and_a_kernel_that_never_escapes_is_seen(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    assert escape_agreement.escape_z(100, 2, 10, 0.5, 100, 200, rho_over_alpha=1.0, generator=gen) < 4
    true = simulate.simulate_axes
    monkeypatch.setattr(simulate, "simulate_axes", lambda *a, **k: torch.zeros_like(true(*a, **k)))
    assert escape_agreement.escape_z(100, 2, 10, 0.5, 100, 200, rho_over_alpha=1.0, generator=gen) > 4
