"""Label-noise SGD and 1-SAM for paper 1's two-layer network: a fast batched kernel (SPEC §A.10, §C.1, §C.3).

Many independent *chains* (seeds, data draws, step sizes, noise levels) run at once. Chain c has its own
weights θ^(c) ∈ R^{m×d}, data X^(c) ∈ R^{n×d}, labels y^(c), step η_c, label-noise level s_c and SAM radius ρ_c.
One step of chain c, with the per-sample loss ℓ_i(θ) = ½(f_θ(x_i) − y_i − s ε)² (SPEC §A.10, §C.1):

    label-noise SGD:  i ~ U{1..n}, ε ~ N(0, 1);  θ_j ← θ_j − η r φ'(θ_jᵀx_i) x_i,  r = f_θ(x_i) − y_i − s ε
    1-SAM (§C.3):     θ' = θ + ρ g/(‖g‖ + 1e-12), g = ∇ℓ_i(θ);  θ ← θ − η ∇ℓ_i(θ')

The per-sample gradient is in closed form, ∇_{θ_j} ℓ_i = r φ'(θ_jᵀx_i) x_i, and the loop over steps is compiled
with numba, on one core. Three kernels take the same steps: :func:`_run_chunk_scalar`, the reference (chains one
after the other), and two lane kernels, which :func:`run` uses for two chains or more: all chains at once, with the
lanes (neuron, chain) innermost so that LLVM vectorizes them. :func:`_run_chunk_lanes3` serves d = 3 (paper 1's
Figure 1), keeping its arrays on the stack so that LLVM vectorizes its short loops without overlap checks;
:func:`_run_chunk_lanes` serves any d. All compute exp by :func:`_exp_pm`, pure arithmetic within 1 ulp (libm's exp
is an opaque call that does not vectorize), and repeat every floating-point operation in the same order, so they
give the same bits (tested chain for chain), on any machine and libm.
A batched torch scan over chains was measured in an earlier benchmark (record of 2026-11-22: 3.6e5 chain-steps/s at
16 chains against 8.8e6 for the scalar kernel) and is slower for the few-dozen-chain, many-step runs paper 1 needs;
``benchmarks/label_noise_kernel.py`` now times the naive loop and the kernels.

Randomness: chain c draws its sample indices and its noise from two numpy PCG64 streams spawned from
``SeedSequence(seed)`` with spawn key (c,), so a chain's trajectory depends only on ``seed`` and c (not on the
number of chains nor on how often it is recorded). :func:`draw_noise` returns exactly the numbers the kernel
uses, so :func:`reference_run` (a plain PyTorch autograd loop) can be fed the same noise.

Recording: every ``record_every`` steps the kernel stops, the driver copies θ (a few hundred bytes per chain),
and after the run the eigenvalues of ΦΦᵀ, F and the loss are computed for all snapshots at once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from llvmlite import ir as llvm_ir
from numba import njit, types
from numba.extending import intrinsic
from tqdm import tqdm  # plain tqdm: stderr bars, off when not a terminal (no widget warnings in the book)

from . import validate as vd
from .activations import get_activation
from .manifold import RankDeficientError, RetractionError

#: activations the compiled kernel knows (code used inside the kernel)
KERNEL_ACTIVATIONS = {"sinh": 0, "cubic": 1}
METHODS = {"sgd": 0, "sam": 1}


# ----------------------------------------------------------------------------------------------------------------
# the compiled kernels


# exp(x) and exp(−x) in pure arithmetic (no table, no libm call), so that it inlines and vectorizes in the lane
# loops (libm's exp is an opaque call, and numba has no vector exp without Intel's SVML) and gives the same bits
# on every machine and libm. x = k ln2 + r with k = round(x/ln2) (the shift trick; ln2 split in two so that r is
# exact to ~2⁻¹⁰⁶), |r| ≤ ln2/2; e^{±r} = 1 ± r + (E(r) ± O(r)) with E and O the even and odd Taylor parts beyond
# the linear term, to r¹⁴ and r¹³ (truncation below 1e-17 relative); then 2^{±k} enters the exponent field. Both
# results are within 1 ulp of the exact value for |x| < 512 (tested against long-double exp on 3·10⁶ points;
# libm's is within 0.51). The kernels use it only for |x| < 512 and take math.exp beyond (a diverging run).

_EXP_INVLN2 = float.fromhex("0x1.71547652b82fep+0")  # 1/ln 2
_EXP_SHIFT = float.fromhex("0x1.8p52")  # 1.5·2⁵², adding it rounds to an integer kept in the low bits
_EXP_LN2HI = float.fromhex("0x1.62e42fefa39efp-1")
_EXP_LN2LO = float.fromhex("0x1.abc9e3b39803fp-56")
#: 1/(2i)! for i = 1..7 (the even part) and 1/(2i+1)! for i = 1..6 (the odd part), the Taylor coefficients
_EXP_EVEN = tuple(1.0 / math.factorial(2 * i) for i in range(1, 8))
_EXP_ODD = tuple(1.0 / math.factorial(2 * i + 1) for i in range(1, 7))
_E1, _E2, _E3, _E4, _E5, _E6, _E7 = _EXP_EVEN
_O1, _O2, _O3, _O4, _O5, _O6 = _EXP_ODD
#: the largest |x| for which :func:`_exp_pm` is used (2^k stays a normal number, and the runs are far from here)
EXP_RANGE = 512.0


@intrinsic
def _fma(typingctx, a, b, c):  # pragma: no cover - compiled
    """a·b + c rounded once (llvm.fma; vfmadd on x86-64, a correctly rounded libm call where there is no FMA)."""
    def codegen(context, builder, signature, args):
        f64 = llvm_ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [f64], llvm_ir.FunctionType(f64, [f64, f64, f64]))
        return builder.call(fn, args)
    return types.float64(types.float64, types.float64, types.float64), codegen


@intrinsic
def _bits(typingctx, a):  # pragma: no cover - compiled
    """The bits of a float64 as an int64."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, a):  # pragma: no cover - compiled
    """The float64 with the bits of an int64."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def _stack_empty(typingctx, n):  # pragma: no cover - compiled
    """A 1-D float64 array of n elements on the calling function's stack, not initialized. LLVM knows that such an
    array aliases no other array, so a short loop over it vectorizes without run-time overlap checks (numba's heap
    arrays look to LLVM as if they might overlap). Call it outside loops, for sizes that fit the stack."""
    arrty = types.Array(types.float64, 1, "C")

    def codegen(context, builder, signature, args):
        (size,) = args
        ary = context.make_array(arrty)(context, builder)
        itemsize = context.get_constant(types.intp, 8)
        context.populate_array(ary, data=builder.alloca(llvm_ir.DoubleType(), size=size), shape=[size],
                               strides=[itemsize], itemsize=itemsize, meminfo=None)
        return ary._getvalue()
    return arrty(types.intp), codegen


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy", inline="always")
def _exp_pm(x, h):  # pragma: no cover - compiled
    """(e^x/2^h, e^−x/2^h) for |x| < 512 and h ∈ {0, 1}, each within 1 ulp (see above; the power of two is
    exact: it only enters the exponent field)."""
    kr = _fma(x, _EXP_INVLN2, _EXP_SHIFT)
    kd = kr - _EXP_SHIFT
    k = _bits(kr) - _bits(_EXP_SHIFT)
    r = _fma(kd, -_EXP_LN2LO, _fma(kd, -_EXP_LN2HI, x))
    s = r * r
    ev = _fma(s, _fma(s, _fma(s, _fma(s, _fma(s, _fma(s, _E7, _E6), _E5), _E4), _E3), _E2), _E1) * s
    od = _fma(s, _fma(s, _fma(s, _fma(s, _fma(s, _O6, _O5), _O4), _O3), _O2), _O1) * s * r
    plus = 1.0 + (r + (ev + od))
    minus = 1.0 - (r - (ev - od))
    return _from_bits(_bits(plus) + ((k - h) << 52)), _from_bits(_bits(minus) - ((k + h) << 52))


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _exp_pm_array(x, plus, minus):  # pragma: no cover - compiled
    """:func:`_exp_pm` over an array, h = 0 (for the tests)."""
    for q in range(x.size):
        plus[q], minus[q] = _exp_pm(x[q], 0)


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _exp_pm_halves(x, plus, minus):  # pragma: no cover - compiled
    """:func:`_exp_pm` over an array, h = 1 (for the tests)."""
    for q in range(x.size):
        plus[q], minus[q] = _exp_pm(x[q], 1)


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy", inline="always")
def _sample_index(v, n):  # pragma: no cover - compiled
    """The sample a uniform v in [0, 1) picks from n: ⌊v n⌋, at most n − 1 (:func:`draw_noise` in numpy)."""
    i = int(v * n)
    return n - 1 if i >= n else i


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _phi_dphi(z, act):
    if act == 0:  # sinh, cosh = e^z/2 ∓ e^−z/2
        if abs(z) < EXP_RANGE:
            e, ei = _exp_pm(z, 1)
        else:  # beyond the range of _exp_pm (or NaN): the run is diverging
            e = 0.5 * math.exp(z)
            ei = 0.25 / e
        return e - ei, e + ei
    return z + z * z * z / 3.0, 1.0 + z * z  # cubic z + z³/3


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _run_chunk_scalar(theta, X, y, eta, s, rho, u, eps, method, act):  # pragma: no cover - compiled
    """The reference kernel (scalar, chains one after the other). Advance every chain by u.shape[1] steps in place.
    theta (C,m,d), X (C,n,d), y (C,n), eta/s/rho (C,), u (C,K) uniforms in [0,1) choosing the sample, eps (C,K)
    standard normals."""
    C, m, d = theta.shape
    n = X.shape[1]
    K = u.shape[1]
    th = np.empty((m, d))
    x = np.empty(d)
    z = np.empty(m)
    dp = np.empty(m)
    for c in range(C):
        th[:, :] = theta[c]
        e_c = eta[c]
        s_c = s[c]
        rho_c = rho[c]
        for t in range(K):
            i = _sample_index(u[c, t], n)
            xx = 0.0
            for k in range(d):
                x[k] = X[c, i, k]
                xx += x[k] * x[k]
            f = 0.0
            for j in range(m):
                zj = 0.0
                for k in range(d):
                    zj += th[j, k] * x[k]
                z[j] = zj
                p, q = _phi_dphi(zj, act)
                f += p
                dp[j] = q
            r = f - y[c, i] - s_c * eps[c, t]
            if method == 1:  # 1-SAM: ascend to θ' = θ + ρ g/(‖g‖+1e-12), g_j = r φ'(z_j) x  (SPEC §C.3)
                sq = 0.0
                for j in range(m):
                    sq += dp[j] * dp[j]
                gnorm = abs(r) * math.sqrt(sq * xx)
                a = rho_c * r / (gnorm + 1e-12)
                f = 0.0
                for j in range(m):
                    zj = z[j] + a * dp[j] * xx  # (θ_j + a φ'(z_j) x)ᵀx
                    p, q = _phi_dphi(zj, act)
                    f += p
                    dp[j] = q
                r = f - y[c, i] - s_c * eps[c, t]
            g = e_c * r
            for j in range(m):
                w = g * dp[j]
                for k in range(d):
                    th[j, k] -= w * x[k]
        theta[c] = th


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy", inline="always")
def _phi_lanes(z, p, dp, act):  # pragma: no cover - compiled
    """p = φ(z), dp = φ'(z) elementwise over flat lanes, as :func:`_phi_dphi` does for |z| < 512. Returns how
    many z are ≥ 512 in magnitude or NaN (sinh only; there :func:`_phi_dphi` takes libm's exp, so the chunk is
    redone by the scalar kernel). One pass, pure arithmetic: it vectorizes."""
    N = z.size
    bad = 0
    if act == 1:
        for q in range(N):
            zq = z[q]
            p[q] = zq + zq * zq * zq / 3.0
            dp[q] = 1.0 + zq * zq
        return bad
    for q in range(N):
        x = z[q]
        bad += 0 if abs(x) < EXP_RANGE else 1
        e, ei = _exp_pm(x, 1)
        p[q] = e - ei
        dp[q] = e + ei
    return bad


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy", boundscheck=False)
def _run_chunk_lanes(th, m, X, y, eta, s, rho, u, eps, method, act):  # pragma: no cover - compiled
    """The same steps as :func:`_run_chunk_scalar`, every chain at once: chains are the innermost (SIMD) index.

    th (d, m·P) holds θ laid out (d, m, P): lane q = j·P + c for neuron j of chain c, P ≥ C chains padded with
    zero chains (P a multiple of the SIMD width, so every per-neuron block of lanes is aligned and a chain's
    quantity is copied to its m lanes by contiguous block copies, not by a gather); it is updated in place.
    X (n, d, C), y (n, C), eta/s/rho (C,), u/eps (C, K) as for the scalar kernel. Every floating-point operation of
    a chain is the scalar kernel's, in the same order (sums start at 0.0 and run over j and k in order, no
    contraction except the FMAs written out in :func:`_exp_pm`), so the result is bit-identical. Returns 1.0 if
    some argument of exp was ≥ 512 in magnitude or NaN (where the scalar kernel takes libm's exp: redo the chunk
    with it), else 0.0."""
    n, d, C = X.shape
    Q = th.shape[1]
    P = Q // m
    K = u.shape[1]
    x = np.zeros((d, P))  # the sample of each chain; the padding chains keep x = 0 (their θ stays 0)
    xr = np.zeros((d, Q))  # x copied to the m neuron blocks
    xx, yi, a = np.zeros(P), np.zeros(P), np.zeros(P)
    f, sq, g = np.zeros(P), np.zeros(P), np.zeros(P)
    z, p, dp = np.empty(Q), np.empty(Q), np.empty(Q)
    bad = 0
    for t in range(K):
        for c in range(C):  # the sample of each chain (a gather: scalar)
            i = _sample_index(u[c, t], n)
            yi[c] = y[i, c]
            acc = 0.0
            for kk in range(d):
                v = X[i, kk, c]
                x[kk, c] = v
                acc += v * v
            xx[c] = acc
        for kk in range(d):
            for j in range(m):
                for c in range(P):
                    xr[kk, j * P + c] = x[kk, c]
        for q in range(Q):
            z[q] = 0.0
        for kk in range(d):
            for q in range(Q):
                z[q] += th[kk, q] * xr[kk, q]
        bad += _phi_lanes(z, p, dp, act)
        for c in range(P):  # f = Σ_j φ(z_j) in the order j = 0, 1, ...
            f[c] = 0.0
        for j in range(m):
            for c in range(P):
                f[c] += p[j * P + c]
        if method == 1:  # 1-SAM (SPEC §C.3), as in the scalar kernel
            for c in range(C):
                g[c] = f[c] - yi[c] - s[c] * eps[c, t]
            for c in range(P):
                sq[c] = 0.0
            for j in range(m):
                for c in range(P):
                    sq[c] += dp[j * P + c] * dp[j * P + c]
            for c in range(C):
                gnorm = abs(g[c]) * math.sqrt(sq[c] * xx[c])
                a[c] = rho[c] * g[c] / (gnorm + 1e-12)
            for j in range(m):
                for c in range(P):
                    z[j * P + c] = z[j * P + c] + a[c] * dp[j * P + c] * xx[c]
            bad += _phi_lanes(z, p, dp, act)
            for c in range(P):
                f[c] = 0.0
            for j in range(m):
                for c in range(P):
                    f[c] += p[j * P + c]
        for c in range(C):  # η r, r = f − y_i − s ε; 0 on the padding chains
            g[c] = eta[c] * (f[c] - yi[c] - s[c] * eps[c, t])
        for j in range(m):
            for c in range(P):
                p[j * P + c] = g[c] * dp[j * P + c]  # w_j = η r φ'(z_j) (p is free again)
        for kk in range(d):
            for q in range(Q):
                th[kk, q] -= p[q] * xr[kk, q]
    return 1.0 if bad else 0.0


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy", inline="always")
def _sum_blocks(p, f, m, P):  # pragma: no cover - compiled
    """f[c] = Σ_j p[j·P + c], summed from 0.0 in the order j = 0, 1, ... (the scalar kernel's order)."""
    for c in range(P):
        f[c] = 0.0
    for j in range(m):
        o = j * P
        for c in range(P):
            f[c] += p[o + c]


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy", boundscheck=False)
def _run_chunk_lanes3(th, m, X, y, eta, s, rho, u, eps, method, act):  # pragma: no cover - compiled
    """:func:`_run_chunk_lanes` for d = 3 (paper 1's Figure 1), with its arguments, layout and flag, bit-identical
    to it and to the scalar kernel. Faster for the chapters' 8–16 chains (``benchmarks/label_noise_kernel.py``):
    every array of the step lives on the stack (:func:`_stack_empty`) with one array per row of θ and of x, so the
    per-neuron loops vectorize without overlap checks; z is formed in one pass (d = 3 written out, no broadcast
    copy of x) and θ is updated in one pass. θ is copied in at the start and out at the end.
    Stack use: 6 m P + 12 P doubles (:func:`stack_bytes`); :class:`_Lanes` takes it up to :data:`STACK_BYTES_MAX`."""
    n, d, C = X.shape
    if d != 3 or th.shape[0] != 3:
        raise ValueError("_run_chunk_lanes3 takes d = 3 only (X of shape (n, 3, C), θ of shape (3, m·P))")
    Q = th.shape[1]
    P = Q // m
    K = u.shape[1]
    t0, t1, t2 = _stack_empty(Q), _stack_empty(Q), _stack_empty(Q)
    z, p, dp = _stack_empty(Q), _stack_empty(Q), _stack_empty(Q)
    x0, x1, x2, xx = _stack_empty(P), _stack_empty(P), _stack_empty(P), _stack_empty(P)
    yi, se, et, rh = _stack_empty(P), _stack_empty(P), _stack_empty(P), _stack_empty(P)
    f, g, sq, a = _stack_empty(P), _stack_empty(P), _stack_empty(P), _stack_empty(P)
    for q in range(Q):
        t0[q], t1[q], t2[q] = th[0, q], th[1, q], th[2, q]
    for c in range(P):  # the padding chains keep x = 0, y = 0, η = 0 (their θ stays 0)
        x0[c], x1[c], x2[c], xx[c], yi[c], se[c] = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        et[c] = eta[c] if c < C else 0.0
        rh[c] = rho[c] if c < C else 0.0
    bad = 0
    for t in range(K):
        for c in range(C):  # the sample of each chain (a gather: scalar)
            i = _sample_index(u[c, t], n)
            v0, v1, v2 = X[i, 0, c], X[i, 1, c], X[i, 2, c]
            x0[c], x1[c], x2[c] = v0, v1, v2
            xx[c] = ((0.0 + v0 * v0) + v1 * v1) + v2 * v2
            yi[c] = y[i, c]
            se[c] = s[c] * eps[c, t]
        for j in range(m):  # z_j = θ_jᵀx, summed from 0.0 in the order k = 0, 1, 2
            o = j * P
            for c in range(P):
                z[o + c] = ((0.0 + t0[o + c] * x0[c]) + t1[o + c] * x1[c]) + t2[o + c] * x2[c]
        bad += _phi_lanes(z, p, dp, act)
        _sum_blocks(p, f, m, P)
        if method == 1:  # 1-SAM (SPEC §C.3), as in the scalar kernel
            for c in range(P):
                g[c] = f[c] - yi[c] - se[c]
                sq[c] = 0.0
            for j in range(m):
                o = j * P
                for c in range(P):
                    sq[c] += dp[o + c] * dp[o + c]
            for c in range(P):
                gnorm = abs(g[c]) * math.sqrt(sq[c] * xx[c])
                a[c] = rh[c] * g[c] / (gnorm + 1e-12)
            for j in range(m):
                o = j * P
                for c in range(P):
                    z[o + c] = z[o + c] + a[c] * dp[o + c] * xx[c]
            bad += _phi_lanes(z, p, dp, act)
            _sum_blocks(p, f, m, P)
        for c in range(P):  # η r, r = f − y_i − s ε; 0 on the padding chains
            g[c] = et[c] * (f[c] - yi[c] - se[c])
        for j in range(m):
            o = j * P
            for c in range(P):
                w = g[c] * dp[o + c]  # w_j = η r φ'(z_j)
                t0[o + c] -= w * x0[c]
                t1[o + c] -= w * x1[c]
                t2[o + c] -= w * x2[c]
    for q in range(Q):
        th[0, q], th[1, q], th[2, q] = t0[q], t1[q], t2[q]
    return 1.0 if bad else 0.0


# ----------------------------------------------------------------------------------------------------------------
# randomness shared by the kernel and the reference loop


class ChainNoise:
    """The two random streams of each chain: sample indices (uniforms) and label noise (standard normals)."""

    def __init__(self, seed, chains: int):
        """``seed`` an int: chain c gets the streams with spawn key (c,) of ``SeedSequence(seed)``. ``seed`` a
        sequence of ``chains`` ints: chain c gets the streams of chain 0 under ``seed[c]``, i.e. exactly what a
        one-chain run with that seed draws (so independent one-chain runs can be stacked into one batch)."""
        chains = vd.integer("chains", chains, 0)
        if isinstance(seed, (int, np.integer)):
            pairs = [(vd.integer("seed", seed, 0), c) for c in range(chains)]
        else:
            seeds = [vd.integer("seed", v, 0) for v in vd.array("seed", seed, 1)]
            if len(seeds) != chains:
                raise vd.InvalidArgumentError(f"seed must be an int or one int per chain ({chains}); "
                                              f"got {len(seeds)} seeds")
            pairs = [(v, 0) for v in seeds]
        self._gens = []
        for v, c in pairs:
            idx_seq, eps_seq = np.random.SeedSequence(np.random.SeedSequence(v).entropy, spawn_key=(c,)).spawn(2)
            self._gens.append((np.random.Generator(np.random.PCG64(idx_seq)),
                               np.random.Generator(np.random.PCG64(eps_seq))))

    def draw(self, K: int, normals=None) -> tuple[np.ndarray, np.ndarray]:
        """The next K uniforms and K normals of every chain, shapes (C, K); chunk-size independent streams.

        ``normals`` (optional, one bool per chain): where False, that chain's normals are not drawn (its row of
        eps is 0 and its normal stream does not advance). :func:`run` skips them for chains with s = 0, whose
        steps do not depend on them (s·ε = ±0 leaves f − y unchanged, bit for bit)."""
        K = vd.integer("K", K, 0)
        C = len(self._gens)
        need = np.ones(C, dtype=bool) if normals is None else np.asarray(normals, dtype=bool)
        if need.shape != (C,):
            raise vd.InvalidArgumentError(f"normals must hold one bool per chain, shape ({C},); got {need.shape}")
        u = np.empty((C, K))
        eps = np.empty((C, K)) if need.all() else np.zeros((C, K))
        for c, (gi, ge) in enumerate(self._gens):
            gi.random(out=u[c])
            if need[c]:
                ge.standard_normal(out=eps[c])
        return u, eps


def draw_noise(seed: int, chains: int, n: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The sample indices (C, T) and standard normals (C, T) the kernel uses for ``seed`` (for reference runs)."""
    n = vd.integer("n", n, 1)
    u, eps = ChainNoise(seed, chains).draw(steps)
    return np.minimum((u * n).astype(np.int64), n - 1), eps


# ----------------------------------------------------------------------------------------------------------------
# argument checks


def _as_chain_param(name: str, v, C: int, allow_zero: bool) -> np.ndarray:
    arr = vd.array(name, v)
    arr = np.broadcast_to(arr, (C,)).copy() if arr.ndim == 0 else arr
    if arr.shape != (C,):
        raise vd.InvalidArgumentError(f"{name} must be a number or have one value per chain, shape ({C},); "
                                      f"got shape {arr.shape}")
    if np.any(arr < 0) or (not allow_zero and np.any(arr == 0)):
        raise vd.InvalidArgumentError(
            f"{name} must be {'non-negative' if allow_zero else 'positive'}; got values "
            f"such as {arr[(arr < 0) | ((arr == 0) & (not allow_zero))][:3]}")
    return arr


def _check_batch(theta0, X, y, theta_name: str = "θ0"):
    theta0, X, y = vd.array(theta_name, theta0), vd.array("X", X), vd.array("y", y)
    if theta0.ndim != 3 or X.ndim != 3 or y.ndim != 2:
        raise vd.InvalidArgumentError(
            f"expected {theta_name} of shape (chains, m, d), X (chains, n, d), y (chains, n); got "
            f"{theta_name} {theta0.shape}, X {X.shape}, y {y.shape}. Stack one row per chain (use [None] for "
            "one chain).")
    C, m, d = theta0.shape
    if X.shape[0] != C or y.shape[0] != C or X.shape[2] != d or y.shape[1] != X.shape[1]:
        raise vd.InvalidArgumentError(
            f"shapes do not match: {theta_name} {theta0.shape} (chains, m, d), X {X.shape} (chains, n, d), "
            f"y {y.shape} (chains, n) need the same chains, the same d and the same n")
    if 0 in theta0.shape or 0 in y.shape:
        raise vd.InvalidArgumentError(
            f"need at least one chain, neuron, input and data point; got {theta_name} "
            f"{theta0.shape}, X {X.shape}")
    return theta0, X, y


# ----------------------------------------------------------------------------------------------------------------
# the driver


#: below this many chains the scalar kernel is faster (lanes of the SIMD kernel stay empty; measured in
#: ``benchmarks/label_noise_kernel.py``)
LANES_MIN_CHAINS = 2
#: the chain count is padded to a multiple of this (4 doubles per AVX2 register) in the lane kernel
LANE_PAD = 4
#: the most stack the d = 3 lane kernel may take for its arrays (a thread's stack is 8 MiB on Linux, 512 KiB
#: for a secondary thread on macOS); beyond it the general lane kernel runs (over 450 chains at m = 10)
STACK_BYTES_MAX = 256 * 1024


def stack_bytes(m: int, P: int) -> int:
    """The stack :func:`_run_chunk_lanes3` takes for m neurons and P (padded) chains: 6 arrays of m·P doubles and
    12 of P."""
    return 8 * (6 * m * P + 12 * P)


def _use_lanes(C: int) -> bool:
    """Whether :func:`run` steps with the lane kernel: enough chains."""
    return C >= LANES_MIN_CHAINS


class _Lanes:
    """θ in the lane kernel's layout (d, m·P): (d, m, P) flattened, P = C padded with zero chains to a multiple of
    LANE_PAD.
    :meth:`step` advances it one chunk; a chunk where some argument of exp is ≥ 512 in magnitude or NaN (the run
    is diverging, and the scalar kernel takes libm's exp there) is redone from its start by the scalar kernel, so
    every chunk's result is the scalar kernel's, bit for bit."""

    def __init__(self, theta, X, y, act: str):
        self.C, self.m, self.d = theta.shape
        self.P = -(-self.C // LANE_PAD) * LANE_PAD
        self.th = np.zeros((self.d, self.m * self.P))
        self.set_theta(theta)
        self.X, self.y = X, y
        self.XL = np.ascontiguousarray(X.transpose(1, 2, 0))
        self.yL = np.ascontiguousarray(y.T)

    def set_theta(self, theta) -> None:
        self.th.reshape(self.d, self.m, self.P)[:, :, :self.C] = theta.transpose(2, 1, 0)

    def theta(self) -> np.ndarray:
        return np.ascontiguousarray(self.th.reshape(self.d, self.m, self.P)[:, :, :self.C].transpose(2, 1, 0))

    def lane_kernel(self):
        """The lane kernel for this layout: :func:`_run_chunk_lanes3` for d = 3 while its arrays fit
        :data:`STACK_BYTES_MAX` on the stack, else :func:`_run_chunk_lanes`."""
        if self.d == 3 and stack_bytes(self.m, self.P) <= STACK_BYTES_MAX:
            return _run_chunk_lanes3
        return _run_chunk_lanes

    def kernel(self, eta, s, rho, u, eps, method: int, act: int) -> float:
        """One chunk of the lane kernel alone (no fallback); its flag."""
        return self.lane_kernel()(self.th, self.m, self.XL, self.yL, eta, s, rho, u, eps, method, act)

    def step(self, eta, s, rho, u, eps, method: int, act: int) -> None:
        start = self.th.copy()
        if self.kernel(eta, s, rho, u, eps, method, act):
            self.th = start
            theta = self.theta()
            _run_chunk_scalar(theta, self.X, self.y, eta, s, rho, u, eps, method, act)
            self.set_theta(theta)


@dataclass
class Run:
    """What :func:`run` returns. Arrays are indexed (record, chain, ...); ``steps[r]`` is the step of record r."""

    steps: np.ndarray  # (R,)
    theta: np.ndarray  # (R, C, m, d) snapshots
    eig: np.ndarray  # (R, C, n) eigenvalues of ΦΦᵀ, descending
    F: np.ndarray  # (R, C) F(θ) = Σ_i ‖x_i‖² Σ_j φ'(θ_jᵀx_i)²
    loss: np.ndarray  # (R, C) noise-free L(θ) = (1/n) Σ_i ½ (f_θ(x_i) − y_i)²
    wall_s: float  # time spent in the kernel and noise generation
    settings: dict
    diverged: np.ndarray | None = None  # (C,) bool: chains stopped as non-finite (``on_diverge="nan"``)

    def chain(self, c: int) -> "Run":
        """Chain c alone, as a one-chain :class:`Run` (arrays keep their chain axis, of length 1)."""
        C = self.theta.shape[1]
        c = vd.integer("c", c, 0, C - 1)
        one = slice(c, c + 1)
        return Run(self.steps, self.theta[:, one], self.eig[:, one], self.F[:, one], self.loss[:, one],
                   self.wall_s / C, {**self.settings, "chains": 1},
                   None if self.diverged is None else self.diverged[one])


def summarize(theta: np.ndarray | torch.Tensor, X, y, act: str = "sinh"):
    """Eigenvalues of ΦΦᵀ (descending), F and the noise-free loss for a batch of snapshots θ (..., C, m, d)."""
    a = get_activation(act)
    th = vd.array("θ", theta, finite=False)  # NaN snapshots: failed projections
    Xn, yn = vd.array("X", X), vd.array("y", y)
    if th.ndim < 3 or Xn.ndim != 3 or yn.shape != Xn.shape[:2] or th.shape[-3] != Xn.shape[0] \
            or th.shape[-1] != Xn.shape[2]:
        raise vd.InvalidArgumentError(
            f"expected θ (..., chains, m, d), X (chains, n, d) and y (chains, n) with the "
            f"same chains, n and d; got θ {th.shape}, X {Xn.shape}, y {yn.shape}")
    th = torch.as_tensor(th, dtype=torch.float64)
    Xt = torch.tensor(Xn, dtype=torch.float64)
    yt = torch.tensor(yn, dtype=torch.float64)
    Z = Xt @ th.transpose(-1, -2)  # (..., C, n, m), z_ij = θ_jᵀx_i
    Phi = a.phi(Z)
    G = Phi @ Phi.transpose(-1, -2)
    ok = torch.isfinite(G).all(-1).all(-1)  # NaN snapshots (failed projections) stay NaN
    eig = torch.full(G.shape[:-1], float("nan"), dtype=torch.float64)
    eig[ok] = torch.linalg.eigvalsh(G[ok]).flip(-1)
    F = ((Xt**2).sum(-1) * (a.d1(Z) ** 2).sum(-1)).sum(-1)
    loss = 0.5 * ((Phi.sum(-1) - yt) ** 2).mean(-1)
    return eig.numpy(), F.numpy(), loss.numpy()


def run(theta0, X, y, *, eta, s, steps: int, record_every: int, seed=0, method: str = "sgd", rho=0.0,
        act: str = "sinh", progress: bool | None = None, on_diverge: str = "raise") -> Run:
    """Run label-noise SGD (``method="sgd"``) or 1-SAM (``"sam"``) on every chain for ``steps`` steps.

    θ0 (C, m, d), X (C, n, d), y (C, n) as arrays or tensors; eta, s, rho numbers or one value per chain.
    Records θ every ``record_every`` steps (and at step 0); ``steps`` must be a multiple of it. ``seed``: an int,
    or one int per chain (chain c then draws what a one-chain run with ``seed[c]`` draws: see
    :class:`ChainNoise`). ``on_diverge``: ``"raise"`` a FloatingPointError when some chain's θ is not finite at a
    record, or ``"nan"``: that chain's snapshots are NaN from that record on, ``Run.diverged`` marks it, and the
    other chains go on unchanged (chains are independent: each gets exactly the result of its own run).
    """
    theta0, X, y = _check_batch(theta0, X, y)
    C, m, d = theta0.shape
    n = X.shape[1]
    vd.choice("method", method, tuple(METHODS))
    if not isinstance(act, str) or act not in KERNEL_ACTIVATIONS:
        raise vd.InvalidArgumentError(
            f"the compiled kernel knows the activations {list(KERNEL_ACTIVATIONS)}, "
            f"not {act!r}")
    steps, record_every = vd.integer("steps", steps, 0), vd.integer("record_every", record_every, 1)
    if steps % record_every:
        raise vd.InvalidArgumentError(f"steps = {steps} must be a multiple of record_every = {record_every}")
    eta_a = _as_chain_param("step size eta", eta, C, allow_zero=False)
    s_a = _as_chain_param("label-noise level s", s, C, allow_zero=True)
    rho_a = _as_chain_param("SAM radius rho", rho, C, allow_zero=True)
    if method == "sam" and np.any(rho_a == 0):
        raise vd.InvalidArgumentError("1-SAM needs a positive radius rho for every chain")
    vd.choice("on_diverge", on_diverge, ("raise", "nan"))

    noise = ChainNoise(seed, C)
    gone = np.zeros(C, dtype=bool)
    R = steps // record_every
    snaps = np.empty((R + 1, C, m, d))
    theta = theta0.copy()
    snaps[0] = theta
    chunk = record_every
    sub = max(1, min(chunk, 1 << 16))  # draw the noise in blocks of at most 65 536 steps per chain
    stepper = _Lanes(theta, X, y, act) if _use_lanes(C) else None
    code, acode = METHODS[method], KERNEL_ACTIVATIONS[act]
    t0 = time.perf_counter()
    for r in tqdm(range(R), disable=progress is False if progress is not None else None, leave=False,
                  desc=f"{method} x{C} chains"):
        done = 0
        while done < chunk:
            K = min(sub, chunk - done)
            u, eps = noise.draw(K, normals=s_a != 0)
            if stepper is None:
                _run_chunk_scalar(theta, X, y, eta_a, s_a, rho_a, u, eps, code, acode)
            else:
                stepper.step(eta_a, s_a, rho_a, u, eps, code, acode)
            done += K
        if stepper is not None:
            theta = stepper.theta()
        bad = ~np.isfinite(theta).all(axis=(1, 2))
        if bad.any() and on_diverge == "raise":
            raise FloatingPointError(f"the iterates diverged (NaN/inf) before step {(r + 1) * record_every}: "
                                     "use a smaller step size eta or label noise s")
        if (bad & ~gone).any():  # park the diverged chains: θ = 0 and η = 0 keep them finite and still
            gone |= bad
            theta[gone] = 0.0
            eta_a = np.where(gone, 0.0, eta_a)
            if stepper is not None:
                stepper.set_theta(theta)
        snaps[r + 1] = theta
        snaps[r + 1, gone] = np.nan
    wall = time.perf_counter() - t0
    eig, F, loss = summarize(snaps, X, y, act)
    settings = {"method": method, "act": act, "chains": C, "m": m, "d": d, "n": n, "steps": steps,
                "record_every": record_every,
                "seed": int(seed) if isinstance(seed, (int, np.integer)) else [int(v) for v in seed]}
    return Run(np.arange(R + 1) * record_every, snaps, eig, F, loss, wall, settings, gone)


# ----------------------------------------------------------------------------------------------------------------
# the naive reference: a PyTorch autograd loop, one chain, one step at a time


def reference_run(theta0, X, y, *, eta: float, s: float, idx, eps, method: str = "sgd", rho: float = 0.0,
                  act: str = "sinh") -> torch.Tensor:
    """Plain PyTorch: per step, build ℓ_i, call backward, update. θ0 (m,d), X (n,d), y (n), idx/eps (T,).
    Returns the trajectory (T+1, m, d). Used by the tests and as the benchmark's baseline."""
    a = get_activation(act)
    vd.choice("method", method, tuple(METHODS))
    eta, s, rho = vd.positive("eta", eta), vd.nonnegative("s", s), vd.nonnegative("rho", rho)
    th0, X, y = (v[0] for v in _check_batch(*(np.asarray(v)[None] for v in (theta0, X, y))))
    n = X.shape[0]
    eps = vd.array("eps", eps, 1, "(T,)")
    idx = np.asarray(idx)
    ok = np.issubdtype(idx.dtype, np.integer) and bool(((idx >= 0) & (idx < n)).all())
    if idx.shape != eps.shape or not ok:
        raise vd.InvalidArgumentError(
            f"idx must be integers in [0, n = {n}) of the shape of eps {eps.shape}; got "
            f"{idx.dtype} of shape {idx.shape}")
    theta = torch.as_tensor(th0, dtype=torch.float64).clone().requires_grad_(True)
    X = torch.tensor(X, dtype=torch.float64)
    y = torch.tensor(y, dtype=torch.float64)
    out = [theta.detach().clone()]

    def loss_i(th, i, noise):
        return 0.5 * (a.phi(X[i] @ th.T).sum() - y[i] - s * noise) ** 2

    for i, e in zip(idx.tolist(), eps.tolist()):
        if method == "sam":
            (g,) = torch.autograd.grad(loss_i(theta, i, e), theta)
            w = (theta + rho * g / (g.norm() + 1e-12)).detach().requires_grad_(True)
            (g,) = torch.autograd.grad(loss_i(w, i, e), w)
        else:
            (g,) = torch.autograd.grad(loss_i(theta, i, e), theta)
        with torch.no_grad():
            theta -= eta * g
        out.append(theta.detach().clone())
    return torch.stack(out)


# ----------------------------------------------------------------------------------------------------------------
# a batched Newton retraction onto M (projects the final iterates; removes the O(η s²) jitter, SPEC §A.12)


def retract_batch(theta, X, y, act: str = "sinh", tol: float = 1e-12, max_iter: int = 50,
                  strict: bool = True) -> np.ndarray:
    """Bring every θ^(b) (B, m, d) onto its M^(b) = {f(x_i) = y_i} by damped min-norm Newton steps θ ← θ − Jᵀ(JJᵀ)⁻¹c.

    X (B, n, d), y (B, n). If some θ^(b) is not within ``tol`` after ``max_iter`` steps, or JJᵀ is singular
    there: raise :class:`~flatbias.manifold.RetractionError` (``strict``) or return NaN for it."""
    a = get_activation(act)
    th, Xn, yn = _check_batch(theta, X, y, "θ")
    tol, max_iter = vd.positive("tol", tol), vd.integer("max_iter", max_iter, 0)
    th = torch.from_numpy(th).clone()
    Xt = torch.tensor(Xn, dtype=torch.float64)
    yt = torch.tensor(yn, dtype=torch.float64)
    def residual(t):
        return a.phi(Xt @ t.transpose(-1, -2)).sum(-1) - yt

    c = residual(th)
    dead = None  # chains whose JJᵀ was singular or not finite (strict=False); None while there are none
    for _ in range(max_iter):
        if dead is None:
            if float(c.abs().max()) <= tol:
                return th.numpy()
        elif bool(((c.abs().amax(-1) <= tol) | dead).all()):
            break
        D = a.d1(Xt @ th.transpose(-1, -2))  # J row i, block j = φ'(z_ij) x_i  ⇒  JJᵀ_ik = (x_iᵀx_k) Σ_j φ'_ij φ'_kj
        G = (Xt @ Xt.transpose(-1, -2)) * (D @ D.transpose(-1, -2))
        lam, info = torch.linalg.solve_ex(G, c.unsqueeze(-1))  # a singular G raises nothing: its chain fails
        lam = lam.squeeze(-1)  # (B, n)
        if bool(info.any()):  # (a NaN λ without a zero pivot fails below, as a NaN residual)
            singular = info != 0
            if strict:
                bad = singular.nonzero().flatten()[:5].tolist()
                raise RetractionError(
                    f"retract_batch: JJᵀ is singular or not finite for chains {bad}: J has rank < n there "
                    "(n > d, dependent x_i, or φ' = 0); pass strict=False to get NaN for those chains")
            dead = singular if dead is None else dead | singular
        if dead is not None:
            lam = torch.where(dead[:, None], 0.0, lam)
        step = torch.einsum("bi,bij,bik->bjk", lam, D, Xt)
        norm0 = c.norm(dim=-1)
        t = torch.ones(th.shape[0], dtype=torch.float64)
        for _ in range(40):  # damping: halve the step of the chains whose ‖c‖ would not decrease
            cand = th - t[:, None, None] * step
            c_new = residual(cand)
            bad = ~(torch.isfinite(c_new).all(-1) & (c_new.norm(dim=-1) < norm0)) & (norm0 > tol)
            if dead is not None:
                bad &= ~dead
            if not bool(bad.any()):
                break
            t = torch.where(bad, t / 2, t)
        th, c = cand, c_new
    failed = ~(c.abs().amax(-1) <= tol)  # NaN residuals count as failed
    if dead is not None:
        failed |= dead
    if not bool(failed.any()):
        return th.numpy()
    if not strict:
        th[failed] = float("nan")
        return th.numpy()
    raise RetractionError(f"retract_batch: max |f(x_i) - y_i| = {float(c.abs().max()):.3g} > tol after "
                          f"{max_iter} Newton steps; the iterates are too far from M (smaller step or noise)")


def _check_independent_rows(X: np.ndarray, rtol: float = 1e-10) -> None:
    """X (chains, n, d): every chain's rows linearly independent (numerical rank n, relative to σ_max)."""
    s = np.linalg.svd(X, compute_uv=False)  # (chains, min(n, d)), descending
    n = X.shape[1]
    rank = (s > rtol * s[:, :1]).sum(1) if s.shape[1] else np.zeros(X.shape[0], dtype=int)
    bad = np.flatnonzero(rank < n)
    if bad.size:
        c = int(bad[0])
        raise RankDeficientError(
            f"X must have linearly independent rows in every chain (n ≤ d and XXᵀ nonsingular, paper 1's "
            f"Assumption 3.2); chain {c} has rank X = {int(rank[c])} < n = {n} (d = {X.shape[2]}; {bad.size} of "
            f"{X.shape[0]} chains): repeated or dependent data points leave the zero-loss manifold M empty or "
            "singular, so there is no optimum")


def closed_form_optimum(theta0, X, y, act: str = "sinh") -> np.ndarray:
    """θ_j* = P_⊥θ_j(0) + Xᵀ(XXᵀ)⁻¹φ⁻¹(y/m) (SPEC §A.5), batched over chains: the point label-noise SGD should reach.

    Every chain's X must have linearly independent rows (n ≤ d, XXᵀ nonsingular, paper 1's Assumption 3.2):
    repeated or dependent rows leave M empty or singular, a :class:`manifold.RankDeficientError` naming the chain."""
    a = get_activation(act)
    th, Xn, yn = _check_batch(theta0, X, y)
    _check_independent_rows(Xn)
    th = torch.from_numpy(th)
    Xt = torch.tensor(Xn, dtype=torch.float64)
    yt = torch.tensor(yn, dtype=torch.float64)
    m = th.shape[-2]
    pinv = torch.linalg.pinv(Xt)  # (B, d, n)
    proj_perp = torch.eye(Xt.shape[-1], dtype=torch.float64) - pinv @ Xt
    target = pinv @ a.inv(yt / m).unsqueeze(-1)  # (B, d, 1)
    return (th @ proj_perp.transpose(-1, -2) + target.transpose(-1, -2)).numpy()


# ----------------------------------------------------------------------------------------------------------------
# experiments the chapters run (full scale: ``python -m flatbias.label_noise figure1 --out results/...``)


def draw_problems(draws: int, raw_draws: int, m: int = 10, d: int = 3, n: int = 3, seed: int = 0,
                  lam_min: float = 1e-2) -> dict:
    """Paper 1's data (every entry U[0,1]), labels y ~ U[0,1] and θ_j(0) ~ N(0, I/d) (ours).

    Returns ``raw_draws`` draws taken as they come, then ``draws`` draws with λ_min(XXᵀ) ≥ ``lam_min`` (our
    conditioning, SPEC §A.8 [P]: near-singular draws converge very slowly), and how many draws were rejected."""
    draws, raw_draws = vd.integer("draws", draws, 0), vd.integer("raw_draws", raw_draws, 0)
    m, d, n = vd.integer("m", m, 1), vd.integer("d", d, 1), vd.integer("n", n, 1)
    seed, lam_min = vd.integer("seed", seed, 0), vd.nonnegative("lam_min", lam_min)
    if draws + raw_draws == 0:
        raise vd.InvalidArgumentError("draws + raw_draws must be ≥ 1; got 0 draws")
    if n > d and lam_min > 0 and draws > 0:
        raise vd.InvalidArgumentError(
            f"n = {n} > d = {d}: XXᵀ is singular, so no draw has λ_min(XXᵀ) ≥ lam_min = "
            f"{lam_min:g}; pass lam_min=0")
    rng = np.random.default_rng(seed)
    Xs, ys, kept_raw, rejected = [], [], 0, 0
    while len(Xs) < raw_draws + draws:
        X, y = rng.random((n, d)), rng.random(n)
        if kept_raw < raw_draws:
            kept_raw += 1
        elif lam_min > 0 and np.linalg.eigvalsh(X @ X.T)[0] < lam_min:  # (n > d: XXᵀ is singular; pass 0)
            rejected += 1
            continue
        Xs.append(X)
        ys.append(y)
    X, y = np.array(Xs), np.array(ys)
    theta0 = rng.normal(size=(len(Xs), m, d)) / np.sqrt(d)
    lam = np.linalg.eigvalsh(X @ X.transpose(0, 2, 1))[:, 0]
    return {"X": X, "y": y, "theta0": theta0, "lam_min_K": lam, "conditioned": np.arange(len(Xs)) >= raw_draws,
            "rejected": rejected}


def collapse(theta0, X, y, *, s_values, steps: int, record_every: int, eta=0.05, method="sgd", rho=0.0, seed=0,
             act="sinh", progress=None) -> dict:
    """Run every (noise level, problem) pair as one chain; project every snapshot onto M; return what the figures use.

    Output arrays are indexed (noise level, problem, record, ...)."""
    s_values = vd.array("s_values", s_values, 1, "(one noise level per entry)")
    if s_values.size == 0:
        raise vd.InvalidArgumentError("s_values must hold at least one noise level; got an empty list")
    theta0, X, y = _check_batch(theta0, X, y)
    S, P = len(s_values), len(X)
    rep = lambda a: np.concatenate([a] * S)  # noqa: E731
    s = np.repeat(np.asarray(s_values, dtype=np.float64), P)
    out = run(rep(theta0), rep(X), rep(y), eta=eta, s=s, steps=steps, record_every=record_every, seed=seed,
              method=method, rho=rho, act=act, progress=progress)
    R1, C = out.theta.shape[:2]
    XX = np.broadcast_to(rep(X), (R1, *rep(X).shape)).reshape(R1 * C, *X.shape[1:])
    yy = np.broadcast_to(rep(y), (R1, *rep(y).shape)).reshape(R1 * C, -1)
    proj = retract_batch(out.theta.reshape(R1 * C, *theta0.shape[1:]), XX, yy, act, strict=False)
    proj = proj.reshape(out.theta.shape)  # NaN where Newton's method did not reach M (far from M, n > d)
    eig_M, F_M, _ = summarize(proj, rep(X), rep(y), act)
    F_star = summarize(closed_form_optimum(theta0, X, y, act)[None], X, y, act)[1][0]
    shape = lambda a: np.moveaxis(a, 0, 1).reshape(S, P, R1, *a.shape[2:])  # noqa: E731
    eig_M = shape(eig_M)
    ratio = eig_M[..., 1:] / eig_M[..., :1]  # (S, P, R, n-1): eig_k/eig_1 on M
    return {"steps": out.steps, "eig": shape(out.eig), "eig_M": eig_M, "F_M": shape(F_M), "loss": shape(out.loss),
            "F_star": F_star, "ratio_drop": ratio[:, :, -1] / ratio[:, :, 0], "theta_M": shape(proj),
            "wall_s": out.wall_s}


def _lists(d: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}


def figure1_record(path, steps: int = 40_000_000, record_every: int = 400_000, draws: int = 8, raw_draws: int = 4,
                   seed: int = 0, progress=None):
    """Paper 1's Figure 1 at its settings (m=10, d=n=3, η=0.05), both readings of "noise variance 0.03"."""
    from .records import write_record

    s_values = [math.sqrt(0.03), 0.03]
    prob = draw_problems(draws, raw_draws, seed=seed)
    res = collapse(prob["theta0"], prob["X"], prob["y"], s_values=s_values, steps=steps, record_every=record_every,
                   seed=seed, progress=progress)
    settings = {"m": 10, "d": 3, "n": 3, "eta": 0.05, "s_values": s_values, "s_meaning": ["variance 0.03", "std 0.03"],
                "act": "sinh", "labels": "U[0,1]", "init": "N(0, I/d)", "steps": steps, "record_every": record_every,
                "seed": seed, "lam_min_threshold": 1e-2, "raw_draws": raw_draws, "draws": draws,
                "X": prob["X"].tolist(), "y": prob["y"].tolist(), "theta0": prob["theta0"].tolist()}
    metrics = _lists({k: v for k, v in res.items() if k not in ("theta_M", "wall_s")})
    metrics.update(lam_min_K=prob["lam_min_K"].tolist(), conditioned=prob["conditioned"].tolist(),
                   rejected=prob["rejected"], theta_final_M=res["theta_M"][:, :, -1].tolist())
    wall = res["wall_s"] + extend_until_converged(settings, metrics, progress=progress)
    return write_record(path, "figure1_label_noise_sgd", "full", settings, metrics, wall_time_s=wall)


def extend_until_converged(settings: dict, metrics: dict, target: float = 1e-3, block: int = 20_000_000,
                           max_steps: int = 200_000_000, progress=None) -> float:
    """Run until convergence: continue the well-conditioned chains of the variance reading (s² = 0.03) whose
    eig2/eig1 or eig3/eig1 on M has not fallen by ``target`` yet, in blocks of ``block`` steps from their projected
    final iterate (a point of M) with a fresh noise stream, up to ``max_steps`` in total. Adds
    ``metrics["extension"]`` (one entry per continued draw) and ``metrics["ratio_drop_final"]``; returns the time."""
    target, max_steps = vd.probability("target", target, lo_open=True), vd.integer("max_steps", max_steps, 0)
    block = vd.integer("block", block, 20)
    if block % 20:
        raise vd.InvalidArgumentError(f"block must be a multiple of 20 (20 records per block); got {block}")
    X, y = np.array(settings["X"]), np.array(settings["y"])
    drop = np.array(metrics["ratio_drop"])[0]  # (draw, k)
    cond = np.array(metrics["conditioned"])
    eig0 = np.array(metrics["eig_M"])[0][:, 0]  # (draw, n) eigenvalues on M at step 0
    ratio0 = eig0[:, 1:] / eig0[:, :1]
    theta = np.array(metrics["theta_final_M"])[0]
    total, wall, ext = settings["steps"], 0.0, []
    todo = [p for p in range(len(drop)) if cond[p] and drop[p].max() > target]
    for p in todo:
        th, steps_p, eig_p, F_p, done = theta[p:p + 1], [], [], [], settings["steps"]
        while done < max_steps:
            res = collapse(th, X[p:p + 1], y[p:p + 1], s_values=[settings["s_values"][0]], steps=block,
                           record_every=block // 20, eta=settings["eta"], seed=settings["seed"] + 1 + done // block,
                           progress=progress)
            wall += res["wall_s"]
            steps_p += (done + res["steps"][1:]).tolist()
            eig_p += res["eig_M"][0, 0, 1:].tolist()
            F_p += res["F_M"][0, 0, 1:].tolist()
            th = res["theta_M"][0, :, -1]
            done += block
            last = np.array(eig_p[-1])
            if (last[1:] / last[0] / ratio0[p]).max() <= target:
                break
        last = np.array(eig_p[-1])
        ext.append({"draw": p, "reading": 0, "steps": steps_p, "eig_M": eig_p, "F_M": F_p,
                    "ratio_drop": (last[1:] / last[0] / ratio0[p]).tolist()})
        total = max(total, done)
    final = np.array(metrics["ratio_drop"])
    for e in ext:
        final[e["reading"], e["draw"]] = e["ratio_drop"]
    metrics.update(extension=ext, ratio_drop_final=final.tolist(), steps_final=total,
                   extension_rule=f"continue from the projected iterate with a fresh noise stream, blocks of {block:.0e} "
                                  f"steps, until eig2,3/eig1 fall by {target:g} or {max_steps:.0e} steps")
    return wall


def extend_record(path, progress=None):
    """Apply :func:`extend_until_converged` to an existing Figure-1 record (same result as rerunning it whole)."""
    from .records import read_record, write_record

    rec = read_record(path)
    wall = rec["provenance"]["wall_time_s"] + extend_until_converged(rec["settings"], rec["metrics"], progress=progress)
    return write_record(path, rec["name"], rec["scale"], rec["settings"], rec["metrics"], wall_time_s=wall)


def sam_record(path, steps: int = 40_000_000, record_every: int = 400_000, s2: float = 0.03, eta: float = 0.05,
               seed: int = 0, progress=None):
    """1-SAM on the 8 well-conditioned draws of :func:`figure1_record`, with the radius whose small-η drift matches
    label-noise SGD at s² = ``s2`` (ρ² = η s²/2, our derivation)."""
    s2, eta = vd.positive("s2", s2), vd.positive("eta", eta)
    from .records import write_record

    prob = draw_problems(8, 4, seed=seed)
    keep = prob["conditioned"]
    rhos = [math.sqrt(eta * s2 / 2)]
    X, y, th0 = prob["X"][keep], prob["y"][keep], prob["theta0"][keep]
    C = len(X)
    out = {}
    wall = 0.0
    for q, rho in enumerate(rhos):
        res = collapse(th0, X, y, s_values=[0.0], steps=steps, record_every=record_every, eta=eta, method="sam",
                       rho=rho, seed=seed, progress=progress)
        wall += res["wall_s"]
        for k in ("eig_M", "F_M", "ratio_drop", "eig"):
            out.setdefault(k, []).append(res[k][0])
        out["F_star"] = res["F_star"]
        out["steps"] = res["steps"]
    settings = {"m": 10, "d": 3, "n": 3, "eta": eta, "rho_values": rhos, "s": 0.0, "act": "sinh", "steps": steps,
                "record_every": record_every, "seed": seed, "draws": C, "problems": "figure1_record, conditioned draws"}
    metrics = _lists({k: np.asarray(v) for k, v in out.items()})
    metrics["lam_min_K"] = prob["lam_min_K"][keep].tolist()
    return write_record(path, "one_sam_collapse", "full", settings, metrics, wall_time_s=wall)


def main(argv=None) -> None:
    """``python -m flatbias.label_noise {figure1,sam,extend} --out PATH [--steps N]``; a bad argument or a
    missing record is one line on stderr and exit status 2."""
    prog = "python -m flatbias.label_noise"
    p = vd.CliParser(prog=prog, description="full-scale runs of the label-noise chapters")
    p.add_argument("experiment", choices=["figure1", "sam", "extend"])
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=40_000_000, help="a positive multiple of 100 (100 records)")
    a = p.parse_args(argv)
    if a.steps <= 0 or a.steps % 100:
        p.error(f"argument --steps: must be a positive multiple of 100 (100 records are kept); got {a.steps}")
    with vd.cli_errors(prog):
        if a.experiment == "figure1":
            print(figure1_record(a.out, steps=a.steps, record_every=a.steps // 100))
        elif a.experiment == "extend":
            print(extend_record(a.out))
        elif a.experiment == "sam":
            print(sam_record(a.out, steps=a.steps, record_every=a.steps // 100))


# ----------------------------------------------------------------------------------------------------------------
# checks the chapters make (chapters 06 and 07): the kernel against autograd, SGD against the limiting flow


def kernel_reference_gap(theta0, X, y, *, eta, s, steps: int = 300, seed: int = 0, method: str = "sgd", rho=0.0,
                         act: str = "sinh") -> float:
    """max |θ_kernel − θ_reference| after ``steps`` steps, over every chain: the compiled kernel (:func:`run`)
    against :func:`reference_run` (a plain autograd loop) fed the same sample indices and noise.

    A chapter's guard: any error in the kernel's update (a factor, a sign, a dropped term) shows here."""
    theta0, X, y = _check_batch(theta0, X, y)
    C, n = theta0.shape[0], X.shape[1]
    out = run(theta0, X, y, eta=eta, s=s, steps=steps, record_every=steps, seed=seed, method=method, rho=rho,
              act=act, progress=False)
    eta_a, s_a, rho_a = (np.broadcast_to(np.asarray(v, dtype=np.float64), (C,)) for v in (eta, s, rho))
    idx, eps = draw_noise(seed, C, n, steps)
    gap = 0.0
    for c in range(C):
        ref = reference_run(theta0[c], X[c], y[c], eta=float(eta_a[c]), s=float(s_a[c]), idx=idx[c], eps=eps[c],
                            method=method, rho=float(rho_a[c]), act=act)
        gap = max(gap, float(np.abs(out.theta[-1, c] - ref[-1].numpy()).max()))
    return gap


def fitted_time_constant(k, F, t_flow, F_flow, F_star: float, floor: float = 0.02) -> float:
    """The time constant ĉ that maps SGD steps k onto the flow's time: SGD's F_k (on M) is placed at the flow time
    where the (decreasing) flow has the same F, and ĉ is the least-squares slope through 0 of those times against k.

    Uses the records with k > 0 whose F lies inside the flow's range and above F* + ``floor``·(F_flow(0) − F*)
    (close to F* the inversion amplifies noise). NaN when no record qualifies."""
    k, F = np.asarray(k, dtype=np.float64), np.asarray(F, dtype=np.float64)
    t_flow, F_flow = np.asarray(t_flow, dtype=np.float64), np.asarray(F_flow, dtype=np.float64)
    if np.any(np.diff(F_flow) > 0):
        raise ValueError("F_flow must be non-increasing (a gradient flow of F)")
    use = (k > 0) & (F - F_star > floor * (F_flow[0] - F_star)) & (F < F_flow[0]) & (F > F_flow[-1])
    if not use.any():
        return float("nan")
    t_hat = np.interp(-F[use], -F_flow, t_flow)  # invert the decreasing F_flow
    return float((t_hat * k[use]).sum() / (k[use] ** 2).sum())


def gap_to_flow(k, F, c: float, t_flow, F_flow, F_star: float) -> float:
    """max_k |F_k − F_flow(c k)| / (F_flow(0) − F*) over the records with c k inside the flow's time range."""
    k, F = np.asarray(k, dtype=np.float64), np.asarray(F, dtype=np.float64)
    t = c * k
    use = t <= np.asarray(t_flow)[-1]
    ref = np.interp(t[use], t_flow, F_flow)
    return float(np.max(np.abs(F[use] - ref)) / (F_flow[0] - F_star))


def slope_ci(x, Y, level: float = 0.95) -> dict:
    """Least-squares slope of log Y against log x for every row of Y (rows: independent data draws), then the
    mean slope over rows, its standard error and a ``level`` Student-t interval (NaN with fewer than two rows or
    a non-positive Y)."""
    from scipy import stats

    x = np.log(np.asarray(x, dtype=np.float64))
    Y = np.atleast_2d(np.asarray(Y, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        logY = np.where(Y > 0, np.log(np.where(Y > 0, Y, 1.0)), np.nan)
    xc = x - x.mean()
    slopes = ((logY - logY.mean(1, keepdims=True)) * xc).sum(1) / (xc**2).sum()
    R = len(slopes)
    mean = float(slopes.mean())
    se = float(slopes.std(ddof=1) / np.sqrt(R)) if R > 1 else float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, R - 1)) * se if R > 1 else float("nan")
    return {"slopes": slopes.tolist(), "mean": mean, "se": se, "lo": mean - half, "hi": mean + half}


def sharpness_flow(theta0, X, y, *, t_max: float, n_eval: int = 6001, act: str = "sinh", rtol: float = 1e-10,
                   atol: float = 1e-12) -> dict:
    """The Riemannian gradient flow dθ/dτ = −grad_M F(θ) of the sharpness on M, from θ0 (retracted onto M first;
    θ0 (m, d), X (n, d), y (n)), integrated by scipy's DOP853 (8th order, adaptive) to τ = ``t_max``, read at
    ``n_eval`` equally spaced times. grad_M F is :mod:`flatbias.riemannian`'s closed form.

    The state also carries E(τ) = ∫₀^τ ‖grad_M F‖² dt, so the energy identity F(τ) − F(0) = −E(τ) of an exact
    gradient flow can be checked against F computed independently (``twolayer``). Returns a dict: ``t``, ``F``
    (on the grid), ``energy`` (E on the grid), ``residual`` (max |f(x_i) − y_i| along the grid), ``theta`` (final),
    ``nfev``. Much cheaper than :func:`riemannian.descent` with a small fixed step (SPEC §A.6)."""
    from scipy.integrate import solve_ivp

    from . import manifold, riemannian, twolayer

    a = get_activation(act)
    th0, Xn, yn = (v[0] for v in _check_batch(np.asarray(theta0)[None], np.asarray(X)[None], np.asarray(y)[None]))
    t_max, n_eval = vd.positive("t_max", t_max), vd.integer("n_eval", n_eval, 2)
    rtol, atol = vd.positive("rtol", rtol), vd.positive("atol", atol)
    Xt, yt = torch.tensor(Xn, dtype=torch.float64), torch.tensor(yn, dtype=torch.float64)
    theta = manifold._retract(torch.tensor(th0, dtype=torch.float64), Xt, yt, a)
    shape, size = tuple(theta.shape), theta.numel()

    def rhs(_t, v):
        th = torch.from_numpy(v[:size].reshape(shape))
        g, _ = riemannian._grad(riemannian._parts(th, Xt, a, None), Xt)
        g = g.numpy().ravel()
        return np.concatenate([-g, [g @ g]])

    t = np.linspace(0.0, t_max, n_eval)
    sol = solve_ivp(rhs, (0.0, t_max), np.concatenate([theta.numpy().ravel(), [0.0]]), method="DOP853",
                    t_eval=t, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"sharpness_flow: the integrator failed ({sol.message})")
    ths = torch.from_numpy(np.ascontiguousarray(sol.y[:size].T.reshape(n_eval, *shape)))
    Z = ths @ Xt.T  # (T, m, n): z_ij = θ_jᵀx_i, transposed
    F = ((Xt**2).sum(1) * (a.d1(Z) ** 2).sum(1)).sum(-1).numpy()
    residual = float((a.phi(Z).sum(1) - yt).abs().max())
    F_ends = [float(twolayer._sharpness(ths[i], Xt, a, None)) for i in (0, -1)]
    return {"t": t, "F": F, "energy": sol.y[size], "residual": residual, "F_ends": F_ends,
            "theta": ths[-1].numpy(), "nfev": int(sol.nfev)}


if __name__ == "__main__":  # pragma: no cover
    main()
