"""One Riemannian gradient step: closed forms (flatbias.riemannian) vs a dense autograd Jacobian + dense projection.

Both compute θ⁺ = R(θ − h grad_M F(θ)); the dense version takes ∇F from torch.func.grad, J from torch.func.jacrev and
P_T = I − Jᵀ(JJᵀ)⁻¹J as an md × md matrix. Checks that the two steps agree to 1e-10 and prints the timings side by
side. Usage: python benchmarks/riemannian_step.py [--repeat 20]. Timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import time

import torch

from flatbias import manifold, riemannian, twolayer

torch.set_default_dtype(torch.float64)


def dense_grad(theta, X, act):
    m, d = theta.shape
    flat = theta.reshape(-1)
    g = torch.func.grad(lambda t: twolayer.sharpness(t.reshape(m, d), X, act))(flat)
    J = torch.func.jacrev(lambda t: twolayer.forward(t.reshape(m, d), X, act))(flat)
    P = torch.eye(m * d) - J.T @ torch.linalg.solve(J @ J.T, J)
    return (P @ g).reshape(m, d)


def timeit(fn, repeat):
    fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return (time.perf_counter() - t0) / repeat, out


def main(repeat: int) -> None:
    gen = torch.Generator().manual_seed(0)
    print(f"threads: {torch.get_num_threads()}")
    for n, d, m in [(3, 3, 10), (50, 50, 100)]:
        X, y = twolayer.uniform_data(n, d, gen)
        theta = manifold.random_point(X, y, "sinh", m, gen)
        h = 0.1 / max(riemannian.lambda_max(theta, X, "sinh"), 1e-12) if n <= 10 else 1e-6
        t_closed, g_c = timeit(lambda: riemannian.grad(theta, X, "sinh"), repeat)
        t_dense, g_d = timeit(lambda: dense_grad(theta, X, "sinh"), max(1, repeat // 5))
        err = float((g_c - g_d).norm() / g_d.norm())
        step_c = manifold.retract(theta - h * g_c, X, y, "sinh")
        step_d = manifold.retract(theta - h * g_d, X, y, "sinh")
        diff = float((step_c - step_d).abs().max())
        print(f"n={n} d={d} m={m}: grad closed form {t_closed * 1e3:.2f} ms, dense autograd {t_dense * 1e3:.2f} ms, "
              f"ratio {t_dense / t_closed:.1f}x; rel. diff of grad {err:.1e}; max diff of the retracted step {diff:.1e}")
        assert err < 1e-10 and diff < 1e-10


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    main(parser.parse_args().repeat)
