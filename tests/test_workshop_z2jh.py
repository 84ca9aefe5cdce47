"""Zero to JupyterHub files (workshop/z2jh/, workshop/Dockerfile): they parse and name what they must.

Nothing here runs Kubernetes or Docker (neither is on the course's machines); the same settings as
the one-machine hub are checked: the image with the course's pins but the chart's jupyterhub, the
course merged into the home at each start (the hook's command is run here on a temporary home), the
models on a shared read-only volume, offline, one thread, the measured memory guarantee under the same
limit as the hub's, the culler on, and graded mode (an image without solutions, COURSE_SOLUTIONS=held).
"""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from helpers.models import repo_root

ROOT = repo_root()
Z2JH = ROOT / "workshop" / "z2jh"


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"([\d.]+)([KMGT]?)i?", str(size)).groups()
    return int(float(number) * 1024 ** " KMGT".index(unit or " "))


def _values() -> dict:
    return yaml.safe_load((Z2JH / "values.yaml").read_text())


def test_learners_get_the_course_image_offline_with_one_thread():
    user = _values()["singleuser"]
    assert user["image"]["name"] and user["image"]["tag"]
    assert user["defaultUrl"] == "/lab/tree/course/notebooks"
    env = user["extraEnv"]
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["OMP_NUM_THREADS"] == "1" and user["cpu"]["limit"] == 1
    assert "/opt/course/workshop/update.py merge /opt/course" in " ".join(user["lifecycleHooks"]["postStart"]["exec"]["command"])


def test_the_start_hook_merges_the_course_into_the_home(tmp_path):
    """The postStart command, run here with this checkout for /opt/course: a first start copies the
    course; an edit survives the next start."""
    command = _values()["singleuser"]["lifecycleHooks"]["postStart"]["exec"]["command"]
    command = [c.replace("/opt/conda/bin/python", sys.executable).replace("/opt/course", str(ROOT)) for c in command]
    run = lambda: subprocess.run(command, env={**os.environ, "HOME": str(tmp_path)}, capture_output=True, text=True)  # noqa: E731
    assert run().returncode == 0
    lesson = tmp_path / "course" / "notebooks" / "01_loading.ipynb"
    assert lesson.read_bytes() == (ROOT / "notebooks" / "01_loading.ipynb").read_bytes()
    assert not (tmp_path / "course" / "solutions").exists()
    lesson.write_text(lesson.read_text().replace('"cells": [', '"cells": [{"cell_type": "markdown", "metadata": {}, "source": "mine"},', 1))
    edited = lesson.read_text()
    assert run().returncode == 0 and lesson.read_text() == edited


def test_models_come_from_a_shared_read_only_volume():
    user = _values()["singleuser"]
    mount = {m["name"]: m for m in user["storage"]["extraVolumeMounts"]}["course-models"]
    volume = {v["name"]: v for v in user["storage"]["extraVolumes"]}["course-models"]
    assert mount["readOnly"] is True and volume["persistentVolumeClaim"]["readOnly"] is True
    assert user["extraEnv"]["COURSE_MODELS_DIR"] == mount["mountPath"]

    claim, job = yaml.safe_load_all((Z2JH / "models.yaml").read_text())
    assert claim["kind"] == "PersistentVolumeClaim" and claim["metadata"]["name"] == volume["persistentVolumeClaim"]["claimName"]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-2:] == ["helpers", "prepare"]
    assert {e["name"]: e["value"] for e in container["env"]}["COURSE_MODELS_DIR"] == mount["mountPath"]
    assert container["image"] == f"{user['image']['name']}:{user['image']['tag']}"


def test_memory_guarantee_fits_under_the_same_limit_as_the_hub():
    memory = _values()["singleuser"]["memory"]
    hub_default = re.search(r'COURSE_HUB_MEM_LIMIT", "(\w+)"', (ROOT / "workshop" / "jupyterhub_config.py").read_text())
    assert memory["limit"] == hub_default.group(1)
    assert 0 < _bytes(memory["guarantee"]) < _bytes(memory["limit"])


def test_culler_and_shared_password_login():
    values = _values()
    assert values["cull"]["enabled"] is True and values["cull"]["timeout"] > 0
    hub = values["hub"]["config"]
    assert hub["JupyterHub"]["authenticator_class"] == "shared-password"
    assert "instructor" in hub["Authenticator"]["admin_users"]
    assert "SharedPasswordAuthenticator" not in hub  # passwords come with --set, never in the file


def test_image_has_the_courses_pins_but_the_charts_jupyterhub():
    dockerfile = (ROOT / "workshop" / "Dockerfile").read_text()
    chart_hub = re.search(r"JupyterHub (\d+\.\d+\.\d+)", (Z2JH / "values.yaml").read_text()).group(1)
    assert f"ARG JUPYTERHUB_VERSION={chart_hub}" in dockerfile and '"jupyterhub==${JUPYTERHUB_VERSION}"' in dockerfile
    python = re.search(r"- python=([\d.]+)", (ROOT / "environment.yml").read_text()).group(1)
    assert f"python={python} " in dockerfile  # the same Python as environment.yml
    # the course without its hub extras, under the pins less the hub's (requirements.txt pins jupyterhub 6.1.1)
    assert "grep -v -E '^jupyterhub(-idle-culler)?==' requirements.txt" in dockerfile and '-e ".[lab]"' in dockerfile
    pins = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
            if not re.match(r"^jupyterhub(-idle-culler)?==", line)]
    assert not any("jupyterhub" in line.split("#")[0] for line in pins)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    without_hub = project["dependencies"] + project.get("optional-dependencies", {}).get("lab", [])
    assert not any(d.lower().startswith("jupyterhub") for d in without_hub)  # so neither the image nor TLJH gets 6.1.1
    assert "COURSE_MODELS_DIR=/srv/course-models" in dockerfile and "PATH=/opt/conda/bin:$PATH" in dockerfile
    ignored = (ROOT / "workshop" / "Dockerfile.dockerignore").read_text().split()
    assert {".git", ".venv", "models", "workshop/node_modules"} <= set(ignored)


def test_graded_run_has_an_image_without_solutions_and_holds_them_back():
    graded = yaml.safe_load((Z2JH / "graded.yaml").read_text())["singleuser"]
    assert graded["extraEnv"] == {"COURSE_SOLUTIONS": "held"}
    assert graded["image"]["tag"] == _values()["singleuser"]["image"]["tag"] + "-graded"
    dockerfile = (ROOT / "workshop" / "Dockerfile").read_text()
    drop = re.search(r'RUN if \[ "\$COURSE_SOLUTIONS" = held \]; then rm -rf (.*); fi', dockerfile)
    assert drop and {"/opt/course/solutions", "/opt/course/tests"} <= set(drop.group(1).split())
    assert "COPY --from=course /opt/course /opt/course" in dockerfile  # no layer of the image has them
    assert "COURSE_SOLUTIONS=${COURSE_SOLUTIONS}" in dockerfile
    assert "--build-arg COURSE_SOLUTIONS=held" in (Z2JH / "graded.yaml").read_text()


def test_tljh_route_installs_the_course_without_a_jupyterhub():
    readme = (ROOT / "workshop" / "README.md").read_text()
    tljh = readme[readme.index("### The Littlest JupyterHub"):]
    tljh = tljh[:tljh.index("\n## ")]
    assert "/opt/tljh/user/bin/pip install" in tljh and "-r requirements.txt" not in tljh
    assert "grep -v -E '^jupyterhub(-idle-culler)?=='" in tljh
