"""environment.yml and pyproject.toml must name the same packages with the same lower bounds."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch", "pysoundfile": "soundfile"}
REQ = re.compile(r"^([A-Za-z0-9_.\-]+)\s*(.*)$")


def _split(req: str) -> tuple[str, str]:
    name, spec = REQ.match(req.strip()).groups()
    return name.lower(), spec.replace(" ", "")


def _pyproject() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + meta["optional-dependencies"]["test"]
    return dict(_split(r) for r in reqs)


def _environment() -> dict[str, str]:
    out = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text[text.index("dependencies:"):].splitlines():
        m = re.match(r"^  - ([A-Za-z][^:#]*)$", line)  # top-level conda entries only
        if m:
            name, spec = _split(m.group(1))
            out[CONDA_TO_PIP.get(name, name)] = spec
    return out


def test_environment_agrees_with_pyproject():
    env = _environment()
    assert env.pop("python") == ">=3.10"
    assert env.pop("pip") == ""
    assert env == _pyproject()


def test_environment_installs_the_ray_extra():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (ray,) = meta["optional-dependencies"]["ray"]
    text = (ROOT / "environment.yml").read_text()
    assert re.search(rf"^      - {re.escape(ray)}(\s|$)", text, re.M), ray


def test_environment_uses_conda_forge_and_installs_asdkit():
    text = (ROOT / "environment.yml").read_text()
    assert "conda-forge" in text and "-e ." in text


@pytest.mark.parametrize("name", ["torch", "librosa", "numpy", "scikit-learn", "imbalanced-learn", "matplotlib",
                                  "ipywidgets", "jupyterlab", "umap-learn"])
def test_design_card_packages_are_declared(name):
    assert name in _pyproject()


def test_python_requirement():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["requires-python"] == ">=3.10"


def test_import_is_light_and_the_public_names_resolve():
    # names are imported on first use (PEP 562): the package and its command line load no torch or pandas
    import subprocess
    import sys

    code = ("import sys, asdkit, asdkit.cli; heavy = [m for m in ('torch', 'pandas', 'sklearn', 'matplotlib') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
    import asdkit

    assert 15 <= len(asdkit.__all__) <= 25
    for name in asdkit.__all__:
        assert getattr(asdkit, name) is not None and name in dir(asdkit)
    assert asdkit.log_mel is asdkit.features.log_mel                     # names offered before __all__ still work
    with pytest.raises(AttributeError, match="no attribute"):
        asdkit.__getattr__("no_such_name")
    assert sorted(asdkit.__all__) == sorted(["__version__", *asdkit._PUBLIC])
