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
- :mod:`flatbias.trace_check`    the trace of the Hessian against its closed form, on M and off it (01)
- :mod:`flatbias.cube_saddles`   where Riemannian descent on F stalls for φ(z) = z³ (02)
- :mod:`flatbias.hessian_fd`     the Riemannian gradient and Hessian against differences of F along the retraction (03)
- :mod:`flatbias.label_noise`    fast batched label-noise SGD / 1-SAM kernel (numba)
- :mod:`flatbias.landscape`      probes of the landscape of F on M: negative curvature, late rate (04–05)
- :mod:`flatbias.flow_convergence` one run of the Riemannian flow, summarized for a convergence test (05)
- :mod:`flatbias.drift_horizon`  how far a horizon of label-noise SGD or 1-SAM steps carries the flow (06, 08)
- :mod:`flatbias.crossing`       the first step at which a decaying quantity falls to a level (08)
- :mod:`flatbias.clusters`       how tightly neurons gather into groups: exact k-means score (chapter 09)

Paper 2: linear stability, coherence, SAM vs SGD
- :mod:`flatbias.coherence`      coherence matrix S and coherence σ of per-sample Hessians
- :mod:`flatbias.families`       random clustered per-sample Hessian families and integer draws (10–13)
- :mod:`flatbias.stability`      exact mean-square operator 𝒯 of linearized SGD / perturbed SGD / SAM, radii
- :mod:`flatbias.simulate`       batched Monte Carlo of the linearized dynamics
- :mod:`flatbias.relu_net`       two-layer ReLU net, parity data, generalizing and memorizing minima
- :mod:`flatbias.relu_hessian`   closed-form per-sample Hessian coherence of the ReLU net
- :mod:`flatbias.train_relu`     the synthetic SGD / SAM training and perturbation experiments
- :mod:`flatbias.divergence_conditions` sufficient divergence conditions against the exact threshold (11)
- :mod:`flatbias.heatmap_panels` one panel of a (batch size, coherence) stability heat-map (11, 13)
- :mod:`flatbias.escape_agreement` the heat-map kernel against an independent simulator (11, 13)
- :mod:`flatbias.almost_sure`    the almost-sure growth rate on the authors' Figure-1 construction (11)
- :mod:`flatbias.gen_mem_minima` the six equally flat minima of the parity task and their thresholds (14)
- :mod:`flatbias.relu_feature_ranks` effective ranks of the ReLU features at several variance shares (15)
- :mod:`flatbias.run_endpoints`  SAM against SGD at the last epoch, paired by seed (15, 16)
- :mod:`flatbias.cifar`          CIFAR-10 reader (official and image-folder layouts), cache, safe download
- :mod:`flatbias.resnet`         ResNet-18 (ImageNet and CIFAR stems) without torchvision
- :mod:`flatbias.sam`            SAM optimizer (Foret et al.)
- :mod:`flatbias.cifar_train`    the CIFAR-10 / ResNet-18 protocol and its CLI
- :mod:`flatbias.feature_rank`   feature rank at a share of explained variance
- :mod:`flatbias.grad_coherence` gradient-coherence proxy λ_max(G) / maxᵢ‖gᵢ‖²
- :mod:`flatbias.precision`      number formats (fp32, TF32, bf16) and what they do to SAM's ascent
- :mod:`flatbias.cifar_results`  reading the CIFAR-10 records back: tables and curves
- :mod:`flatbias.sam_sgd_gaps`   chapter 17's claim values from the training records: SGD against SAM
- :mod:`flatbias.resnet_crosscheck` independent recomputations of the CIFAR-10 measurements (17's guards)
- :mod:`flatbias.cifar_sweep`    every optimizer × seed as resumable submitit jobs (local or SLURM)
- :mod:`flatbias.fused_train`    the runs of a seed trained in lockstep as one program (vmap over stacked weights)
- :mod:`flatbias.gpu_session`    one command for a GPU lent for minutes: benchmark, plan, run, small records

Beyond the papers (our extensions)
- :mod:`flatbias.momentum`       the exact second-moment operator of heavy-ball SGD / SAM, thresholds
- :mod:`flatbias.momentum_guards` the heavy-ball operator against independent computations (18's guards)
- :mod:`flatbias.threshold_order` whether two lists of thresholds order their items alike, ties declared (18)
- :mod:`flatbias.linearization`  batched nonlinear runs from a perturbed minimum vs the linear prediction
- :mod:`flatbias.linearization_report` chapter 19's table and the numbers its prose quotes, from the record
"""

__version__ = "0.1.0"
