"""Forging attempts against the grader: code cells a curious learner who read the grader could add.

Each is inserted into a *blank* exercise, so any credit it earns is forged. tests/test_grader.py
grades them (each must earn nothing); the sandbox probe lives in tests/test_grader_sandbox.py.
"""

# The grader once wrote its verdicts with json.dump, in this kernel: rewrite them to "correct".
JSON_DUMP = '''\
import json
_real_dump = json.dump
def _forged(obj, f, *args, **kwargs):
    if isinstance(obj, list):
        obj = [dict(r, status="correct", points=1, message="") if isinstance(r, dict) else r for r in obj]
    return _real_dump(obj, f, *args, **kwargs)
json.dump = _forged
'''

# A helpers/ and grading/ package in the working folder, which the kernel imports first; plus
# files a grader might run or read: sitecustomize, usercustomize, a fake verifier.
_FAKE_CHECKS = '''
class Q:
    def __init__(self, name):
        self.name, self.points = name, 1
    def extract(self, namespace, folder):
        pass
    def verify(self, folder):
        from types import SimpleNamespace
        return SimpleNamespace(status="correct", message="")
    def evaluate(self, namespace):
        return self.verify(None)
QUESTIONS = [Q("q1"), Q("q2"), Q("q3"), Q("q4")]
'''
_FAKE_EXTRACT = '''
import json, os
def write_answers(folder, lesson, namespace):
    os.makedirs(folder, exist_ok=True)
    rows = [{"question": f"q{i}", "status": "correct", "message": "", "points": 1, "max_points": 1}
            for i in range(1, 5)]
    for name in ("results.json", "verdict.json"):
        json.dump(rows, open(os.path.join(folder, name), "w"))
'''
_FAKE_VERIFY = '''
import json, sys
sys.stdout.write(json.dumps([{"question": f"q{i}", "status": "correct", "message": "", "points": 1,
                              "max_points": 1} for i in range(1, 5)]))
sys.exit(0)
'''
SHADOW_PACKAGE = f'''\
import os
for pkg in ("helpers", "helpers/checks", "grading"):
    os.makedirs(pkg, exist_ok=True)
    open(pkg + "/__init__.py", "w").write("")
open("helpers/checks/lesson01.py", "w").write({_FAKE_CHECKS!r})
open("grading/extract.py", "w").write({_FAKE_EXTRACT!r})
for name in ("grading/verify.py", "sitecustomize.py", "usercustomize.py"):
    open(name, "w").write({_FAKE_VERIFY!r})
'''

# An IPython input transformer that rewrites every later cell, the grader's own included.
INPUT_TRANSFORMER = '''\
def _rewrite(lines):
    if any("grading" in line for line in lines):
        return ["print('q1: Correct')\\n",
                "import json; json.dump([{'question': 'q1', 'status': 'correct'}], open('.grade-results.json', 'w'))\\n"]
    return lines
get_ipython().input_transformers_cleanup.append(_rewrite)
'''

# Patches that survive the grader's fresh import of helpers: importlib itself, and the classes.
PATCHED_IMPORT = '''\
import importlib, types
_fake = types.ModuleType("grading.extract")
_fake.write_answers = lambda folder, lesson, namespace: None
_real_import_module = importlib.import_module
importlib.import_module = lambda name, *a: _fake if name == "grading.extract" else _real_import_module(name, *a)
import helpers.checking as _c
_c.Question.verify = lambda self, folder: _c.Result(self.name, "correct")
_c.Question.extract = lambda self, namespace, folder: None
'''

# Answers planted where the grader saves them (the folder beside the kernel's working folder; once
# .answers inside it): a device as an answer, code as an answer.
PLANTED_ANSWERS = '''\
import os
for folder in ("../answers", ".answers"):
    os.makedirs(folder, exist_ok=True)
    os.symlink("/dev/zero", folder + "/q1.answer")
    open(folder + "/q2.answer", "w").write("__import__('os').system('echo pwned')")
'''

# A detached process that wakes up after the kernel has gone, to overwrite answers (its own and
# other submissions') and leave a mark. ``{marker}`` is filled in by the test.
LEFTOVER_PROCESS = '''\
import subprocess, sys
daemon = """
import glob, os, time
time.sleep(12)
open({marker!r}, "w").write("still running")
for answers in glob.glob("/tmp/grade-*/work/.answers"):
    open(os.path.join(answers, "q1.answer"), "w").write("{{}}")
"""
subprocess.Popen([sys.executable, "-c", daemon], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
'''

# A process whose main thread exits (it shows as a zombie) while another thread runs on, then
# writes a forged all-correct result line to the standard output of the grader's processes it
# descends from (the worker's, which the batch once read). ``{marker}`` is filled in by the test.
ZOMBIE_THREAD = '''\
import subprocess, sys
daemon = """
import ctypes, json, os, threading, time
def ancestors(pid):
    while pid > 1:
        yield pid
        pid = int(open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()[1])
graders = [p for p in ancestors(os.getppid()) if b"grading" in open(f"/proc/{{p}}/cmdline", "rb").read()]
def later():
    time.sleep(10)
    open({marker!r}, "w").write("still running")
    rows = [dict(question=f"q{{i}}", status="correct", message="", points=1, max_points=1) for i in range(1, 5)]
    line = "\\\\n" + json.dumps(dict(rows=rows, events=[], stop=[], digests={{}})) + "\\\\n"
    for out in [f"/proc/{{p}}/fd/1" for p in graders]:
        try:
            with open(out, "w") as f:
                f.write(line)
        except OSError:
            pass
threading.Thread(target=later).start()
ctypes.CDLL(None).pthread_exit(None)  # the main thread ends; the process is a zombie to /proc
"""
subprocess.Popen([sys.executable, "-c", daemon], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
'''

# The worker once read a "tampered" event from a file in the submission's folder, which stopped the
# whole batch: every later submission went ungraded. Planted there and printed where stage 1's
# events are read.
TAMPERED_FLAG = '''\
import os
open(".events.json", "w").write('["tampered"]')
os.write(1, b'\\n["tampered"]\\n{"events": ["tampered"], "stop": ["x"], "digests": {}}\\n')
'''

# A bytecode cache for the judge's own module, valid for its source (same size and time), whose
# code marks every question correct. The judge must never read it. The test removes it afterwards.
PLANTED_BYTECODE = '''\
import importlib.util, importlib._bootstrap_external as ext, os, grading
src = os.path.join(os.path.dirname(grading.__file__), "judge.py")
fake = """
import json, sys
for line in sys.stdin:
    sys.stdout.write(json.dumps([dict(question=f"q{i}", status="correct", message="", points=1) for i in range(1, 5)]) + "\\\\n")
    sys.stdout.flush()
"""
st = os.stat(src)
data = ext._code_to_timestamp_pyc(compile(fake, src, "exec"), int(st.st_mtime), st.st_size)
os.makedirs(os.path.dirname(importlib.util.cache_from_source(src)), exist_ok=True)
open(importlib.util.cache_from_source(src), "wb").write(data)
'''

# Terminal escape sequences in an error message: clear the screen, then print a fake all-correct row.
ESCAPES = '''\
raise ValueError("\\x1b[2J\\x1b[H01_solution  ok  ok  ok  ok  4/4\\r=HYPERLINK(\\"http://x\\")")
'''
