"""``make hub-loadtest USERS=N``: N learners run a lesson at the same time on the workshop hub.

What it does, on loopback only and within ``--timeout`` seconds: starts the hub
(``workshop/jupyterhub_config.py``) in a temporary folder (its state and the learners' homes); the
instructor logs in and adds ``loadtest-1`` ... ``loadtest-N``; each learner logs in with the shared
password through the REST API and starts a server, all at once; each opens the lesson from its own
copy (``~/course/notebooks/...``) and runs its code cells in order through the kernel websocket,
all learners starting together; then each answers question 1 of exercise 01 in the same kernel (a
bfloat16 load) and runs ``q1.check()``; the instructor's progress table (``python -m helpers
progress <homes>``) is printed. The hub, the learners' accounts and the folder are removed at the
end (``--keep`` keeps the folder).

What it measures: a sampler reads ``/proc`` every 0.25 s. Per learner, all processes of its unix
user (the server, the kernel and their children): peak RSS, peak PSS and peak USS, from
``/proc/<pid>/smaps_rollup`` (PSS splits each shared page between the processes that map it, so
the float32 course weights, memory-mapped from one file, count once across learners; USS is what
is private to the learner), and CPU seconds. The hub's own: jupyterhub, configurable-http-proxy
and the culler.

Capacity, the last line (the formula is printed above it):

* per learner ``M`` = the peak of all learners' PSS summed at the same moment, divided by N: what
  the machine held per learner while all ran the lesson together. (One learner's own peak PSS
  depends on timing: a learner who alone maps the weights at that moment carries all of them.)
  At more learners the shared weights are split further, so ``M`` errs on the safe side;
* memory: ``K_mem = floor((RAM - reserve - hub) / M)``, ``reserve = max(1 GiB, 10 % of RAM)`` for
  the system and the page cache;
* CPU: ``K_cpu = floor(0.8 x cores x pace / C)``, ``C`` = the largest CPU seconds one learner
  used for the lesson, ``pace`` = the time a learner spends on the lesson while running each of
  its cells once (``--pace``, default 20 minutes: an assumption, not a measurement). At 80 % of
  the cores, a cell seldom waits long for one;
* ``K = min(K_mem, K_cpu)``.

Exit status 0 when every learner ran every cell without an error.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from workshop.hubclient import Hub, Kernel, create_users, login, read_code_cells, start_server
from workshop.spawner import memory_limit_mechanism, threads_per_learner, unix_name

MIB = 1 << 20
# After the lesson, in the same kernel: question 1 of exercise 01, answered as its solution does.
EXERCISE_Q1 = """from helpers.checks.lesson01 import q1
model_bf16 = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.bfloat16, device_map=DEVICE)
q1.check()"""


def smaps_rollup(pid: int) -> dict[str, int]:
    """RSS, PSS and USS (private) of one process, in bytes (empty if it is gone)."""
    values = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    values[parts[0].rstrip(":")] = int(parts[1]) * 1024
    except OSError:
        return {}
    return {"rss": values.get("Rss", 0), "pss": values.get("Pss", 0),
            "uss": values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 once it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


class Sampler(threading.Thread):
    """Peaks of memory (sums over a group's processes, per sample) and CPU time, every ``interval`` s.
    Groups: each learner (all processes of its unix user), the hub (the root processes of its tree)."""

    def __init__(self, names: list[str], hub_pid: int, interval: float = 0.25):
        super().__init__(daemon=True)
        self.names, self.hub_pid, self.interval = names, hub_pid, interval
        self.uids: dict[int, str] = {}  # filled in as the learners' unix users are created
        self.peak = {g: {"rss": 0, "pss": 0, "uss": 0} for g in [*names, "hub", "all learners"]}
        self.cpu: dict[int, tuple[str, float]] = {}
        self.stopping = threading.Event()

    def groups(self) -> dict[int, str]:
        """``{pid: group}`` now."""
        for name in set(self.names) - set(self.uids.values()):
            try:
                self.uids[pwd.getpwnam(unix_name(name)).pw_uid] = name
            except KeyError:
                pass
        found = {}
        for p in psutil.process_iter(["uids"]):
            if p.info["uids"] and p.info["uids"].real in self.uids:
                found[p.pid] = self.uids[p.info["uids"].real]
        try:
            hub = psutil.Process(self.hub_pid)
            for p in [hub, *hub.children(recursive=True)]:
                if p.uids().real == 0:
                    found[p.pid] = "hub"
        except psutil.Error:
            pass
        return found

    def run(self):
        while not self.stopping.wait(self.interval):
            totals = {g: {"rss": 0, "pss": 0, "uss": 0} for g in self.peak}
            for pid, group in self.groups().items():
                for key, value in smaps_rollup(pid).items():
                    totals[group][key] += value
                    if group != "hub":
                        totals["all learners"][key] += value
                if group != "hub":
                    self.cpu[pid] = (group, max(self.cpu.get(pid, (group, 0.0))[1], cpu_seconds(pid)))
            for group, values in totals.items():
                for key, value in values.items():
                    self.peak[group][key] = max(self.peak[group][key], value)

    def cpu_of(self, group: str) -> float:
        return sum(seconds for g, seconds in self.cpu.values() if g == group)


async def learner(hub: Hub, name: str, lesson: str, start_together: asyncio.Barrier, cell_timeout: float) -> dict:
    """One learner: log in, start the server, run the lesson's cells (with the others), check q1."""
    row = {"name": name, "errors": [], "cells": 0, "ok": 0}
    try:
        token = await login(hub.url, name, hub.password)
        row["spawn"] = await start_server(hub.url, name, token)
        path = f"course/{lesson}"
        cells = await read_code_cells(hub.url, name, token, path)
        row["cells"] = len(cells)
        kernel = await Kernel.open(hub.url, name, token, path)
    except Exception as e:
        row["errors"].append(f"{type(e).__name__}: {e}")
        await start_together.wait()
        return row
    await start_together.wait()
    started = time.monotonic()
    for number, code in enumerate(cells):
        try:
            result = await kernel.run(code, cell_timeout)
        except Exception as e:  # a timeout, a closed websocket
            result = None
            row["errors"].append(f"cell {number}: {type(e).__name__}: {e}")
            break
        if result.status == "ok":
            row["ok"] += 1
        else:
            row["errors"].append(f"cell {number}: {result.error}")
    row["lesson"] = time.monotonic() - started
    try:
        check = await kernel.run(EXERCISE_Q1, cell_timeout)
        row["check"] = next((line for line in check.text.splitlines() if line.startswith("q1")), check.error)
        await kernel.close()
    except Exception as e:
        row["errors"].append(f"q1.check(): {type(e).__name__}: {e}")
    return row


async def run_learners(hub: Hub, names: list[str], lesson: str, cell_timeout: float) -> list[dict]:
    admin = await login(hub.url, "instructor", hub.admin_password)
    await create_users(hub.url, admin, names)
    together = asyncio.Barrier(len(names))
    return await asyncio.gather(*(learner(hub, n, lesson, together, cell_timeout) for n in names))


def machine_info() -> dict:
    from helpers.machine import cpu_has_bf16_instructions, cpu_model
    return {"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)), "ram": psutil.virtual_memory().total,
            "load": os.getloadavg()[0], "bf16": cpu_has_bf16_instructions(),
            "enforced": memory_limit_mechanism()}  # replaced by what the hub log says, after the run


def enforcement(log: str, names: list[str]) -> str | None:
    """What the hub log says held the learners' memory limit: "cgroup v1 (4/4 learners)", or None."""
    found = [re.search(rf"memory limit \d+ MiB enforced for {unix_name(n)} by (cgroup v\d)", log) for n in names]
    mechanisms = sorted({m.group(1) for m in found if m})
    return f"{'/'.join(mechanisms)} ({sum(map(bool, found))}/{len(names)} learners, hub log)" if mechanisms else None


def capacity(together_pss: int, learners: int, cpu: list[float], hub_pss: int, ram: int, cores: int,
             pace_min: float) -> tuple[int, int, list[str]]:
    """``(K, M in bytes, lines explaining it)`` from the measured peaks (see the module docstring)."""
    per_learner = together_pss // learners
    reserve = max(1 << 30, ram // 10)
    k_mem = max(0, (ram - reserve - hub_pss) // per_learner)
    seconds = max(max(cpu), 0.1)
    k_cpu = math.floor(0.8 * cores * pace_min * 60 / seconds)
    lines = [f"  memory: (RAM {ram / MIB:.0f} - reserve {reserve / MIB:.0f} - hub {hub_pss / MIB:.0f} MiB)"
             f" / {per_learner / MIB:.0f} MiB per learner (all learners' peak PSS {together_pss / MIB:.0f} MiB"
             f" / {learners}) = {k_mem}",
             f"  CPU:    0.8 x {cores} cores x {pace_min:g} min per lesson (assumed pace) / {seconds:.1f} CPU s"
             f" per learner (largest measured) = {k_cpu}",
             f"  the smaller binds: {'memory' if k_mem <= k_cpu else 'CPU'}"]
    return min(k_mem, k_cpu), per_learner, lines


def report(rows, sampler, info, args, progress_table, elapsed) -> bool:
    mib = lambda b: f"{b / MIB:.0f}"  # noqa: E731
    print(f"\nhub load test: {len(rows)} learner(s) ran {args.lesson} at the same time ({elapsed:.0f} s in all)")
    print(f"machine: {info['cpu']}, {info['cores']} cores (native bf16: {({True: 'yes', False: 'no', None: 'unknown'})[info['bf16']]}), "
          f"{info['ram'] / (1 << 30):.1f} GiB RAM; load average before the run {info['load']:.2f}")
    print(f"per learner: {threads_per_learner()} thread(s), memory limit {args.mem_limit} "
          f"({'enforced by a ' + info['enforced'] if info['enforced'] else 'advisory: the hub can make no cgroup here'})\n")
    header = ["learner", "start s", "lesson s", "cells ok", "errors", "peak RSS MiB", "peak PSS MiB",
              "peak USS MiB", "CPU s", "q1.check()"]
    table = [header]
    for r in rows:
        peak = sampler.peak[r["name"]]
        table.append([r["name"], f"{r.get('spawn', 0):.1f}", f"{r.get('lesson', 0):.1f}", f"{r['ok']}/{r['cells']}",
                      str(len(r["errors"])), mib(peak["rss"]), mib(peak["pss"]), mib(peak["uss"]),
                      f"{sampler.cpu_of(r['name']):.1f}", r.get("check", "")])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    for r in rows:
        for error in r["errors"][:5]:
            print(f"  {r['name']}: {error}")
    together, hub = sampler.peak["all learners"], sampler.peak["hub"]
    print(f"\nall learners together, peak: RSS {mib(together['rss'])} MiB, PSS {mib(together['pss'])} MiB "
          f"(RSS counts the shared weights once per learner, PSS once in all)")
    print(f"hub (jupyterhub + configurable-http-proxy + idle culler), peak: RSS {mib(hub['rss'])} MiB, "
          f"PSS {mib(hub['pss'])} MiB")
    print(f"\ninstructor's progress table (python -m helpers progress <homes>):\n{progress_table}")
    ok = all(not r["errors"] and r["cells"] and r["ok"] == r["cells"] for r in rows)
    peaks = [sampler.peak[r["name"]]["pss"] for r in rows]
    if not ok or not all(peaks):
        print("\nnot every learner finished the lesson without an error: no capacity figure")
        return False
    k, per_learner, lines = capacity(together["pss"], len(rows), [sampler.cpu_of(r["name"]) for r in rows],
                                     hub["pss"], info["ram"], info["cores"], args.pace)
    print("\ncapacity = min(memory, CPU):\n" + "\n".join(lines))
    print(f"capacity: {k} learners on this machine at {Path(args.lesson).stem} ({per_learner / MIB:.0f} MiB per learner)")
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workshop.loadtest", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--lesson", default="notebooks/01_loading.ipynb")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the whole run (default 900)")
    parser.add_argument("--pace", type=float, default=20, help="minutes a learner spends on the lesson (default 20)")
    parser.add_argument("--mem-limit", default=os.environ.get("COURSE_HUB_MEM_LIMIT", "3G"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, homes)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("the load test needs root: the hub creates a unix user per learner", file=sys.stderr)
        return 2

    names = [f"loadtest-{i + 1}" for i in range(args.users)]
    for name in names:  # left over by an interrupted run
        subprocess.run(["userdel", unix_name(name)], capture_output=True)
    folder = Path(tempfile.mkdtemp(prefix="course-hub-loadtest-"))
    hub = Hub(folder, env={"COURSE_HUB_MEM_LIMIT": args.mem_limit})
    info, started = machine_info(), time.monotonic()
    print(f"starting the hub in {folder} ...", flush=True)
    sampler = None
    try:
        hub.start()
        sampler = Sampler(names, hub.proc.pid)
        sampler.start()
        print(f"{args.users} learners: log in, start servers, run {args.lesson} together ...", flush=True)
        try:
            rows = asyncio.run(asyncio.wait_for(run_learners(hub, names, args.lesson, args.timeout), args.timeout))
        except TimeoutError:
            rows = [{"name": n, "errors": [f"the run passed --timeout {args.timeout:g} s"], "cells": 0, "ok": 0}
                    for n in names]
        progress = subprocess.run([sys.executable, "-m", "helpers", "progress", str(hub.homes)],
                                  capture_output=True, text=True).stdout.rstrip()
        info["enforced"] = enforcement(hub.log_path.read_text(errors="replace"), names)
    finally:
        if sampler:
            sampler.stopping.set()
            sampler.join()
        hub.stop()
        for name in names:
            subprocess.run(["userdel", unix_name(name)], capture_output=True)
        if args.keep:
            print(f"kept: {folder} (hub.log, home/)")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0 if report(rows, sampler, info, args, progress, time.monotonic() - started) else 1


if __name__ == "__main__":
    sys.exit(main())
