"""Blockwise radius and threshold of rank-one families (stability.orthogonal_blocks and friends)."""
import pytest
import torch

from flatbias import stability as st


def _blocked(gen, sizes=(3, 1, 2), p=9):
    """Gradients with disjoint supports per block (so blocks are orthogonal), rows shuffled."""
    rows, col = [], 0
    for m in sizes:
        g = torch.zeros(m, p, dtype=torch.float64)
        g[:, col:col + 3] = torch.randn(m, 3, generator=gen, dtype=torch.float64)
        rows.append(g)
        col += 3
    G = torch.cat(rows)
    return G[torch.randperm(G.shape[0], generator=gen)]


def test_blocks_are_the_components(gen):
    G = _blocked(gen)
    blocks = st.orthogonal_blocks(G)
    assert sorted(len(b) for b in blocks) == [1, 2, 3]
    K = G @ G.T
    for a in blocks:
        for b in blocks:
            if a is not b:
                assert float(K[a][:, b].abs().max()) == 0.0


@pytest.mark.parametrize("method,ra", [("sgd", 0.0), ("sam", 0.7)])
@pytest.mark.parametrize("B", [1, 2, 4])
def test_blockwise_matches_whole_family(gen, method, ra, B):
    G = _blocked(gen)
    H = 2.0 * G[:, :, None] * G[:, None, :]
    for eta in (0.05, 0.3):
        whole = st.spectral_radius(H, eta, B, method=method, rho_over_alpha=ra, algorithm="dense")
        assert st.spectral_radius_blocks(G, eta, B, method=method, rho_over_alpha=ra) == pytest.approx(whole, rel=1e-10)
    eta_star = st.critical_eta(H, B, method=method, rho_over_alpha=ra)
    assert st.critical_eta_rank_one(G, B, method=method, rho_over_alpha=ra) == pytest.approx(eta_star, rel=1e-9)


@pytest.mark.parametrize("B", [1, 3, 5])
def test_orthogonal_gradients_closed_form(gen, B):
    n, a = 6, 1.7  # g_i = sqrt(a) e_i: eta* = B / |g|^2 (c = 2)
    G = a ** 0.5 * torch.eye(n, 10, dtype=torch.float64)
    assert st.critical_eta_rank_one(G, B) == pytest.approx(B / a, rel=1e-10)


def test_batch_one_threshold_ignores_coherence(gen):
    # B = 1 and equal norms: at eta = 1/|g|^2 every step is a reflection, whatever the alignment
    G = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    G = G / G.norm(dim=1, keepdim=True) * 1.3
    assert st.critical_eta_rank_one(G, 1) == pytest.approx(1 / 1.3 ** 2, rel=1e-9)


def test_large_block_is_refused(gen):
    G = torch.randn(st.BLOCK_MAX_DIM + 2, st.BLOCK_MAX_DIM + 5, generator=gen, dtype=torch.float64)
    with pytest.raises(ValueError, match="too large"):
        st.critical_eta_rank_one(G, 2)
