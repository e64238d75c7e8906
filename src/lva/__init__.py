"""lva: rebuild Milano & Nolfi (2026), *Alignment among Language, Vision and Action Representations*.

:mod:`lva.pipeline` names the stages in order, each a function of the config that loads its
artifact or builds it. Below it, the modules that compute: :mod:`lva.config` (profiles, paths),
:mod:`lva.instructions`, :mod:`lva.planner`, :mod:`lva.env`, :mod:`lva.expert`, :mod:`lva.demos`
(chapter 1); :mod:`lva.agent`, :mod:`lva.vision`, :mod:`lva.train`, :mod:`lva.evaluate` (chapters
2-3); :mod:`lva.grounding` (chapter 4); :mod:`lva.models`, :mod:`lva.embeddings` (the vector
cache), :mod:`lva.loaded` (models held in memory), :mod:`lva.catalogue` (which representations,
their families), :mod:`lva.representations` (all of them, in order) (chapter 5);
:mod:`lva.alignment`, :mod:`lva.robustness`, :mod:`lva.report`, :mod:`lva.triangle` (chapter 6);
and the helpers :mod:`lva.names` (the names of representations, families and pairs),
:mod:`lva.geometry` (anisotropy, PCA), :mod:`lva.io` (atomic writes), :mod:`lva.workers` (jobs in
worker processes), :mod:`lva.viz` (figures) and :mod:`lva.book` (the notebook runner).
"""

import os

# OpenMP reads its wait policy once, when torch loads it; every lva module that uses torch is
# imported through this package, so this runs first: idle torch threads sleep instead of spinning
# on shared cores. (A process that imported torch before lva keeps torch's own default; the book
# runner's notebooks inherit this setting from the runner's environment.)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
