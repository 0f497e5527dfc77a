"""Run untrusted, model-generated Python in a sandboxed subprocess (Linux, standard library only).

Generated code (MBPP, BigCodeBench completions) is verified by running it against the task's
tests. That must never happen in the calling (notebook) process: :func:`run_untrusted` runs it in
a fresh interpreter in isolated mode (``python -I -S -B``), in a throw-away working directory,
with an environment that holds only ``PATH``, ``LANG``, ``HOME``/``TMPDIR`` (= the working
directory) and thread-count variables, so no secret of the parent's environment reaches it.

Threat model: what is and is not isolated
-----------------------------------------
The protections come in two layers, and only the first one is a security boundary.

**Enforced by the operating system** (hold even if the code subverts the Python runtime):

* wall-clock timeout; the child runs in a new session and its whole process group is killed
  with ``SIGKILL`` when it ends or times out;
* ``RLIMIT_AS`` (address space, ``memory_mb``), ``RLIMIT_CPU``, ``RLIMIT_FSIZE`` (largest file,
  also caps the captured stdout/stderr), ``RLIMIT_NOFILE``, ``RLIMIT_CORE = 0``;
* ``PR_SET_NO_NEW_PRIVS`` (set-uid binaries gain nothing);
* when the caller is root: the child drops to a fresh, random, unprivileged uid with no groups.
  That makes ``RLIMIT_NPROC`` (``max_processes``, counts processes *and* threads per uid)
  effective, which it is not for root, so a fork bomb is capped at ``max_processes``; after
  every run all processes of that uid are killed, including any that escaped the process group
  with ``setsid``. The uid can also not signal, ptrace or read ``/proc/<pid>/environ`` of the
  caller's processes, and can only write where "others" may write;
* when available (root, or unprivileged user namespaces): a new, empty network namespace
  (``unshare(CLONE_NEWNET)``, what ``unshare -n`` does), so there is no network at all, not even
  loopback to services of the host. :func:`isolation_report` says which of these apply.

**Enforced by an audit hook** (``sys.addaudithook``, installed by a bootstrap prelude before the
untrusted code runs). It refuses process creation (``os.fork``, ``os.system``, ``os.exec*``,
``os.posix_spawn``, ``subprocess.Popen``, ``pty.spawn``), non-``AF_UNIX`` sockets and DNS look-ups,
``ctypes``/``cffi``, and opening for writing, creating, removing, renaming or linking files
outside the working directory (``/dev/null`` excepted). A refusal raises
:class:`PermissionError` (``ImportError`` for imports) and prints ``calcas-sandbox: refused``.
**An audit hook is not a security boundary**: in-process code can bypass it (for example
``_posixsubprocess.fork_exec`` raises no audit event in CPython 3.11, and a program can
monkey-patch the modules the hook relies on). It turns accidents and naive attempts into
clean, reported refusals; the OS layer above is what contains a determined attacker.

**Checked before each run** (when the uid is dropped): that the fresh uid can read what the code
needs to import, the interpreter's own import path (standard library), the site-packages passed
with ``allow_site_packages`` and the top-level modules the code names. Where it cannot (the project
or its virtual environment under a 0700 folder such as a ``mktemp -d`` folder or a home folder),
every import would fail and correct code would be graded as wrong, so :func:`run_untrusted` raises
:class:`SandboxUnreachableError`, naming the path, the folder that blocks it and the fix, instead
of running. The interpreter is probed once per process; a path found readable is not looked at
again, one found unreadable is looked at again on the next run (so a fix takes effect at once).

**Not isolated here**: the file system is not hidden. The child can *read* everything that
is world-readable (the project's sources, ``/etc``), and without the hook it could write to
world-writable directories such as ``/tmp`` and ``/dev/shm`` (the uid drop protects the
caller's own files). Kernel attack surface is unrestricted (no seccomp). Pass/fail is judged by a
per-run nonce that the bootstrap prints only after the code has run to completion, so
``sys.exit(0)``/``os._exit(0)`` before the tests do not count as a pass; hostile code could
still read the nonce by introspection, so a *pass* is not tamper-proof against adversarial
code, only the containment is. A real deployment should add OS isolation of the file system and
system calls: a container, ``bubblewrap``/``firejail`` (read-only binds, private ``/tmp``,
seccomp) or a VM, and cgroups for memory and pids. Concurrent runs are independent (each gets its
own uid).
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.machinery
import json
import math
import os
import re
import secrets
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

__all__ = ["SandboxResult", "SandboxUnreachableError", "STATUSES", "run_untrusted", "isolation_report"]

STATUSES = ("passed", "failed", "timeout", "memory", "refused", "error")

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_PR_SET_NO_NEW_PRIVS = 38
_UID_LOW, _UID_SPAN = 2_000_000_000, 100_000_000  # random uids nobody on the host uses
_REFUSED_MARK = "calcas-sandbox: refused"
_BOOTSTRAP_ERROR = 121  # exit status of the bootstrap itself failing

# The prelude, run with `python -I -S -B -c`. It reads a JSON header line and the code from stdin,
# installs the audit hook, runs the code, and prints the nonce only if the code ran to the end.
_BOOTSTRAP = r'''
import sys, os
def _calcas_main():
    try:
        import json, linecache, traceback
        data = sys.stdin.buffer.read()
        header, _, code = data.partition(b"\n")
        cfg = json.loads(header)
        code = code.decode("utf-8", "replace")
        for p in cfg["path"]:
            sys.path.append(p)
        root = os.path.realpath(cfg["workdir"])
        os.chdir(root)
        nonce = cfg["nonce"].encode()
    except BaseException as exc:
        os.write(2, ("calcas-sandbox: bootstrap failed: %r\n" % (exc,)).encode())
        os._exit(121)
    if cfg["hook"]:
        sys.addaudithook(_calcas_hook(root))
    linecache.cache["<untrusted>"] = (len(code), None, code.splitlines(True), "<untrusted>")
    scope = {"__name__": "__sandbox__", "__builtins__": __builtins__}
    try:
        exec(compile(code, "<untrusted>", "exec"), scope)
        sys.stdout.flush()
    except BaseException:
        try:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(1)
    os.write(1, b"\n" + nonce + b"\n")
    os._exit(0)

def _calcas_hook(root, _os=os, _realpath=os.path.realpath, _write=os.write, _str=str, _isinstance=isinstance):
    import socket
    class SandboxRefused(PermissionError):
        pass
    class SandboxRefusedImport(ImportError):
        pass
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    af_unix = socket.AF_UNIX
    banned = frozenset({
        "os.fork", "os.forkpty", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.startfile",
        "subprocess.Popen", "pty.spawn", "socket.getaddrinfo", "socket.gethostbyname",
        "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.getnameinfo",
        "ctypes.dlopen", "ctypes.dlsym", "ctypes.call_function", "ctypes.cdata"})
    banned_imports = frozenset({"ctypes", "_ctypes", "cffi", "_cffi_backend"})
    # event -> indices of path arguments that must stay inside the working directory
    path_events = {
        "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,), "os.chown": (0,),
        "os.rename": (0, 1), "os.link": (0, 1), "os.symlink": (1,), "os.truncate": (0,),
        "os.utime": (0,), "os.setxattr": (0,), "os.removexattr": (0,), "os.chflags": (0,),
        "os.lchflags": (0,), "os.mkfifo": (0,), "os.mknod": (0,), "shutil.rmtree": (0,),
        "shutil.move": (0, 1), "shutil.copyfile": (1,), "shutil.copytree": (1,)}
    allowed = frozenset({"/dev/null"})

    def refuse(event, detail, cls=SandboxRefused):
        msg = "calcas-sandbox: refused %s %s" % (event, _str(detail)[:200])
        _write(2, (msg + "\n").encode("utf-8", "replace"))
        raise cls(msg)

    def inside(path):
        if _isinstance(path, int) or path is None:
            return True  # an already open descriptor
        path = _os.fsdecode(_os.fspath(path))
        if path in allowed:
            return True
        full = _realpath(path)
        return full == root or full.startswith(root + "/")

    def hook(event, args):
        if event in banned:
            refuse(event, args[:1])
        elif event == "import":
            if args[0] in banned_imports or args[0].split(".")[0] in banned_imports:
                refuse(event, args[0], SandboxRefusedImport)
        elif event == "open":
            path, mode, flags = args
            writing = (_isinstance(mode, _str) and any(c in mode for c in "wax+")) or (
                _isinstance(flags, int) and flags & write_flags)
            if writing and not inside(path):
                refuse("open for writing", path)
        elif event == "socket.__new__":
            if args[1] != af_unix:
                refuse(event, "family %s" % (args[1],))
        elif event in ("socket.connect", "socket.bind", "socket.sendto"):
            address = args[1]
            if not (_isinstance(address, (_str, bytes)) and inside(address)):
                refuse(event, address)
        elif event in path_events:
            for i in path_events[event]:
                if i < len(args) and not inside(args[i]):
                    refuse(event, args[i])
    return hook

_calcas_main()
'''


@dataclasses.dataclass(frozen=True)
class SandboxResult:
    """The outcome of one sandboxed run.

    Attributes
    ----------
    passed : bool
        True iff the code ran to completion (every test passed) and the interpreter exited 0.
    status : str
        One of :data:`STATUSES`: ``"passed"``; ``"failed"`` (an exception, a failed assert, a
        syntax error, an early exit); ``"timeout"`` (wall-clock or CPU limit); ``"memory"``
        (``MemoryError`` or killed by the kernel); ``"refused"`` (the audit hook refused an
        operation); ``"error"`` (the sandbox itself could not run the code).
    returncode : int or None
        The interpreter's exit status (negative: killed by that signal); None if it never ran.
    seconds : float
        Wall-clock seconds of the run.
    stdout_tail, stderr_tail : str
        The last characters of the child's standard output and error (nonce removed).
    isolation : tuple of str
        The protections applied to this run, e.g. ``("rlimits", "new-session", "uid-drop",
        "netns", "no-new-privs", "audit-hook")``.
    """

    passed: bool
    status: str
    returncode: int | None
    seconds: float
    stdout_tail: str
    stderr_tail: str
    isolation: tuple[str, ...] = ()


def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


class SandboxUnreachableError(RuntimeError):
    """The sandbox's unprivileged uid cannot read what the code needs to import.

    Every run would then fail as if the code were wrong, so :func:`run_untrusted` raises this
    instead of running. The message names each unreadable path, the folder that blocks it, and the
    fix.
    """


def _ancestors(path: str) -> list[str]:
    """The folders above an absolute ``path``, outermost first: ``"/a/b/c"`` -> ``["/", "/a", "/a/b"]``."""
    folders = []
    while (parent := os.path.dirname(path)) != path:
        folders.append(parent)
        path = parent
    return folders[::-1]


def _blocked_for_others(path: str, need: int) -> str | None:
    """Where a uid with no groups is stopped on its way to ``path``, going by the "others" mode bits.

    Parameters
    ----------
    path : str
        An existing file or folder.
    need : int
        The "others" bits ``path`` itself must have: ``0o001`` to execute a file, ``0o004`` to read
        one, ``0o005`` to import from a folder (list and enter it).

    Returns
    -------
    str or None
        The outermost folder on the way that others may not enter; else ``path`` if it lacks
        ``need``; else None. The path as written and its real path (links resolved) are both
        walked, as the kernel passes both. Security modules (SELinux, AppArmor) are not consulted.
    """
    for candidate in dict.fromkeys((os.path.abspath(path), os.path.realpath(path))):
        for folder in _ancestors(candidate):
            if not os.stat(folder).st_mode & 0o001:
                return folder
        if os.stat(candidate).st_mode & need != need:
            return candidate
    return None


def _world_executable(path: str) -> bool:
    """Whether a uid with no groups can execute ``path`` (every folder on the way enterable)."""
    path = os.path.realpath(path)
    return os.path.isfile(path) and _blocked_for_others(path, 0o001) is None


def _child_setup(*, unshare_flags: int, uid: int | None, memory_mb: int, cpu_s: int,
                 max_processes: int, max_file_mb: int, libc) -> None:
    """Runs in the forked child before exec: namespaces, limits, privileges (OS layer)."""
    import resource

    if unshare_flags and libc.unshare(unshare_flags) != 0:
        err = _errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")
    if libc is not None:
        libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    limits = [
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_FSIZE, max_file_mb * 2**20),
        (resource.RLIMIT_NPROC, max_processes),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, 256),
    ]
    for which, value in limits:
        resource.setrlimit(which, (value, value))
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.umask(0o077)
    # last: the forked child may already use more address space than the cap (exec resets it)
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()


def _uid_pids(uid: int) -> list[int]:
    """Live (not zombie) processes owned by ``uid``."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid != uid:
                    continue
                with open(f"/proc/{name}/stat", "rb") as f:
                    state = f.read().rsplit(b")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state not in (b"Z", b"X"):  # zombies hold no resources but a pid; init reaps them
                pids.append(int(name))
    return pids


def _kill_uid(uid: int) -> None:
    """Kill every process of the sandbox uid: ``kill(-1, SIGKILL)`` from a child with that uid."""
    for _ in range(50):
        if not _uid_pids(uid):
            return
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)  # every process this uid may signal, except itself
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.01)


def _fresh_uid() -> int:
    """A random uid that nobody on the host uses, for one sandboxed process tree."""
    return _UID_LOW + secrets.randbelow(_UID_SPAN)


# `import a.b as c, d` and `from a.b import c` at the start of a line; relative imports do not match
_IMPORT_RE = re.compile(r"^[ \t]*(?:from[ \t]+(\w+)|import[ \t]+([\w. \t,]+))", re.MULTILINE)
# Run by the sandbox's interpreter under a fresh uid: it prints its own import path
_PATH_PROBE = "import sys; sys.stdout.write('\\0'.join(sys.path))"
_NON_ROOT = "or run as a non-root user (the sandbox then runs code under your own uid)"
_probe_lock = threading.Lock()
_importable: set[str] = set()  # paths found readable by the sandbox uid (an unreadable one is looked at again)


def _imported_names(code: str) -> set[str]:
    """The top-level modules that ``code`` names in ``import`` / ``from ... import`` lines.

    A scan of the text (nothing of it runs): names in strings count too, those after ``;`` do not.
    """
    names = set()
    for source, listed in _IMPORT_RE.findall(code):
        for part in [source] if source else listed.split(","):
            words = part.split()
            if words and (name := words[0].split(".")[0]).isidentifier():
                names.add(name)
    return names


@functools.lru_cache(maxsize=None)
def _child_sys_path(python: str) -> tuple[str, ...]:
    """The import path of ``python`` started as the sandbox starts it, under a fresh unprivileged uid.

    Raises
    ------
    SandboxUnreachableError
        ``python`` does not start under that uid (for instance a shared library it loads, or its
        standard library, lies under a folder others may not enter).
    """
    uid = _fresh_uid()
    setup = functools.partial(_child_setup, unshare_flags=0, uid=uid, memory_mb=512, cpu_s=10, max_processes=16,
                              max_file_mb=1, libc=None)
    try:
        probe = subprocess.run([python, "-I", "-S", "-B", "-c", _PATH_PROBE], env={}, cwd="/",
                               capture_output=True, timeout=30, preexec_fn=setup)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxUnreachableError(f"the sandbox could not start {python} under an unprivileged uid: {exc!r}. "
                                      f"Fix: install Python where other users may run it, {_NON_ROOT}.") from exc
    finally:
        _kill_uid(uid)
    if probe.returncode != 0:
        stderr = probe.stderr.decode("utf-8", "replace").strip()[-1000:]
        raise SandboxUnreachableError(f"{python} does not start under the sandbox's unprivileged uid "
                                      f"(exit {probe.returncode}): {stderr}. Fix: install Python where other "
                                      f"users may run it, {_NON_ROOT}.")
    return tuple(p for p in probe.stdout.decode("utf-8", "surrogateescape").split("\0") if p)


@functools.lru_cache(maxsize=4096)
def _module_places(name: str, path: tuple[str, ...]) -> tuple[str, ...]:
    """Where a top-level module is loaded from on ``path``: its file and, for a package, its folders.

    Empty for a module not found there (built in, or not installed: then the code fails, as it should).
    """
    spec = importlib.machinery.PathFinder.find_spec(name, list(path))
    if spec is None:
        return ()
    return ((spec.origin,) if spec.has_location else ()) + tuple(spec.submodule_search_locations or ())


def _import_blocker(path: str) -> str | None:
    """Where the sandbox uid is stopped on its way to import from ``path`` (a folder or a file), or None."""
    if path in _importable:
        return None
    blocker = _blocked_for_others(path, 0o005 if os.path.isdir(path) else 0o004)
    if blocker is None:
        _importable.add(path)
    return blocker


def _check_reach(python: str, extra_path: tuple[str, ...], code: str) -> None:
    """Raise :class:`SandboxUnreachableError` unless the sandbox uid can read what ``code`` imports.

    That is every existing entry of the child's import path (``python``'s own, then ``extra_path``)
    and the file and folders of each top-level module that ``code`` names.
    """
    with _probe_lock:  # the threads of verify_batch share one probe
        path = _child_sys_path(python) + extra_path
    needed = [p for p in path if os.path.exists(p)]
    for name in sorted(_imported_names(code)):
        needed += _module_places(name, path)
    blocked = {p: blocker for p in needed if (blocker := _import_blocker(p))}
    if not blocked:
        return
    lines = []
    for p, blocker in blocked.items():
        mode = stat.S_IMODE(os.stat(blocker).st_mode)
        lines.append(f"  {p}: other users may not read it (mode {mode:04o})"
                     if blocker in (os.path.abspath(p), os.path.realpath(p)) else
                     f"  {p}: other users may not enter {blocker} (mode {mode:04o})")
    # folders around what is needed (a mktemp -d folder, a home folder), not an import folder itself
    around = [b for b in dict.fromkeys(blocked.values()) if b not in blocked]
    fix = f"move the project and its virtual environment out of {', '.join(around)}, or " if around else ""
    raise SandboxUnreachableError(
        "the sandbox runs code under a fresh unprivileged uid (the caller is root), and that uid cannot read "
        "what the code imports, so every run would fail as if the answer were wrong:\n" + "\n".join(lines) +
        f"\nFix: {fix}make these readable by other users (chmod o+x on a folder on the way, o+rX on what is "
        f"imported), {_NON_ROOT}.")


@functools.lru_cache(maxsize=None)
def isolation_report() -> dict[str, Any]:
    """Which OS protections this machine allows, probed once by starting tiny children.

    Returns
    -------
    dict
        ``python`` (interpreter used for sandboxed runs), ``uid_drop`` (bool: runs under a fresh
        unprivileged uid, so ``RLIMIT_NPROC`` holds), ``netns`` (bool: new network namespace),
        ``unshare_flags`` (int), ``no_new_privs`` (bool), ``notes`` (list of str).
    """
    if not sys.platform.startswith("linux"):
        raise RuntimeError("calcas.extract.sandbox needs Linux")
    notes: list[str] = []
    try:
        libc = _libc()
    except OSError:
        libc = None
        notes.append("libc not loadable through ctypes: no namespaces, no PR_SET_NO_NEW_PRIVS")
    root = os.geteuid() == 0
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable, f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    python, uid_drop = os.path.realpath(sys.executable), False
    if root:
        usable = [c for c in candidates if _world_executable(c)]
        if usable:
            python, uid_drop = os.path.realpath(usable[0]), True
            if usable[0] != sys.executable:
                notes.append(f"{sys.executable} is not reachable by an unprivileged uid; using {python}")
        else:
            notes.append(f"none of {candidates} is reachable by an unprivileged uid")
    else:
        notes.append("not root: RLIMIT_NPROC counts all of the caller's processes")

    def probe(flags: int) -> bool:
        try:
            r = subprocess.run([python, "-I", "-S", "-c", "pass"], env={}, cwd="/", capture_output=True,
                               timeout=10, preexec_fn=functools.partial(
                                   _child_setup, unshare_flags=flags, uid=None, memory_mb=512, cpu_s=10,
                                   max_processes=4096, max_file_mb=1, libc=libc))
            return r.returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False

    flags = 0
    if libc is not None:
        for candidate in ((_CLONE_NEWNET,) if root else (_CLONE_NEWUSER | _CLONE_NEWNET,)):
            if probe(candidate):
                flags = candidate
                break
        else:
            notes.append("unshare(CLONE_NEWNET) not permitted: network is refused by the audit hook only")
    return {"python": python, "uid_drop": uid_drop, "netns": bool(flags), "unshare_flags": flags,
            "no_new_privs": libc is not None, "notes": notes}


def _tail(path: str, chars: int) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 4 * chars))
        return f.read().decode("utf-8", "replace")[-chars:]


def run_untrusted(code: str, *, timeout_s: float = 10.0, memory_mb: int = 512, max_processes: int = 16,
                  max_file_mb: int = 16, allow_site_packages: bool = False, audit_hook: bool = True,
                  tail_chars: int = 4000) -> SandboxResult:
    """Run untrusted Python source in a sandboxed subprocess and report whether it ran cleanly.

    The code never runs in the calling process. See the module docstring for what is and is not
    isolated.

    Parameters
    ----------
    code : str
        Python source, typically a solution followed by its tests (asserts that raise on failure).
        It runs as a module named ``"__sandbox__"`` (so ``if __name__ == "__main__":`` blocks are
        skipped), with an empty stdin.
    timeout_s : float
        Wall-clock limit in seconds; the CPU limit is ``ceil(timeout_s) + 1`` seconds.
    memory_mb : int
        Address-space cap (``RLIMIT_AS``) in MiB.
    max_processes : int
        ``RLIMIT_NPROC``: processes and threads of the sandbox uid (effective when the uid is dropped).
    max_file_mb : int
        ``RLIMIT_FSIZE`` in MiB: the largest file the code may write, stdout/stderr included.
    allow_site_packages : bool
        Also make the caller's site-packages importable (numpy, pandas, ... for BigCodeBench).
        Default False: the standard library only.
    audit_hook : bool
        Install the refusing audit hook. Only turn it off to test the OS layer alone.
    tail_chars : int
        How many trailing characters of stdout and stderr to keep.

    Returns
    -------
    SandboxResult
        ``passed`` is True iff the code ran to the end and the interpreter exited 0.

    Raises
    ------
    SandboxUnreachableError
        The code would run under a fresh unprivileged uid that cannot read the interpreter's import
        path, the site-packages or a module the code imports (see the module docstring): no run
        could pass, so none is graded.
        Also when the caller is root and no interpreter is reachable by an unprivileged uid at
        all: the code is then not run, rather than run as root.
    """
    started = time.perf_counter()
    try:
        report = isolation_report()
        libc = _libc() if report["no_new_privs"] or report["netns"] else None
    except (OSError, RuntimeError) as exc:
        return SandboxResult(False, "error", None, time.perf_counter() - started, "", repr(exc))
    if os.geteuid() == 0 and not report["uid_drop"]:
        raise SandboxUnreachableError(
            "no Python interpreter is reachable by an unprivileged uid (" + "; ".join(report["notes"]) + "), "
            "and untrusted code is never run as root. Fix: make an interpreter of this Python version "
            "readable and executable by other users (chmod o+rx on it and o+x on the folders on its way), "
            "or run as a non-root user.")
    uid = _fresh_uid() if report["uid_drop"] else None
    isolation = ["rlimits", "new-session", "empty-env"]
    isolation += ["uid-drop"] if uid is not None else []
    isolation += ["netns"] if report["netns"] else []
    isolation += ["no-new-privs"] if libc is not None else []
    isolation += ["audit-hook"] if audit_hook else []
    nonce = secrets.token_hex(16)
    extra_path: list[str] = []
    if allow_site_packages:
        import site

        extra_path = [p for p in site.getsitepackages() if os.path.isdir(p)]
    if uid is not None:
        _check_reach(report["python"], tuple(extra_path), code)
    with tempfile.TemporaryDirectory(prefix="calcas_sandbox_") as outer:
        os.chmod(outer, 0o711)  # the sandbox uid may pass through, not list
        workdir = os.path.join(outer, "work")
        os.mkdir(workdir, 0o700)
        if uid is not None:
            os.chown(workdir, uid, uid)
        out_path, err_path = os.path.join(outer, "stdout"), os.path.join(outer, "stderr")
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir,
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        header = json.dumps({"nonce": nonce, "workdir": workdir, "hook": audit_hook, "path": extra_path})
        payload = header.encode() + b"\n" + code.encode("utf-8", "surrogatepass")
        preexec = functools.partial(
            _child_setup, unshare_flags=report["unshare_flags"], uid=uid, memory_mb=memory_mb,
            cpu_s=int(math.ceil(timeout_s)) + 1, max_processes=max_processes, max_file_mb=max_file_mb,
            libc=libc)
        timed_out, returncode = False, None
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen([report["python"], "-I", "-S", "-B", "-c", _BOOTSTRAP],
                                        stdin=subprocess.PIPE, stdout=out, stderr=err, cwd=workdir, env=env,
                                        start_new_session=True, preexec_fn=preexec, close_fds=True)
            except (OSError, subprocess.SubprocessError) as exc:
                return SandboxResult(False, "error", None, time.perf_counter() - started, "",
                                     f"could not start the sandbox: {exc!r}", tuple(isolation))
            try:
                try:
                    proc.communicate(payload, timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    timed_out = True
                except BrokenPipeError:  # the child died before reading its code
                    pass
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                returncode = proc.wait()
                if uid is not None:
                    _kill_uid(uid)
        seconds = time.perf_counter() - started
        stdout, stderr = _tail(out_path, tail_chars + 40), _tail(err_path, tail_chars)
    completed = returncode == 0 and nonce in stdout
    stdout = stdout.replace("\n" + nonce + "\n", "")[-tail_chars:]
    if timed_out or returncode == -signal.SIGXCPU:
        status = "timeout"
    elif completed:
        status = "passed"
    elif "MemoryError" in stderr or returncode == -signal.SIGKILL:
        status = "memory"
    elif _REFUSED_MARK in stderr:
        status = "refused"
    elif returncode == _BOOTSTRAP_ERROR and "calcas-sandbox: bootstrap failed" in stderr:
        status = "error"
    else:
        status = "failed"
    return SandboxResult(status == "passed", status, returncode, seconds, stdout, stderr, tuple(isolation))
