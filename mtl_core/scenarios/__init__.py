"""Named scenarios: JSON definitions shipped in ``definitions/`` plus the builders that turn them
into deterministic, standardized train/validation/test arrays (numpy only, no torch).

``registry`` loads the definitions and resolves knobs; ``dataset`` holds ``Dataset`` and the
shared split; ``synthetic``, ``digits`` and ``table`` (the ``csv`` scenario) build the data.
"""

from mtl_core.scenarios.dataset import SPLIT_FRACTIONS, Dataset
from mtl_core.scenarios.registry import (
    Scenario,
    get_scenario,
    list_scenarios,
    load_dataset,
    model_section,
    resolve_knobs,
)

__all__ = [
    "SPLIT_FRACTIONS",
    "Dataset",
    "Scenario",
    "model_section",
    "get_scenario",
    "list_scenarios",
    "load_dataset",
    "resolve_knobs",
]
