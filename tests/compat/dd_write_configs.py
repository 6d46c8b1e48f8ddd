"""Regenerate the Data Designer-written configs in `configs/` (not run by the suite).

Each public tutorial/recipe script of the reference defines its config in Python; this runs
the script's config part with Data Designer's own package and writes the result with
`DataDesignerConfigBuilder.write_config`, so the files are exactly what a Data Designer user
has. Needs `pip install data-designer-config==0.9.7` in a throwaway environment (not a rowloom
dependency) and the recipe sources (the reference repository's `docs/notebook_source/` and
`docs/assets/recipes/*/`):

    python tests/compat/dd_write_configs.py SOURCES_DIR OUT_DIR [stem ...]

Imports a recipe needs only to run (the DataDesigner runner, MCP servers, PDF/image
libraries) are stubbed; `build_config` is called with the recipe's own defaults (model alias
`nvidia-text` where one is required). Recipes reading a seed file need it in the working
folder (e.g. `gretelai_symptom_to_diagnosis.csv` for tutorial 3).

Tutorial 7 (Nemotron Personas) exists only as a notebook (`docs/colab_notebooks/
7-nemotron-personas.ipynb`): its code cells that build the config (imports, helpers, model
configs, every `config_builder` cell, and `personas_locale = "en_US"` from its download-check
cell) were joined into `7-nemotron-personas.py` and run through this script.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import urllib.request
from pathlib import Path
from typing import Any
from unittest import mock

RUN_ONLY = (
    "data_designer.interface",
    "data_designer.engine",
    "data_designer.engine.resources",
    "data_designer.engine.resources.seed_reader",
    "data_designer.config.preview_results",
    "mcp",
    "mcp.server",
    "mcp.server.fastmcp",
    "fitz",
    "bm25s",
    "datasets",
    "PIL",
    "PIL.Image",
    "PIL.ImageDraw",
    "PIL.ImageFilter",
    "PIL.ImageFont",
    "IPython",
    "IPython.display",
)


RECIPE_ARGUMENTS: dict[str, dict[str, str]] = {
    "02-nemotron-parse-ocr-sdg": {"seed_path": "seed_per_page.parquet"},
    "03-text-qa-sdg": {"seed_path": "nemotron_parse_ocr.parquet"},
    "04-page-classification-sdg": {"seed_path": "seed_per_page.parquet"},
    "05-visual-qa-sdg": {"seed_path": "page_classification.parquet"},
    "06-single-page-qa-sdg": {"seed_path": "seed_per_page.parquet"},
    "07-multi-page-windowed-qa-sdg": {"seed_path": "seed_windowed.parquet"},
    "08-whole-document-qa-sdg": {"seed_path": "seed_whole_document.parquet"},
    "09-frontier-judge-sdg": {"seed_path": "single_page_qa.parquet", "model_id": "gpt-5"},
}
"""What a user passes on the long-document VLM recipes' command lines (`--seed-path`: recipe
01's seeds, or the output of the recipe before; 09 `--model-id`); `vlm_seeds.py` writes small
seeds of these names (run it in OUT_DIR first: DD checks that a seed file exists)."""


def _arguments(dd: Any, module: Any) -> dict[str, Any]:
    required: dict[str, Any] = dict(RECIPE_ARGUMENTS.get(module.__name__[len("dd_recipe_") :], {}))
    for p in inspect.signature(module.build_config).parameters.values():
        if p.name in required:
            continue
        if p.name == "sampling_strategy" and p.default is inspect.Parameter.empty:
            required[p.name] = dd.SamplingStrategy.ORDERED
        elif p.default is not inspect.Parameter.empty:
            continue
        elif "alias" in p.name:
            required[p.name] = "nvidia-text"
        elif p.name == "provider_name":
            required[p.name] = module.MCP_SERVER_NAME
        elif p.name == "trace_dir":
            required[p.name] = Path("traces")
        elif p.name == "rollout_format":
            required[p.name] = dd.AgentRolloutFormat.CLAUDE_CODE
        else:
            required[p.name] = None
    return required


def write(source: Path, out: Path) -> str:
    """Write the config of one recipe script; return what happened."""
    import data_designer.config as dd

    spec = importlib.util.spec_from_file_location("dd_recipe_" + source.stem, source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # notebooks build `config_builder` at top level
    builder = getattr(module, "config_builder", None)
    if builder is None and hasattr(module, "build_config"):
        builder = module.build_config(**_arguments(dd, module))
        builder = builder[0] if isinstance(builder, tuple) else builder
    if not isinstance(builder, dd.DataDesignerConfigBuilder):
        return "no config builder"
    builder.write_config(out / f"{source.stem}.yaml")
    return "written"


def main(argv: list[str]) -> None:
    sources, out = Path(argv[0]), Path(argv[1])
    for name in RUN_ONLY:
        sys.modules.setdefault(name, mock.MagicMock(name=name))
    # tutorial 3 downloads its seed CSV: use the copy in the working folder
    urllib.request.urlretrieve = lambda url, filename=None, *a, **k: (filename, None)  # type: ignore[assignment]
    stems = argv[2:] or sorted(p.stem for p in sources.glob("*.py"))
    for stem in stems:
        try:
            print(stem, write(sources / f"{stem}.py", out))
        except Exception as exc:  # a recipe that needs data we do not have: say so, go on
            print(stem, f"failed: {type(exc).__name__}: {str(exc)[:200]}")


if __name__ == "__main__":
    main(sys.argv[1:])
