"""Reading other engines' configs into rowloom's: NVIDIA NeMo Data Designer's.

`is_data_designer_config` recognises a Data Designer config by its shape; `from_data_designer`
maps it onto a native config mapping (every field mapped, or named in a typed error).
Data Designer's names appear only in this package.
"""

from rowloom.compat.dataset import from_data_designer, is_data_designer_config
from rowloom.compat.models import map_model_config, map_provider

__all__ = [
    "from_data_designer",
    "is_data_designer_config",
    "map_model_config",
    "map_provider",
]
