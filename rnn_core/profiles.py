"""The install profiles (constraints/<profile>.txt): which Pythons each one takes, and which
frameworks it installs there. pyproject.toml's extras install the same (tests/test_profiles.py).

This file uses the standard library only, so that the Makefile can ask it before anything is
installed, with the interpreter it is about to use (``-I``: nothing but the standard library):

    python -I rnn_core/profiles.py choose           the profile of this Python: all or current
    python -I rnn_core/profiles.py check PROFILE    nothing; or one line, exit 1, if it does not fit
    python -I rnn_core/profiles.py notes PROFILE    a line for each framework it leaves out here
"""
import sys

# profile -> (oldest Python, newest Python) it installs on
PYTHONS = {"all": ((3, 11), (3, 11)), "current": ((3, 12), (3, 14))}
TOO_NEW = ("PyTorch 2.13, the pinned release, has no wheels for 3.15 and later, nor have "
           "TensorFlow and tensorstore, which Flax needs")
FRAMEWORKS = {
    "all": ("numpy", "torch", "tf", "mxnet", "jax"),     # NumPy 1.23
    "current": ("numpy", "torch", "tf", "jax"),          # NumPy 2: no MXNet
}
NEWEST_PYTHON = {"tf": (3, 13)}         # TensorFlow 2.21, its newest release: no wheels for 3.14
LEFT_OUT = {       # why a framework is not in the 'current' profile on a Python, and the fix
    "mxnet": "MXNet is not in the 'current' profile: its last release, 1.9.1, needs NumPy < 1.24, "
             "which has no wheels for Python 3.12 and later; use Python 3.11 for the 'all' profile",
    "tf": "TensorFlow is not in the 'current' profile on Python 3.14: its newest release, 2.21, has "
          "no wheels for Python 3.14; use Python 3.12 or 3.13 for it (or 3.11 for all five)",
}


def this_python():
    return tuple(sys.version_info[:2])


def choose(python=None):
    """The profile that the Makefile installs on Python ``python`` (``(3, 12)``; this one by
    default): ``all`` up to 3.11, ``current`` from 3.12."""
    return "all" if (python or this_python()) < PYTHONS["current"][0] else "current"


def frameworks(profile, python=None):
    """The frameworks that ``profile`` installs on Python ``python`` (this one by default)."""
    python = tuple(python or this_python())
    return tuple(name for name in FRAMEWORKS[profile]
                 if python <= NEWEST_PYTHON.get(name, python))


def check(profile, python=None):
    """None where ``profile`` installs on Python ``python``; else the one line that says why not,
    and what to choose."""
    python = tuple(python or this_python())
    if profile not in PYTHONS:
        return f"unknown profile {profile!r}: choose PROFILE={' or '.join(PYTHONS)}"
    oldest, newest = PYTHONS[profile]
    if oldest <= python <= newest:
        return None
    takes = ", ".join(f"{name} takes %d.%d" % low + (" to %d.%d" % high if high != low else "")
                      for name, (low, high) in PYTHONS.items())
    return (f"profile {profile!r} does not fit Python %d.%d: {takes} ({TOO_NEW}); choose "
            f"PYTHON=..., or VENV=... for a new environment" % python)


def notes(profile, python=None):
    """The lines that say which frameworks ``profile`` leaves out on Python ``python``, and why."""
    return [LEFT_OUT[name] for name in FRAMEWORKS["all"]
            if name not in frameworks(profile, python)]


def main(argv):
    command, profile = (argv + [None, None])[:2]
    if command == "choose" and len(argv) == 1:
        print(choose())
        return 0
    if command in ("check", "notes") and len(argv) == 2:
        if profile not in PYTHONS or command == "check":
            problem = check(profile)
            if problem:
                print(problem, file=sys.stderr)
            return 1 if problem else 0
        for line in notes(profile):
            print(line)
        return 0
    print("usage: python -I rnn_core/profiles.py choose | check PROFILE | notes PROFILE",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
