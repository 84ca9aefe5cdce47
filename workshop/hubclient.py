"""Drive a workshop hub from Python, as learners' browsers would, over loopback.

:class:`Hub` starts JupyterHub with ``workshop/jupyterhub_config.py`` in a private folder (its
state and the learners' homes) on free ports; the ``async`` functions use the hub's REST API
(log in with the shared password, start a server) and then the learner's Jupyter server: its REST
API (contents, sessions) and the kernel websocket (run code, collect output and errors). Used by
the load test (``workshop/loadtest.py``) and ``tests/test_workshop.py``. Only tornado, which
JupyterHub and Jupyter already need.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

WORKSHOP = Path(__file__).resolve().parent
CONFIG = WORKSHOP / "jupyterhub_config.py"
PROXY = WORKSHOP / "node_modules" / ".bin" / "configurable-http-proxy"

AsyncHTTPClient.configure(None, max_clients=200)


def free_ports(count: int = 3) -> int:
    """A port such that it and the ``count - 1`` after it are free on 127.0.0.1."""
    for _ in range(200):
        base = 20000 + secrets.randbelow(30000)
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free ports found")


class Hub:
    """The workshop hub, started in ``folder`` (``folder/state``, homes in ``folder/home``)."""

    def __init__(self, folder: Path, python: str | Path = sys.executable, env: dict | None = None):
        self.folder, self.python = Path(folder), str(python)
        self.homes = self.folder / "home"
        self.port = free_ports()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(9)
        self.admin_password = secrets.token_urlsafe(32)
        self.env = {**os.environ, "COURSE_HUB_STATE": str(self.folder / "state"),
                    "COURSE_HUB_HOMES": str(self.homes), "COURSE_HUB_PORT": str(self.port),
                    "COURSE_HUB_PASSWORD": self.password, "COURSE_HUB_ADMIN_PASSWORD": self.admin_password,
                    "HF_HUB_OFFLINE": "1", **(env or {})}
        self.proc = None

    def start(self, timeout: float = 60) -> "Hub":
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)  # learners must reach their homes inside it
        self.homes.mkdir(exist_ok=True)
        self.log_path = self.folder / "hub.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([self.python, "-m", "jupyterhub", "-f", str(CONFIG)],
                                         cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                urllib.request.urlopen(f"{self.url}/hub/api/", timeout=2).read()
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"the hub did not answer in {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM: the hub stops every learner's server and its proxy, then exits."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


async def api(url: str, method: str = "GET", token: str | None = None, body=None, timeout: float = 120):
    """One REST call; returns the decoded JSON (or None). Raises on HTTP errors, with the body."""
    headers = {"Authorization": f"token {token}"} if token else {}
    request = HTTPRequest(url, method=method, headers=headers, request_timeout=timeout,
                          body=None if body is None and method not in ("POST", "PUT", "PATCH")
                          else json.dumps(body or {}))
    try:
        response = await AsyncHTTPClient().fetch(request)
    except HTTPClientError as e:
        detail = e.response.body.decode(errors="replace")[:500] if e.response else ""
        raise RuntimeError(f"{method} {url}: {e.code} {detail}") from None
    return json.loads(response.body) if response.body else None


async def login(hub_url: str, name: str, password: str) -> str:
    """Log ``name`` in through the REST API (user name and password in the body): a token for them."""
    reply = await api(f"{hub_url}/hub/api/users/{name}/tokens", "POST",
                      body={"auth": {"username": name, "password": password}, "note": "workshop client"})
    return reply["token"]


async def create_users(hub_url: str, admin_token: str, names: list[str]) -> None:
    await api(f"{hub_url}/hub/api/users", "POST", admin_token, {"usernames": names})


async def start_server(hub_url: str, name: str, token: str, timeout: float = 180) -> float:
    """Start ``name``'s server and wait until it is ready; returns the seconds it took."""
    start = time.monotonic()
    await api(f"{hub_url}/hub/api/users/{name}/server", "POST", token, {})
    while time.monotonic() - start < timeout:
        server = (await api(f"{hub_url}/hub/api/users/{name}", token=token))["servers"].get("", {})
        if server.get("ready"):
            return time.monotonic() - start
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{name}'s server was not ready after {timeout} s")


async def read_code_cells(hub_url: str, name: str, token: str, path: str) -> list[str]:
    """The code cells of the notebook at ``path`` in the learner's home, read through their server."""
    model = await api(f"{hub_url}/user/{name}/api/contents/{path}?content=1", token=token)
    return ["".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            for cell in model["content"]["cells"] if cell["cell_type"] == "code"]


@dataclass
class Result:
    status: str        # "ok" or "error"
    text: str          # what the cell printed and returned (text/plain)
    error: str = ""    # "Name: message" when status is "error"


class Kernel:
    """A kernel in a learner's server, opened as JupyterLab opens a notebook (a session for ``path``,
    so the kernel runs in the notebook's folder), driven over the kernel websocket."""

    def __init__(self, hub_url, name, token, session, ws):
        self.hub_url, self.name, self.token, self.session, self.ws = hub_url, name, token, session, ws
        self.client_session = uuid.uuid4().hex

    @classmethod
    async def open(cls, hub_url: str, name: str, token: str, path: str) -> "Kernel":
        session = await api(f"{hub_url}/user/{name}/api/sessions", "POST", token,
                            {"path": path, "type": "notebook", "name": "", "kernel": {"name": "python3"}})
        ws_url = f"{hub_url.replace('http', 'ws', 1)}/user/{name}/api/kernels/{session['kernel']['id']}/channels"
        ws = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {token}"}),
                                     max_message_size=64 << 20)
        return cls(hub_url, name, token, session, ws)

    async def run(self, code: str, timeout: float = 300) -> Result:
        """Run ``code`` as a notebook cell; wait for its reply and for the kernel to be idle again."""
        msg_id = uuid.uuid4().hex
        self.ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.name,
                       "session": self.client_session, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        text, reply, idle = [], None, False
        deadline = time.monotonic() + timeout
        while reply is None or not idle:
            raw = await asyncio.wait_for(self.ws.read_message(), max(0.1, deadline - time.monotonic()))
            if raw is None:
                raise ConnectionError(f"{self.name}'s kernel websocket closed")
            msg = json.loads(raw)
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] in ("restarting", "autorestarting", "dead"):
                return Result("error", "".join(text), f"the kernel died ({content['execution_state']})")
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if kind == "stream":
                text.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                text.append(content["data"].get("text/plain", "") + "\n")
            elif kind == "error":
                text.append(f"{content['ename']}: {content['evalue']}\n")
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "execute_reply":
                reply = content
        error = f"{reply.get('ename')}: {reply.get('evalue')}" if reply["status"] == "error" else ""
        return Result(reply["status"], "".join(text), error)

    async def close(self) -> None:
        self.ws.close()
        await api(f"{self.hub_url}/user/{self.name}/api/sessions/{self.session['id']}", "DELETE", self.token)
