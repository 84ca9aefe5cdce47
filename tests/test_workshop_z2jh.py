"""Zero to JupyterHub files (workshop/z2jh/, workshop/Dockerfile): they parse and name what they must.

Nothing here runs Kubernetes or Docker (neither is on the course's machines); the same settings as
the one-machine hub are checked: the image built from environment.yml, the course copied into the
home, the models on a shared read-only volume, offline, one thread, the measured memory guarantee
under the same limit as the hub's, the culler on.
"""

import re
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
    assert "/opt/course/notebooks" in " ".join(user["lifecycleHooks"]["postStart"]["exec"]["command"])


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


def test_image_is_built_from_environment_yml_with_the_charts_jupyterhub():
    dockerfile = (ROOT / "workshop" / "Dockerfile").read_text()
    assert "--file environment.yml" in dockerfile
    chart_hub = re.search(r"JupyterHub (\d+\.\d+\.\d+)", (Z2JH / "values.yaml").read_text()).group(1)
    assert f"ARG JUPYTERHUB_VERSION={chart_hub}" in dockerfile
    assert "COURSE_MODELS_DIR=/srv/course-models" in dockerfile
    ignored = (ROOT / "workshop" / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", "models", "workshop/node_modules"} <= set(ignored)
