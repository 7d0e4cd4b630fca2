"""Task Affinity Lab core: multi-task training, inter-task affinity, grouping, run store.

Importing this package pulls in neither torch nor streamlit; only ``mtl_core.train`` (models,
affinity, the training loops, the logger) imports torch, as ``lint-imports`` checks.
"""

from mtl_core.errors import LabError

__all__ = ["LabError"]
__version__ = "0.1.0"
