"""lva: rebuild Milano & Nolfi (2026), *Alignment among Language, Vision and Action Representations*.

:mod:`lva.pipeline` names the stages in order, each a function of the config that loads its
artifact or builds it. Below it, the modules that compute: :mod:`lva.config` (profiles, paths),
:mod:`lva.instructions`, :mod:`lva.planner`, :mod:`lva.env`, :mod:`lva.expert`, :mod:`lva.demos` (chapter 1); :mod:`lva.agent`,
:mod:`lva.vision`, :mod:`lva.train`, :mod:`lva.evaluate` (chapters 2-3); :mod:`lva.models`,
:mod:`lva.embeddings` (chapter 4); :mod:`lva.alignment` (chapter 5); and the helpers
:mod:`lva.io` (atomic writes), :mod:`lva.viz` (figures) and :mod:`lva.book` (the notebook runner).
"""

__version__ = "0.1.0"
