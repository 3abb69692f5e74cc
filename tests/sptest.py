"""The test scripts' harness (tests/*/*.py): one way to check, fail, skip and end a test.

A script imports it with its folder's parent on sys.path:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from sptest import Failure, check, ok  # noqa: E402

A check that does not hold raises Failure; a test that cannot run here raises Skip, which ends it
with exit status SKIP (77): ctest reports it skipped, and scripts/test fails the run unless
tests/allowed-skips lists the test.
"""
import os
import shutil
import sys
import traceback

SKIP = 77


class Failure(Exception):
    """A property the test checks did not hold."""


class Skip(Exception):
    """The test cannot run on this machine; the message says what is missing."""


def check(cond, what):
    if not cond:
        raise Failure(what)


def ok(cond, what):
    """check(), and say so: the log then shows how far a failing test got."""
    check(cond, what)
    print(f"ok - {what}", flush=True)


def need_root(why):
    if os.geteuid() != 0:
        raise Skip(f"needs root ({why})")


def need_tools(*tools):
    for tool in tools:
        if not shutil.which(tool):
            raise Skip(f"{tool} not installed")


def scenario_main(scenarios, usage, make_env, prepare=None):
    """The main of a script run as `SCRIPT ARGS... SCENARIO` (one ctest test per scenario).

    prepare() checks the machine (it may raise Skip); make_env(*ARGS) builds the environment, which
    has cleanup() and, to explain a failure, may have dump_log(). Returns the exit status."""
    nargs = usage.count(" ") + 1
    if len(sys.argv) != nargs + 2 or sys.argv[-1] not in scenarios:
        sys.stderr.write(f"usage: {sys.argv[0]} {usage} {{{','.join(sorted(scenarios))}}}\n")
        return 2
    name, env = sys.argv[-1], None
    try:
        if prepare:
            prepare()
        env = make_env(*sys.argv[1:-1])
        scenarios[name](env)
    except Skip as e:
        print(f"skipped: {e}")
        return SKIP
    except Exception:
        traceback.print_exc()
        if env is not None and hasattr(env, "dump_log"):
            env.dump_log()
        return 1
    finally:
        if env is not None:
            env.cleanup()
    print(f"ok: {name}")
    return 0


def file_tail(path, lines=40):
    """The end of a log (a guest's console) to print after a failure; "" when there is none."""
    try:
        with open(path, errors="replace") as f:
            return f"{path} (end):\n" + "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def report(name, body, explain=None, failures=(Failure,)):
    """Runs body(); prints PASS or FAIL with the test's name, and explain() (a console's tail)
    after a failure. Returns the exit status."""
    try:
        body()
    except failures as e:
        print(f"FAIL {name}: {e}", file=sys.stderr)
        if explain:
            print(explain(), file=sys.stderr)
        return 1
    print(f"PASS {name}", flush=True)
    return 0


def run_functions(namespace, *args, prefix="test_", setup=None):
    """Runs every function of namespace (a module's globals()) whose name starts with prefix,
    each with args (and what setup() gives, if there is a setup), and goes on after a failure.
    Returns the exit status."""
    failed = 0
    for name, fn in sorted((n, f) for n, f in namespace.items()
                           if n.startswith(prefix) and callable(f)):
        try:
            if setup:
                with setup() as extra:
                    fn(*args, extra)
            else:
                fn(*args)
            print(f"ok   {name}", flush=True)
        except (AssertionError, Failure) as e:
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
    return 1 if failed else 0


class Problems:
    """Checks that go on after a problem (every missing file of a package, every undocumented
    option), and fail the test at the end."""

    def __init__(self, stream=sys.stdout):
        self.found = []
        self.stream = stream

    def fail(self, message):
        self.found.append(message)
        print(f"FAIL: {message}", file=self.stream, flush=True)

    def status(self):
        return 1 if self.found else 0
