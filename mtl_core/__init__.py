"""Task Affinity Lab core: multi-task training, inter-task affinity, grouping, run store.

Importing this package pulls in neither torch nor streamlit; only the modules that train
(``models``, ``affinity``, ``training``, ``optim_sim``) import torch.
"""

from mtl_core.errors import LabError

__all__ = ["LabError"]
__version__ = "0.1.0"
