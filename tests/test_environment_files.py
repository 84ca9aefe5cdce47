"""requirements.txt and environment.yml must name the same exact pins."""

import re
from pathlib import Path

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


def test_torch_is_pinned_to_the_cpu_buildable_release():
    assert pins((ROOT / "requirements.txt").read_text())["torch"] == "2.13.0"


def test_environment_yml_uses_python_311_and_installs_the_course():
    text = (ROOT / "environment.yml").read_text()
    assert "python=3.11" in text and "- -e ." in text
