"""flatbias: the package behind the book *Sharpness minimization and simplicity bias*.

One idea per module.

Infrastructure
- :mod:`flatbias.scale`          which scale (smoke / full) a run uses
- :mod:`flatbias.repro`          seeds, deterministic CPU settings, device choice
- :mod:`flatbias.records`        atomic JSON result records with provenance
- :mod:`flatbias.verdict`        the verdict of each chapter, glued into the claims table
- :mod:`flatbias.style`          the figure style shared by all chapters
- :mod:`flatbias.sphinxext`      the book's Sphinx extension (result-records table)
- :mod:`flatbias.validate`       argument checks at the public boundary: bad input is an ``InvalidArgumentError``
- :mod:`flatbias.claims`         protocol, claims, checks with criteria, and the one status rule
- :mod:`flatbias.chapter_record` paper-scale chapter records with code fingerprints; ``make records``

Paper 1: sharpness on the zero-loss manifold of two-layer nets
- :mod:`flatbias.activations`    φ with φ', φ'', φ''' and φ⁻¹
- :mod:`flatbias.twolayer`       f_θ(x) = Σ_j a_j φ(θ_jᵀx), its Jacobian and trace of Hessian
- :mod:`flatbias.manifold`       the zero-loss manifold M: constraints, tangent projection, retraction
- :mod:`flatbias.riemannian`     Riemannian gradient and Hessian of F on M, Riemannian descent (Lemma 4.5)
- :mod:`flatbias.optimum`        the closed-form global minimizer of Theorem 3.3
- :mod:`flatbias.label_noise`    fast batched label-noise SGD / 1-SAM kernel (numba)
- :mod:`flatbias.landscape`      probes of the landscape of F on M: negative curvature, late rate (04–05)
- :mod:`flatbias.clusters`       how tightly neurons gather into groups: exact k-means score (chapter 09)

Paper 2: linear stability, coherence, SAM vs SGD
- :mod:`flatbias.coherence`      coherence matrix S and coherence σ of per-sample Hessians
- :mod:`flatbias.families`       random clustered per-sample Hessian families and integer draws (10–13)
- :mod:`flatbias.stability`      exact mean-square operator 𝒯 of linearized SGD / perturbed SGD / SAM, radii
- :mod:`flatbias.simulate`       batched Monte Carlo of the linearized dynamics
- :mod:`flatbias.relu_net`       two-layer ReLU net, parity data, generalizing and memorizing minima
- :mod:`flatbias.relu_hessian`   closed-form per-sample Hessian coherence of the ReLU net
- :mod:`flatbias.train_relu`     the synthetic SGD / SAM training and perturbation experiments
- :mod:`flatbias.cifar`          CIFAR-10 reader (official and image-folder layouts), cache, safe download
- :mod:`flatbias.resnet`         ResNet-18 (ImageNet and CIFAR stems) without torchvision
- :mod:`flatbias.sam`            SAM optimizer (Foret et al.)
- :mod:`flatbias.cifar_train`    the CIFAR-10 / ResNet-18 protocol and its CLI
- :mod:`flatbias.feature_rank`   feature rank at a share of explained variance
- :mod:`flatbias.grad_coherence` gradient-coherence proxy λ_max(G) / maxᵢ‖gᵢ‖²
- :mod:`flatbias.precision`      number formats (fp32, TF32, bf16) and what they do to SAM's ascent
- :mod:`flatbias.cifar_results`  reading the CIFAR-10 records back: tables and curves
- :mod:`flatbias.cifar_sweep`    every optimizer × seed as resumable submitit jobs (local or SLURM)
- :mod:`flatbias.fused_train`    the runs of a seed trained in lockstep as one program (vmap over stacked weights)
- :mod:`flatbias.gpu_session`    one command for a GPU lent for minutes: benchmark, plan, run, small records

Beyond the papers (our extensions)
- :mod:`flatbias.momentum`       the exact second-moment operator of heavy-ball SGD / SAM, thresholds
- :mod:`flatbias.linearization`  batched nonlinear runs from a perturbed minimum vs the linear prediction
"""

__version__ = "0.1.0"
