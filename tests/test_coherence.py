import pytest
import torch

from flatbias import coherence as co


def _random_family(n, d, rank, gen):
    A = torch.randn(n, d, rank, generator=gen)
    return A @ A.transpose(1, 2)


def test_coherence_matrix_matches_pairwise_definition(gen):
    H = _random_family(5, 4, 2, gen)
    S = co.coherence_matrix(H)
    for i in range(5):
        for j in range(5):
            # S_ij = ‖H_i^{1/2} H_j^{1/2}‖_F via matrix square roots
            lam_i, V_i = torch.linalg.eigh(H[i])
            lam_j, V_j = torch.linalg.eigh(H[j])
            Ri = V_i @ torch.diag(lam_i.clamp_min(0).sqrt()) @ V_i.T
            Rj = V_j @ torch.diag(lam_j.clamp_min(0).sqrt()) @ V_j.T
            assert abs(float(S[i, j]) - float(torch.linalg.norm(Ri @ Rj))) < 1e-10


def test_sigma_bounds(gen):
    """1 ≤ σ ≤ n·max‖H_i‖_F/max λ_1(H_i) (Cauchy–Schwarz); σ ≤ n for rank-one families."""
    for n, d, rank in [(3, 2, 1), (6, 4, 2), (10, 3, 3)]:
        H = _random_family(n, d, rank, gen)
        sigma, _ = co.coherence(H)
        upper = n * float(torch.linalg.matrix_norm(H).max()) / float(torch.linalg.eigvalsh(H)[:, -1].max())
        assert 1 - 1e-12 <= sigma <= upper + 1e-9
        if rank == 1:
            assert sigma <= n + 1e-9


@pytest.mark.parametrize("sigma", [1, 5, 25, 50])
def test_authors_construction_has_coherence_sigma(sigma):
    H = co.authors_family(100, sigma)
    s, _ = co.coherence(H)
    assert abs(s - sigma) < 1e-12
    assert abs(float(torch.linalg.eigvalsh(H.mean(0))[-1]) - 2.0) < 1e-12  # λ_1(H) = 2 for every σ


def test_identical_and_orthogonal_extremes(gen):
    g = torch.randn(4, generator=gen)
    assert abs(co.coherence(torch.outer(g, g).expand(7, 4, 4))[0] - 7) < 1e-10  # identical rank one: σ = n
    A = _random_family(1, 4, 2, gen)[0]  # identical rank two: σ = n‖A‖_F/λ_1(A) > n
    expected = 7 * float(torch.linalg.matrix_norm(A)) / float(torch.linalg.eigvalsh(A)[-1])
    assert abs(co.coherence(A.expand(7, 4, 4))[0] - expected) < 1e-10 and expected > 7
    assert abs(co.coherence(torch.diag_embed(torch.eye(6) * 3.0))[0] - 1) < 1e-12  # orthogonal: σ = 1


def test_rank_one_shortcut_matches_dense(gen):
    G = torch.randn(7, 5, generator=gen)
    H = 2.0 * G[:, :, None] * G[:, None, :]
    s_dense, S_dense = co.coherence(H)
    s_fast, S_fast = co.coherence_from_gradients(G, c=2.0)
    assert abs(s_dense - s_fast) < 1e-10
    torch.testing.assert_close(S_dense, S_fast)


def test_bad_inputs_are_clear_errors(gen):
    H = _random_family(3, 3, 3, gen)
    H[1] -= 10 * torch.eye(3)
    with pytest.raises(ValueError, match="not positive semidefinite"):
        co.coherence(H)
    with pytest.raises(ValueError, match="not symmetric"):
        co.coherence(torch.tensor([[[1.0, 2.0], [0.0, 1.0]]]))
    with pytest.raises(ValueError, match=r"\(n, d, d\)"):
        co.coherence(torch.eye(3))
    with pytest.raises(ValueError, match="NaN"):
        co.coherence(torch.full((2, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="zero"):
        co.coherence(torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="σ ≤ n"):
        co.authors_family(10, 11)
