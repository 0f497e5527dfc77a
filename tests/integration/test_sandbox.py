"""Tests of calcas.extract.sandbox and calcas.extract.verifiers: hostile code is stopped or
refused, reported as not passed, and the calling process carries on; GSM8K and code verifiers."""
from __future__ import annotations

import os
import secrets
import socket
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox needs Linux")

from calcas.extract.sandbox import STATUSES, SandboxResult, isolation_report, run_untrusted  # noqa: E402
from calcas.extract.verifiers import (  # noqa: E402
    extract_code,
    gsm8k_final_number,
    gsm8k_verify,
    verify_code,
)

FAST = dict(timeout_s=3.0, memory_mb=256, max_processes=8)


def sandbox_pids() -> list[int]:
    """Processes still alive under a sandbox uid (there must be none after a run)."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if not 2_000_000_000 <= os.stat(f"/proc/{name}").st_uid < 2_100_000_000:
                    continue
                with open(f"/proc/{name}/stat", "rb") as f:
                    state = f.read().rsplit(b")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != b"Z":  # zombies are reaped by init, they hold nothing but a pid
                pids.append(int(name))
    return pids


def assert_still_works() -> None:
    """The calling process survived and a normal call still passes."""
    result = run_untrusted("assert sum(range(4)) == 6\nprint('ok')", **FAST)
    assert result.passed and result.status == "passed", result
    assert "ok" in result.stdout_tail
    assert not sandbox_pids()


def needs(feature):
    return pytest.mark.skipif(not isolation_report()[feature], reason=f"{feature} not available here")


# --- normal runs -----------------------------------------------------------------------------


def test_normal_run_passes_and_reports():
    result = run_untrusted("x = [i * i for i in range(5)]\nassert x[-1] == 16\nprint('done')", **FAST)
    assert isinstance(result, SandboxResult)
    assert result.passed and result.status == "passed" and result.returncode == 0
    assert result.stdout_tail.strip() == "done"  # the nonce is not shown
    assert result.status in STATUSES and result.seconds < 3
    assert {"rlimits", "new-session", "empty-env", "audit-hook"} <= set(result.isolation)


def test_failures_and_early_exits_do_not_pass():
    for code in ("assert 1 == 2", "raise ValueError('x')", "def f(:\n  pass",
                 "import sys; sys.exit(0)\nassert False", "import os; os._exit(0)\nassert False", "quit()"):
        result = run_untrusted(code, **FAST)
        assert not result.passed and result.status == "failed", (code, result)
    assert "SyntaxError" in run_untrusted("def f(:\n  pass", **FAST).stderr_tail


def test_main_block_is_skipped_and_stdin_is_empty():
    code = "if __name__ == '__main__':\n    raise SystemExit(1)\ntry:\n    input()\nexcept EOFError:\n    pass"
    assert run_untrusted(code, **FAST).passed


def test_writing_inside_the_working_directory_is_allowed():
    code = ("import os, tempfile\nopen('a.txt', 'w').write('hi')\nassert open('a.txt').read() == 'hi'\n"
            "os.mkdir('d'); os.rename('a.txt', 'd/b.txt'); os.remove('d/b.txt')\n"
            "with tempfile.NamedTemporaryFile('w') as f: f.write('x')\n"
            "open(os.devnull, 'w').write('discarded')")
    result = run_untrusted(code, **FAST)
    assert result.passed, result


# --- hostile code: stopped or refused, and the run goes on -----------------------------------


def test_infinite_loop_times_out():
    result = run_untrusted("while True:\n    pass", timeout_s=1.0, memory_mb=256)
    assert not result.passed and result.status == "timeout"
    assert result.seconds < 5
    assert_still_works()


def test_sleeping_child_process_group_is_killed():
    result = run_untrusted("import time\ntime.sleep(60)", timeout_s=1.0, memory_mb=256)
    assert result.status == "timeout" and result.seconds < 5
    assert_still_works()


def test_fork_bomb_is_refused():
    result = run_untrusted("import os\nwhile True:\n    os.fork()", **FAST)
    assert not result.passed and result.status == "refused"
    assert "os.fork" in result.stderr_tail
    assert_still_works()


@needs("uid_drop")
def test_fork_bomb_is_contained_by_the_os_without_the_hook():
    """With the audit hook off, RLIMIT_NPROC under the dropped uid caps the bomb; all of it is killed."""
    result = run_untrusted("import os\nwhile True:\n    os.fork()", timeout_s=2.0, memory_mb=256,
                           max_processes=8, audit_hook=False)
    assert not result.passed and result.status in ("failed", "timeout")
    assert result.seconds < 6
    assert not sandbox_pids()
    # a bomb that survives its failed forks runs to the timeout; then every process of the uid dies
    persistent = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = run_untrusted(persistent, timeout_s=1.5, memory_mb=256, max_processes=8, audit_hook=False)
    assert not result.passed and result.status == "timeout" and result.seconds < 6
    assert not sandbox_pids()
    assert_still_works()


def test_output_flood_is_capped_by_file_size_limit():
    result = run_untrusted("while True:\n    print('x' * 1000)", timeout_s=3.0, memory_mb=256, max_file_mb=1)
    assert not result.passed and "File too large" in result.stderr_tail
    assert len(result.stdout_tail) <= 4000


def test_isolation_report():
    report = isolation_report()
    assert {"python", "uid_drop", "netns", "unshare_flags", "no_new_privs", "notes"} <= set(report)
    assert isinstance(report["uid_drop"], bool) and isinstance(report["netns"], bool)
    assert os.access(report["python"], os.X_OK)


@needs("uid_drop")
def test_thread_count_is_capped_by_the_os():
    code = "import threading, time\nfor _ in range(64):\n    threading.Thread(target=time.sleep, args=(3,)).start()"
    result = run_untrusted(code, timeout_s=2.0, memory_mb=256, max_processes=8, audit_hook=False)
    assert not result.passed and "can't start new thread" in result.stderr_tail


def test_huge_allocation_hits_the_memory_cap():
    result = run_untrusted("x = bytearray(10 * 1024 ** 3)", **FAST)
    assert not result.passed and result.status == "memory"
    assert "MemoryError" in result.stderr_tail
    assert_still_works()


@pytest.fixture
def listener():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    yield server
    server.close()


def no_connection_arrived(server) -> bool:
    try:
        conn, _ = server.accept()
    except (socket.timeout, TimeoutError):
        return True
    conn.close()
    return False


def test_socket_connect_is_refused(listener):
    port = listener.getsockname()[1]
    for code in (f"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))",
                 f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)",
                 "import socket\nsocket.socket(socket.AF_INET6, socket.SOCK_STREAM)",
                 "import socket\nsocket.gethostbyname('example.com')"):
        result = run_untrusted(code, **FAST)
        assert not result.passed and result.status == "refused", (code, result)
    assert no_connection_arrived(listener)
    assert_still_works()


@needs("netns")
def test_network_namespace_blocks_loopback_without_the_hook(listener):
    port = listener.getsockname()[1]
    code = f"import socket\ns = socket.socket()\ns.settimeout(1)\ns.connect(('127.0.0.1', {port}))"
    result = run_untrusted(code, **FAST, audit_hook=False)
    assert not result.passed and result.status == "failed"
    assert "Network is unreachable" in result.stderr_tail
    assert no_connection_arrived(listener)


def test_writing_outside_the_working_directory_is_refused(tmp_path):
    target = f"/tmp/calcas_sandbox_escape_{secrets.token_hex(8)}"
    attempts = (
        f"open({target!r}, 'w').write('escaped')",
        f"open({target!r}, 'a').write('escaped')",
        f"import os\nos.close(os.open({target!r}, os.O_WRONLY | os.O_CREAT))",
        f"import os\nos.symlink({target!r}, 'link')\nopen('link', 'w').write('escaped')",
        f"import pathlib\npathlib.Path({target!r}).write_text('escaped')",
        "import os\nos.makedirs('../../calcas_sandbox_dir')",
        f"import os\nos.remove({str(tmp_path / 'keep')!r})",
    )
    (tmp_path / "keep").write_text("mine")
    for code in attempts:
        result = run_untrusted(code, **FAST)
        assert not result.passed and result.status == "refused", (code, result)
        assert not os.path.exists(target)
    assert (tmp_path / "keep").read_text() == "mine"
    assert_still_works()


def test_subprocesses_are_refused():
    for code in ("import subprocess\nsubprocess.run(['ls'])", "import os\nos.system('ls')",
                 "import os\nos.execv('/bin/ls', ['ls'])", "import os\nos.posix_spawn('/bin/ls', ['ls'], {})",
                 "import ctypes"):
        result = run_untrusted(code, **FAST)
        assert not result.passed and result.status == "refused", (code, result)
    assert_still_works()


def test_environment_secrets_are_not_visible(monkeypatch):
    secret = secrets.token_hex(16)
    monkeypatch.setenv("CALCAS_TEST_SECRET", secret)
    code = "import os\nprint(sorted(os.environ))\nassert 'CALCAS_TEST_SECRET' not in os.environ"
    result = run_untrusted(code, **FAST)
    assert result.passed, result
    assert secret not in result.stdout_tail and "CALCAS_TEST_SECRET" not in result.stdout_tail


@needs("uid_drop")
def test_parent_environment_is_unreadable_through_proc(monkeypatch):
    secret = secrets.token_hex(16)
    monkeypatch.setenv("CALCAS_TEST_SECRET", secret)
    code = f"print(open('/proc/{os.getpid()}/environ').read())\nprint(open('/proc/{os.getpid()}/cmdline').read())"
    result = run_untrusted(code, **FAST)
    assert not result.passed and "PermissionError" in result.stderr_tail
    assert secret not in result.stdout_tail + result.stderr_tail


# --- verifiers --------------------------------------------------------------------------------

MBPP_TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0"


def test_verify_code_correct_wrong_and_broken():
    good = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
    wrong = "```python\ndef add(a, b):\n    return a - b\n```"
    broken = "```python\ndef add(a, b)\n    return a + b\n```"
    assert verify_code(good, MBPP_TESTS, timeout_s=3, memory_mb=256) == 1.0
    assert verify_code(wrong, MBPP_TESTS, timeout_s=3, memory_mb=256) == 0.0
    assert verify_code(broken, MBPP_TESTS, timeout_s=3, memory_mb=256) == 0.0
    hostile = "```python\nimport os\ndef add(a, b):\n    os.system('ls')\n    return a + b\n```"
    assert verify_code(hostile, MBPP_TESTS, timeout_s=3, memory_mb=256) == 0.0


def test_extract_code():
    assert extract_code("```python\nx = 1\n```\n```python\ny = 2\n```") == "x = 1\n"
    assert extract_code("text\n```\nplain = 1\n```\n```py\ntagged = 1\n```") == "tagged = 1\n"
    assert extract_code("```\nplain = 1\n```") == "plain = 1\n"
    assert extract_code("def f():\n    return 1") == "def f():\n    return 1"
    assert extract_code("```python\nunclosed = 1\n") == "unclosed = 1\n"


@pytest.mark.parametrize("text, expected", [
    ("The answer is 1,234.", "1234"),
    ("She pays 3 + 4 = 7 dollars.\n#### 72", "72"),
    ("#### 1,000,000", "1000000"),
    ("No number here.", None),
    ("", None),
    ("It costs $3.50 in total.", "3.50"),
    ("The temperature is -5 degrees", "-5"),
    ("first 12 then 2,3 and 4", "4"),
])
def test_gsm8k_final_number(text, expected):
    assert gsm8k_final_number(text) == expected


def test_gsm8k_verify():
    assert gsm8k_verify("So the total is 3.50", "3.5") == 1.0
    assert gsm8k_verify("The answer is 1,234.", "Reasoning...\n#### 1234") == 1.0
    assert gsm8k_verify("#### 72", 72) == 1.0
    assert gsm8k_verify("The answer is 71.", "72") == 0.0
    assert gsm8k_verify("I do not know.", "72") == 0.0


def test_verify_code_stops_when_the_sandbox_could_not_start(monkeypatch):
    # a child that never ran used to count as a wrong answer (0.0)
    import calcas.extract.verifiers as verifiers
    from calcas.extract.sandbox import SandboxResult
    monkeypatch.setattr(verifiers, "run_untrusted", lambda *a, **k: SandboxResult(
        False, "error", None, 0.0, "", "could not start the sandbox: OSError(12, 'Cannot allocate memory')"))
    with pytest.raises(RuntimeError, match=r"sandbox: could not run the code at all \(could not start the sandbox"):
        verify_code("def f(): pass", MBPP_TESTS, timeout_s=3, memory_mb=256)
