"""The saved notebooks, beyond what nbval compares: thin sources and outputs that name no local folder."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

#: An absolute path of a user's machine, or a source file with its line (the head of a warning or a traceback).
LOCAL_PATH = re.compile(r"(?:/work/|/home/|/root/|/tmp/|/Users/|/private/var/|[A-Za-z]:\\\\)\S*|\S+\.py:\d+")


def _outputs(cell: dict) -> list[str]:
    texts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            texts.append("".join(out["text"]))
        texts += ["".join(v) for k, v in out.get("data", {}).items() if k.startswith("text/")]
    return texts


def test_the_notebooks_are_found():
    assert len(NOTEBOOKS) >= 9


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_saved_output_names_a_local_path(path):
    cells = json.loads(path.read_text())["cells"]
    found = [(i, m.group(0)) for i, cell in enumerate(cells) for text in _outputs(cell)
             for m in LOCAL_PATH.finditer(text)]
    assert not found, (f"{path.name}: saved outputs name local paths {found[:3]}; print paths relative to the run "
                       "folder and let asdkit.notebook_setup() format warnings, then save the notebook again")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_patches_sys_path(path):
    cells = json.loads(path.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert not [c for c in code if "sys.path" in c], f"{path.name} patches sys.path; import the installed asdkit"
