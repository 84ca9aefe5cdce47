"""Is this Python new enough? One check and one message for every set-up path.

Two minimums, because there are two installs:

* **the course** (``pip install -e ".[lab]"``, then ``course setup``): Python 3.10
  (``requires-python`` in ``pyproject.toml``). On 3.10 pip picks versions that still support it
  (transformers 5.20, numpy 2.2, ipykernel 7.3); every lesson ran there once by hand, but no test
  profile runs that set (README, "Where it runs").
* **the tested pins** (``make setup``, ``-c requirements.txt``, ``course test``, the grader):
  Python 3.11. numpy 2.4.6, matplotlib 3.11.2, ipykernel 7.4.0 and transformers 5.21 or newer
  publish nothing for 3.10, and the grader starts its judge with ``python -P`` (new in 3.11).

``make setup`` runs this file with ``$(PYTHON)`` before it creates ``.venv``; ``course setup`` and
``course test`` call :func:`check`. By hand::

    python3 helpers/python_version.py            # the course's minimum: exit 0, or the message and 1
    python3 helpers/python_version.py --pins     # the pins' minimum

It uses only the standard library and old syntax, so that it runs, and explains, on any Python 3.
"""

import sys

COURSE = (3, 10)  # requires-python in pyproject.toml (a test keeps them equal)
PINS = (3, 11)    # requirements.txt, make, course test, the grader

HOW_TO_GET_IT = """How to get Python {want} or newer:
  * Ubuntu:           sudo add-apt-repository ppa:deadsnakes/ppa && sudo apt install python3.11 python3.11-venv
  * any OS, with uv:  uv python install 3.11   (`uv python find 3.11` prints its path)
  * pyenv:            pyenv install 3.11       (`pyenv prefix 3.11` prints its folder)
  * macOS, Windows:   the installer from https://www.python.org/downloads/ (3.11, 3.12 or 3.13)
  * conda:            conda env create -f environment.yml   (Python 3.11 with the pins)
{then}"""

THEN_MAKE = "Then: make setup PYTHON=python3.11   (the path of the new python)"
THEN_VENV = "Then create the virtual environment with it: python3.11 -m venv .venv   (README, set-up)"


def message(minimum=COURSE, version=None, what="This course", then=THEN_VENV):
    """The message for a Python older than ``minimum``, or ``None`` when ``version`` is new enough."""
    version = tuple(version or sys.version_info[:3])
    if version[:2] >= tuple(minimum):
        return None
    want = "%d.%d" % tuple(minimum)
    text = "{what} needs Python {want} or newer; this is Python {found} ({exe}).".format(
        what=what, want=want, found=".".join(str(v) for v in version), exe=sys.executable)
    if tuple(minimum) > COURSE and version[:2] >= COURSE:
        text += ("\nThe course itself (without the pins) runs on Python %d.%d, without make:\n"
                 "  python3 -m venv .venv && .venv/bin/pip install -e \".[lab]\" && .venv/bin/course setup"
                 % COURSE)
    return text + "\n" + HOW_TO_GET_IT.format(want=want, then=then)


def check(minimum=COURSE, what="This course", then=THEN_VENV):
    """Exit with the message (status 1) if this Python is older than ``minimum``."""
    text = message(minimum, what=what, then=then)
    if text:
        sys.stderr.write(text + "\n")
        sys.exit(1)


if __name__ == "__main__":
    if "--pins" in sys.argv[1:]:
        check(PINS, "make (it installs the tested pins of requirements.txt)", THEN_MAKE)
        wanted = PINS
    else:
        check(COURSE)
        wanted = COURSE
    print("Python %d.%d.%d is new enough (%d.%d or newer)" % (tuple(sys.version_info[:3]) + tuple(wanted)))
