"""JupyterHub for a workshop on one machine. ``make hub`` (as root) starts it; workshop/README.md.

Every setting below can be changed from the environment (``make hub NAME=value``):

=========================  ==========================  ===================================================
variable                   default                     meaning
=========================  ==========================  ===================================================
COURSE_HUB_IP              127.0.0.1                   address the hub serves on (put TLS in front for more)
COURSE_HUB_PORT            8000                        its port; the hub's API uses PORT+1, the proxy's +2
COURSE_HUB_STATE           <course>/build/hub          database, cookie secret, generated passwords
COURSE_HUB_HOMES           /home                       where learners' homes are created
COURSE_MODELS_DIR          <course>/models             the pre-built, read-only course models
COURSE_HUB_MEM_LIMIT       3G                          memory per learner (server + kernels), in a cgroup where possible
COURSE_HUB_CPU_WEIGHT      100                         each learner's CPU share (cgroup cpu.weight; v1 cpu.shares)
COURSE_HUB_CONTENT         <course>                    the course learners' ~/course is merged from at each start
COURSE_HUB_GRADED          (off)                       1: a graded course run: solutions closed, q.solution() held back
COURSE_HUB_THREADS         1 per 8 cores, 1 to 4       torch/OpenMP threads per kernel
COURSE_HUB_CULL_IDLE       3600                        seconds idle before the culler stops a server
COURSE_HUB_PASSWORD        generated, STATE/password   the learners' shared password (8+ characters)
COURSE_HUB_ADMIN_PASSWORD  generated                   the instructor's password (32+ characters)
COURSE_HUB_EXTRA_CONFIG    (none)                      a config file loaded last: a real authenticator, ...
=========================  ==========================  ===================================================
"""

import os
import secrets
import sys
from pathlib import Path

COURSE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(COURSE))
from workshop.graded import hold  # noqa: E402
from workshop.spawner import WorkshopSpawner, memory_limit_mechanism, threads_per_learner  # noqa: E402

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)


def setting(name, default):
    return os.environ.get(name) or default


def password(name, file, length):
    """The password from the environment, else one generated once and kept (0600) in STATE/file."""
    if os.environ.get(name):
        return os.environ[name]
    path = STATE / file
    if not path.exists():
        path.write_text(secrets.token_urlsafe(length) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def reachable_by_learners(path) -> bool:
    """Whether a user other than root can get to ``path``: it and every folder above it open to others."""
    real = Path(os.path.realpath(path))
    return all(p.stat().st_mode & 0o001 for p in [real, *real.parents])


STATE = Path(setting("COURSE_HUB_STATE", COURSE / "build" / "hub"))
STATE.mkdir(parents=True, exist_ok=True, mode=0o700)
PORT = int(setting("COURSE_HUB_PORT", 8000))
BIN = Path(sys.executable).parent  # the hub's environment (make hub: build/hub-env); learners run in it too
MODELS = setting("COURSE_MODELS_DIR", str(COURSE / "models"))
CONTENT = setting("COURSE_HUB_CONTENT", str(COURSE))
GRADED = setting("COURSE_HUB_GRADED", "0").lower() not in ("0", "no", "false", "off")
for needed in (sys.executable, sys.base_prefix, COURSE, MODELS, CONTENT):
    if not reachable_by_learners(needed):
        sys.exit(f"learners could not reach {needed} (a folder above it is private): run the hub from an "
                 "environment every user can use, as `make hub` does (build/hub-env, workshop/README.md)")
THREADS = str(setting("COURSE_HUB_THREADS", threads_per_learner()))

# --- the hub, its proxy (configurable-http-proxy from npm, installed into workshop/node_modules)
c.JupyterHub.bind_url = f"http://{setting('COURSE_HUB_IP', '127.0.0.1')}:{PORT}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{PORT + 1}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{PORT + 2}"
c.ConfigurableHTTPProxy.command = [str(COURSE / "workshop" / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")

# --- who may log in: any name and the shared password; `instructor` is the admin
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = password("COURSE_HUB_PASSWORD", "password", 9)
c.SharedPasswordAuthenticator.admin_password = password("COURSE_HUB_ADMIN_PASSWORD", "admin-password", 32)
c.Authenticator.admin_users = {"instructor"}
c.Authenticator.allow_all = True
c.Authenticator.username_pattern = r"^[a-z][a-z0-9_-]{0,23}$"  # becomes a unix user name (jupyter-...)

# --- each learner: a unix user, a private home with the course, JupyterLab on the notebooks
c.JupyterHub.spawner_class = WorkshopSpawner
c.WorkshopSpawner.homes = setting("COURSE_HUB_HOMES", "/home")
c.WorkshopSpawner.course_dir = CONTENT  # merged into ~/course at each start (workshop/update.py)
c.WorkshopSpawner.cpu_weight = int(setting("COURSE_HUB_CPU_WEIGHT", 100))
c.Spawner.cmd = [str(BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab/tree/course/notebooks"
c.Spawner.mem_limit = setting("COURSE_HUB_MEM_LIMIT", "3G")
MECHANISM = memory_limit_mechanism()  # "cgroup v2", "cgroup v1" or None (advisory)
c.Spawner.start_timeout = 120
c.Spawner.environment = {
    "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
    "VIRTUAL_ENV": str(BIN.parent),
    "COURSE_MODELS_DIR": MODELS,
    "HF_HUB_OFFLINE": "1",
    "OMP_NUM_THREADS": THREADS,  # torch's intra-op threads follow it
    "MKL_NUM_THREADS": THREADS,
    "RAYON_NUM_THREADS": THREADS,  # the tokenizers' thread pool
}

# --- graded mode: learners cannot read the solutions (nor the git history or the tests that hold
# them): root-owned, 0700, from now on; q.solution() says they are held back (workshop/graded.py)
if GRADED:
    HELD = [str(f) for f in hold(COURSE) + (hold(CONTENT) if Path(CONTENT).resolve() != COURSE else [])]
    c.Spawner.environment["COURSE_SOLUTIONS"] = "held"

# --- the idle culler: stops a server nobody has used for COURSE_HUB_CULL_IDLE seconds
c.JupyterHub.services = [{
    "name": "idle-culler",
    "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                f"--timeout={setting('COURSE_HUB_CULL_IDLE', 3600)}", "--cull-every=60"],
}]
c.JupyterHub.load_roles = [{
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}]

print(f"workshop hub: learners log in with any name and the password in {STATE / 'password'}; "
      f"`instructor` (admin) with the one in {STATE / 'admin-password'} (unless set in the environment). "
      f"Per learner: {c.Spawner.mem_limit} memory, {THREADS} thread(s); models in {MODELS}", file=sys.stderr)
print("workshop hub: memory limit per learner: " + (f"held by {MECHANISM} (each start logs whether it holds)" if MECHANISM
      else "ADVISORY ONLY: this host lets the hub make no cgroup (workshop/README.md)"), file=sys.stderr)
if GRADED:
    print(f"workshop hub: graded mode: closed to learners (root-owned, 0700): {', '.join(HELD)}; "
          "q.solution() says solutions are held back", file=sys.stderr)

if os.environ.get("COURSE_HUB_EXTRA_CONFIG"):
    load_subconfig(os.environ["COURSE_HUB_EXTRA_CONFIG"])  # noqa: F821 (provided by JupyterHub)
