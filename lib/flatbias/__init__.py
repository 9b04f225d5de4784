"""flatbias: the package behind the book *Sharpness minimization and simplicity bias*.

One idea per module:

- :mod:`flatbias.scale`        which scale (smoke / full) a run uses
- :mod:`flatbias.repro`        seeds, deterministic CPU settings, device choice
- :mod:`flatbias.records`      atomic JSON result records with provenance
- :mod:`flatbias.activations`  the activations of paper 1 with phi', phi'', phi''' and phi^-1
- :mod:`flatbias.twolayer`     the two-layer network of paper 1, its Jacobian and trace of Hessian
- :mod:`flatbias.manifold`     the zero-loss manifold M: constraints, tangent projection, retraction
- :mod:`flatbias.style`        the figure style shared by all chapters
"""

__version__ = "0.1.0"
