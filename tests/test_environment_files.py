"""The install files agree: pyproject.toml's lower bounds, requirements.txt's pins, environment.yml,
Colab's versions (tools/colab/versions.txt) and the Python minimum of every set-up path."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from helpers import python_version

ROOT = Path(__file__).resolve().parent.parent


def pins(text: str, prefix: str = "") -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        m = re.match(rf"^{prefix}([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if m:
            found[m.group(1).lower()] = m.group(2)
    return found


def test_environment_yml_has_the_same_pins_as_requirements():
    req = pins((ROOT / "requirements.txt").read_text())
    env = pins((ROOT / "environment.yml").read_text(), prefix=r"\s*-\s*")
    assert req, "no pins found in requirements.txt"
    assert env == req


def test_every_requirement_is_pinned_and_explained():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert "==" in line, f"not pinned exactly: {line}"
            assert "#" in line, f"no comment saying why: {line}"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirements(extras: bool = True) -> list[Requirement]:
    """pyproject.toml's dependencies (and, with ``extras``, those of every extra)."""
    p = project()
    reqs = list(p["dependencies"])
    if extras:
        reqs += [r for extra in p["optional-dependencies"].values() for r in extra]
    return [Requirement(r) for r in reqs]


def test_every_dependency_has_a_lower_bound_and_a_pin_that_satisfies_it():
    pinned = {canonical(k): v for k, v in pins((ROOT / "requirements.txt").read_text()).items()}
    for req in requirements():
        name = canonical(req.name)
        assert any(s.operator == ">=" for s in req.specifier), f"{req}: no lower bound in pyproject.toml"
        assert name in pinned, f"{req.name} is a dependency in pyproject.toml but not pinned in requirements.txt"
        assert req.specifier.contains(pinned[name]), (
            f"requirements.txt pins {req.name}=={pinned[name]}, outside pyproject.toml's {req}")


def test_every_pin_is_something_pyproject_names():
    named = {canonical(r.name) for r in requirements()}
    orphans = [k for k in pins((ROOT / "requirements.txt").read_text()) if canonical(k) not in named]
    assert not orphans, f"pinned in requirements.txt, named nowhere in pyproject.toml: {orphans}"


def test_colabs_versions_satisfy_the_lower_bounds():
    """The bounds are Colab's versions (make test-colab runs the lessons on them): none may exclude Colab."""
    colab = {canonical(k): v for k, v in pins((ROOT / "tools" / "colab" / "versions.txt").read_text()).items()}
    checked = 0
    for req in requirements(extras=False):
        have = colab.get(canonical(req.name))
        if have is not None:
            checked += 1
            assert req.specifier.contains(Version(have).base_version), (
                f"Colab has {req.name} {have}, which pyproject.toml's {req} excludes")
    assert checked >= 10, "tools/colab/versions.txt names too few of the course's dependencies"


def test_learner_install_leaves_out_the_authors_tools():
    learner = {canonical(r.name) for r in requirements(extras=False)}
    assert not learner & {"pytest", "nbval", "pytest-xdist", "hypothesis", "playwright", "jupyterhub"}
    assert {"jupyterlab"} <= {canonical(r.name) for r in map(Requirement, project()["optional-dependencies"]["lab"])}


def test_python_minimum_is_the_same_everywhere():
    assert project()["requires-python"] == ">=%d.%d" % python_version.COURSE
    env_python = re.search(r"-\s*python=(\d+)\.(\d+)", (ROOT / "environment.yml").read_text())
    assert (int(env_python.group(1)), int(env_python.group(2))) >= python_version.PINS
    assert "helpers/python_version.py --pins" in (ROOT / "Makefile").read_text()


def test_environment_yml_uses_python_311_and_installs_the_course():
    text = (ROOT / "environment.yml").read_text()
    assert "python=3.11" in text and "- -e ." in text
