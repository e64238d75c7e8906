"""environment.yml must install what pyproject.toml declares, for the same Python."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    assert python == "python=3.11"
    assert project["requires-python"] == ">=3.11,<3.12"
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    editable = next(line for line in pip_section if line.startswith("-e"))
    extras = set(re.search(r"\[(.*)\]", editable).group(1).split(","))
    assert extras == set(project["optional-dependencies"]), "environment.yml should install every extra"
    # the torch pin (installed first, for the CPU wheel) is the one pyproject declares
    torch_pin = next(line for line in pip_section if line.startswith("torch"))
    assert torch_pin in project["dependencies"]


def test_every_dependency_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    loose = [d for d in deps if "==" not in d]
    assert not loose, f"unpinned dependencies: {loose}"


def test_makefile_installs_the_same_torch_pin():
    """The Makefile installs torch first (the CPU wheel): the very pin pyproject.toml declares."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_pin = next(d for d in project["dependencies"] if d.startswith("torch=="))
    installs = re.findall(r"pip install\b.*?\b(torch==\S+)", (ROOT / "Makefile").read_text())
    assert installs == [torch_pin], f"the Makefile installs {installs}, pyproject.toml pins {torch_pin}"
