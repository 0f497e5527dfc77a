"""Tests of the sandbox's reach check: where its unprivileged uid cannot read what the code imports
(the project under a 0700 folder), run_untrusted stops with the path and the fix instead of letting
every answer fail as if it were wrong."""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox needs Linux")

from calcas.extract import sandbox  # noqa: E402
from calcas.extract.sandbox import SandboxUnreachableError, isolation_report, run_untrusted  # noqa: E402

needs_uid_drop = pytest.mark.skipif(not sys.platform.startswith("linux") or not isolation_report()["uid_drop"],
                                    reason="the check applies where the sandbox drops to a fresh uid (as root)")
FAST = dict(timeout_s=5.0, memory_mb=256, max_processes=8)
MODULE = "calcas_reach_mod"
USES_MODULE = f"import {MODULE}\nassert {MODULE}.VALUE == 42"


@pytest.fixture(autouse=True)
def fresh_checks():
    """Each test starts with nothing known, and leaves nothing of its folders behind in the caches."""
    def forget():
        sandbox._child_sys_path.cache_clear()
        sandbox._module_places.cache_clear()
        sandbox._importable.clear()
    forget()
    yield
    forget()


def _folder(mode: int) -> str:
    """A fresh folder under /tmp: made 0700, as `mktemp -d` makes it; then given ``mode``."""
    path = tempfile.mkdtemp(prefix="calcas_reach_")
    os.chmod(path, mode)
    return path


@pytest.fixture
def closed_dir():
    """A 0700 folder (pytest's own tmp_path lies under one as well, so it is not used here)."""
    path = _folder(0o700)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def open_dir():
    path = _folder(0o755)
    yield path
    shutil.rmtree(path)


def make_site(folder: str, monkeypatch) -> str:
    """A small site-packages in ``folder``, with MODULE in it, that the sandbox is given as the caller's."""
    site_dir = os.path.join(folder, "site-packages")
    os.mkdir(site_dir)
    os.chmod(site_dir, 0o755)
    module = os.path.join(site_dir, MODULE + ".py")
    with open(module, "w") as f:
        f.write("VALUE = 42\n")
    os.chmod(module, 0o644)
    monkeypatch.setattr(site, "getsitepackages", lambda: [site_dir])
    return site_dir


# --- what others may reach, by the mode bits (any user) ----------------------------------------


def test_blocked_for_others_names_the_outermost_folder_others_may_not_enter(closed_dir):
    a, inner = os.path.join(closed_dir, "a"), os.path.join(closed_dir, "a", "b")
    os.makedirs(inner)
    for folder in (a, inner):
        os.chmod(folder, 0o755)
    module = os.path.join(inner, "m.py")
    open(module, "w").close()
    os.chmod(module, 0o644)
    os.chmod(a, 0o700)
    assert sandbox._blocked_for_others(module, 0o004) == closed_dir  # outermost first
    os.chmod(closed_dir, 0o711)  # others may enter, not list
    assert sandbox._blocked_for_others(module, 0o004) == a
    os.chmod(a, 0o711)
    assert sandbox._blocked_for_others(module, 0o004) is None
    assert sandbox._blocked_for_others(inner, 0o005) is None
    os.chmod(inner, 0o711)  # enterable, but not listable: nothing can be imported from it
    assert sandbox._blocked_for_others(inner, 0o005) == inner
    assert sandbox._blocked_for_others(module, 0o004) is None  # the file itself is still readable by name
    os.chmod(module, 0o600)
    assert sandbox._blocked_for_others(module, 0o004) == module


def test_a_link_does_not_hide_a_closed_folder(closed_dir, open_dir):
    target = os.path.join(closed_dir, "site-packages")
    os.mkdir(target)
    os.chmod(target, 0o755)
    link = os.path.join(open_dir, "site-packages")
    os.symlink(target, link)
    assert sandbox._blocked_for_others(link, 0o005) == closed_dir  # the real path is walked too
    os.chmod(closed_dir, 0o711)
    assert sandbox._blocked_for_others(link, 0o005) is None


def test_world_executable_needs_every_folder_on_the_way(closed_dir):
    program = os.path.join(closed_dir, "python")
    shutil.copy("/bin/true", program)
    os.chmod(program, 0o755)
    assert not sandbox._world_executable(program)
    os.chmod(closed_dir, 0o711)
    assert sandbox._world_executable(program)
    os.chmod(program, 0o750)
    assert not sandbox._world_executable(program)
    assert not sandbox._world_executable(os.path.join(closed_dir, "missing"))


def test_imported_names():
    code = ("import os, sys as system\nimport a.b.c as d\n    from e.f import g\nfrom . import h\n"
            "from .i import j\nimportlib_x = 1\nfromage = 2\nx = 'import k'\nimport l; import m\n# import n\n"
            '"""\nimport in_a_string\n"""\n')
    assert sandbox._imported_names(code) == {"os", "sys", "a", "e", "l", "in_a_string"}
    assert sandbox._imported_names("print('no imports')") == set()


# --- the check before a run (root: the sandbox drops to a fresh uid) -------------------------


@needs_uid_drop
def test_site_packages_under_a_closed_folder_stops_with_the_path_and_the_fix(closed_dir, monkeypatch):
    site_dir = make_site(closed_dir, monkeypatch)
    with pytest.raises(SandboxUnreachableError) as caught:
        run_untrusted(USES_MODULE, allow_site_packages=True, **FAST)
    message = str(caught.value)
    assert f"{site_dir}: other users may not enter {closed_dir} (mode 0700)" in message
    assert f"{site_dir}/{MODULE}.py: other users may not enter {closed_dir} (mode 0700)" in message
    assert f"Fix: move the project and its virtual environment out of {closed_dir}, or " in message
    assert "run as a non-root user" in message
    # what the check stands in for: without it the run fails as if the code were wrong
    with monkeypatch.context() as m:
        m.setattr(sandbox, "_check_reach", lambda *args: None)
        result = run_untrusted(USES_MODULE, allow_site_packages=True, **FAST)
    assert result.status == "failed" and f"No module named '{MODULE}'" in result.stderr_tail
    # an unreadable path is looked at again on the next run, so a fix takes effect at once
    os.chmod(closed_dir, 0o711)
    result = run_untrusted(USES_MODULE, allow_site_packages=True, **FAST)
    assert result.passed, result


@needs_uid_drop
def test_an_unreadable_package_stops_only_the_code_that_imports_it(open_dir, monkeypatch):
    site_dir = make_site(open_dir, monkeypatch)
    package = os.path.join(site_dir, "calcas_reach_pkg")
    os.mkdir(package)
    open(os.path.join(package, "__init__.py"), "w").close()
    os.chmod(package, 0o700)  # as pip leaves it under umask 077
    assert run_untrusted(USES_MODULE, allow_site_packages=True, **FAST).passed
    with pytest.raises(SandboxUnreachableError) as caught:
        run_untrusted("from calcas_reach_pkg import x", allow_site_packages=True, **FAST)
    message = str(caught.value)
    assert f"{package}: other users may not read it (mode 0700)" in message
    assert f"{package}/__init__.py: other users may not enter {package} (mode 0700)" in message
    assert "Fix: make these readable by other users" in message  # nothing to move out of
    assert "move the project" not in message


@needs_uid_drop
def test_a_readable_environment_runs_and_is_checked_once(monkeypatch):
    """The project's own virtual environment (numpy), graded from several threads as verify_batch does.
    Where the environment itself is out of the sandbox uid's reach (a clone under a 0700 folder,
    as root) the sandbox refuses, as it must, and the test skips with its reason."""
    calls = []
    blocked_for_others = sandbox._blocked_for_others
    monkeypatch.setattr(sandbox, "_blocked_for_others",
                        lambda path, need: calls.append(path) or blocked_for_others(path, need))
    code = "import json\nimport numpy\nassert int(numpy.arange(3).sum()) == 3"

    def run(_):
        return run_untrusted(code, allow_site_packages=True, audit_hook=False, timeout_s=20.0, memory_mb=2048)

    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(run, range(4)))
    except SandboxUnreachableError as err:  # e.g. a clone under a 0700 folder: nothing can be graded here
        pytest.skip(f"the sandbox cannot reach this environment's packages: {err}")
    assert all(r.passed for r in results), results
    assert sandbox._child_sys_path.cache_info().misses == 1  # one probe of the interpreter
    assert any("numpy" in path for path in calls)
    checked = len(calls)
    assert run(0).passed
    assert len(calls) == checked  # nothing is looked at again


@needs_uid_drop
def test_an_interpreter_that_does_not_start_under_the_uid_stops_with_its_error(closed_dir):
    python = os.path.join(closed_dir, "python")
    with open(python, "w") as f:
        f.write("#!/bin/sh\necho 'cannot open libpython3.so' >&2\nexit 3\n")
    os.chmod(python, 0o755)
    with pytest.raises(SandboxUnreachableError, match=rf"could not start {python} under an unprivileged uid: "
                                                      r"PermissionError.*Fix: install Python where other users"):
        sandbox._child_sys_path(python)
    os.chmod(closed_dir, 0o711)
    with pytest.raises(SandboxUnreachableError, match=rf"{python} does not start under the sandbox's unprivileged "
                                                      r"uid \(exit 3\): cannot open libpython3.so\. Fix: install"):
        sandbox._child_sys_path(python)


@needs_uid_drop
def test_a_virtual_environment_under_a_closed_folder_stops_the_job(closed_dir):
    """End to end: a venv made under a 0700 folder, a module installed in it, the sandbox called from it."""
    venv = os.path.join(closed_dir, "venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_dir = os.path.join(venv, "lib", version, "site-packages")
    with open(os.path.join(site_dir, MODULE + ".py"), "w") as f:
        f.write("VALUE = 42\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # calcas and its dependencies come from here; the sandbox is given only the new venv's site-packages
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, *site.getsitepackages()])}
    script = ("from calcas.extract.sandbox import run_untrusted\n"
              f"print(run_untrusted({USES_MODULE!r}, allow_site_packages=True))")
    job = subprocess.run([os.path.join(venv, "bin", "python"), "-c", script], env=env, capture_output=True,
                         text=True, timeout=120)
    assert job.returncode == 1 and "calcas.extract.sandbox.SandboxUnreachableError" in job.stderr, job.stderr
    assert f"{site_dir}: other users may not enter {closed_dir} (mode 0700)" in job.stderr
    assert "SandboxResult" not in job.stdout  # no run was graded


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal concerns a caller that is root")
def test_root_without_any_reachable_interpreter_refuses_instead_of_running_as_root(monkeypatch):
    # isolation_report() used to fall back to running the code as root (RLIMIT_NPROC void)
    real = isolation_report()
    monkeypatch.setattr(sandbox, "isolation_report",
                        lambda: {**real, "uid_drop": False, "notes": ["none of ['/x/python'] is reachable"]})
    ran = []
    monkeypatch.setattr(sandbox.subprocess, "Popen", lambda *a, **k: ran.append(a) or pytest.fail("ran"))
    with pytest.raises(SandboxUnreachableError, match=r"none of \['/x/python'\] is reachable.*never run as root"):
        run_untrusted("print(1)", **FAST)
    assert not ran
