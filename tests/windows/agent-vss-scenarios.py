#!/usr/bin/python3
"""VSS outcomes through the Windows agent's protocol, on its fake VSS backend (under wine):
a writer failing at freeze, the provider's hold limit, a VSS call failing. Each scenario starts
the agent with its own STILLPOINT_FAKE_VSS spec. --backend shipped runs a build without
SP_TEST_HOOKS: neither --fake-vss nor the environment may select the fake there.

  agent-vss-scenarios.py [--timeout S] [--backend fake|real|all|shipped] -- AGENT-COMMAND ...
                         --tcp 127.0.0.1:{port}

The real-VSS scenario creates the agent's named events (Global\\stillpoint-vss-*): it must not
run at the same time as another process that does (test-provider.exe, under the same prefix).
"""
import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "conformance", os.path.join(HERE, "..", "conformance", "agent-conformance.py"))
conf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conf)
expect_error = conf.expect_error
sys.path.insert(0, os.path.join(HERE, ".."))
from sptest import Failure, check  # noqa: E402


def scenario_writer_failing_at_freeze(c):
    r = c.ok("stillpoint-freeze", {"lease-ms": 30000})
    t = c.ok("stillpoint-thaw", {"epoch": r["epoch"]})
    check(t["consistent"] is False, "consistent: %s" % t)
    check(t["reason"] == "writer-failed", "reason: %s" % t)
    check(t.get("failed-writer") == "SqlServerWriter", "failed-writer: %s" % t)
    # The Linux agent's members (name, phase, result, message), plus VSS's state.
    failed = [w for w in t["writers"] if w["result"] != "ok"]
    check(len(failed) == 1 and failed[0]["state"] == "failed-at-freeze", "writers: %s" % t)
    w = failed[0]
    check(w["name"] == "SqlServerWriter" and w["phase"] == "freeze"
          and w["result"] == "timeout", "failed writer: %s" % w)
    check(w["message"] == "error 0x800423f2: VSS_E_WRITERERROR_TIMEOUT", "message: %s" % w)
    for ok in t["writers"]:
        check({"name", "phase", "result", "state"} <= set(ok), "writer members: %s" % ok)
        if ok is not w:
            check((ok["phase"], ok["result"]) == ("freeze", "ok") and "message" not in ok,
                  "writer: %s" % ok)
    st = c.ok("stillpoint-status")
    check(st["last-thaw"]["writers"] == t["writers"], "last-thaw.writers: %s" % st)
    # The standard thaw fails: the snapshot taken meanwhile is not consistent.
    check(c.ok("guest-fsfreeze-freeze") == 2, "standard freeze")
    expect_error(c.call("guest-fsfreeze-thaw"), "GenericError",
                 desc="the freeze did not hold (writer-failed, writer SqlServerWriter): a "
                      "snapshot taken since the freeze is not consistent")
    check(c.ok("guest-fsfreeze-status") == "thawed", "thawed after the failed thaw")


def scenario_provider_hold_limit(c):
    r = c.ok("stillpoint-freeze", {"lease-ms": 30000})
    check(r["lease-ms"] == 10000 and r["hold-limit-ms"] == 10000, "window: %s" % r)
    check(conf.wait_status(c, "thawed", 10), "still frozen after the provider let go")
    t = c.ok("stillpoint-thaw")
    check(t["consistent"] is False and t["reason"] == "hold-limit", "thaw: %s" % t)
    st = c.ok("stillpoint-status")
    check(st["last-thaw"]["reason"] == "hold-limit", "status: %s" % st)
    check(c.ok("guest-fsfreeze-freeze") == 2, "standard freeze")
    check(conf.wait_status(c, "thawed", 10), "still frozen after the provider let go (2)")
    expect_error(c.call("guest-fsfreeze-thaw"), "GenericError",
                 desc="couldn't hold writes: fsfreeze is limited up to 10 seconds")
    check(c.ok("guest-fsfreeze-thaw") == 0, "reported once to the standard thaw")


def scenario_vss_call_failing(c):
    r = c.call("stillpoint-freeze", {"lease-ms": 30000})
    expect_error(r, "GenericError", code="freeze-failed")
    check("prepare_for_backup" in r["error"]["desc"] and "0x80042318" in r["error"]["desc"],
          "desc names the step and the error: %s" % r)
    check(c.ok("guest-fsfreeze-status") == "thawed", "status after a failed freeze")
    expect_error(c.call("guest-fsfreeze-freeze"), "GenericError")
    check(c.ok("stillpoint-status")["status"] == "thawed", "stillpoint-status")


def scenario_capabilities_name_the_fake_backend(c):
    cap = c.ok("stillpoint-capabilities")
    check(cap["platform"] == "windows", "platform: %s" % cap)
    check(cap["freeze"]["backend"] == "fake", "backend: %s" % cap)
    check(cap["freeze"]["hold-limit-ms"] == 10000, "hold-limit-ms: %s" % cap)
    check(cap["freeze"]["writers"] is True, "writers: %s" % cap)


def scenario_volumes_selected_by_disk_serial(c):
    fs = c.ok("guest-get-fsinfo")
    check(len(fs) == 3, "fsinfo: %s" % fs)
    serials = [d.get("serial") for f in fs for d in f["disk"]]
    check(serials == ["fake-disk-0", "fake-disk-1", "fake-disk-2"], "serials: %s" % serials)
    for f in fs:
        for d in f["disk"]:
            check(set(d) >= {"pci-controller", "bus-type", "bus", "target", "unit"}, "disk %s" % d)
    r = c.ok("stillpoint-freeze", {"disks": ["fake-disk-1", "fake-disk-2"], "lease-ms": 30000})
    check([f["mountpoint"] for f in r["frozen"]] == ["D:\\", "E:\\"], "frozen: %s" % r)
    check(c.ok("stillpoint-thaw")["thawed"] == 2, "thaw")
    expect_error(c.call("stillpoint-freeze", {"disks": ["no-such-disk"]}), "GenericError",
                 code="unknown-disk", desc="no mounted filesystem is on a disk with serial "
                                           "no-such-disk")
    expect_error(c.call("stillpoint-freeze", {"disks": ["fake-disk-0"], "mountpoints": ["C:"]}),
                 "GenericError", code="invalid-arguments")
    check(c.ok("guest-fsfreeze-status") == "thawed", "status")


def scenario_hangup_after_standard_and_extension_freezes(c):
    # Default: a hang-up keeps a standard freeze (the next connection thaws it) but thaws a
    # stillpoint-freeze.
    check(c.ok("stillpoint-capabilities")["freeze"]["standard-thaw-on-hangup"] is False, "cap")
    check(c.ok("guest-fsfreeze-freeze") == 2, "standard freeze")
    c = c.reconnect()
    check(c.ok("guest-fsfreeze-status") == "frozen", "a hang-up thawed the standard freeze")
    check(c.ok("guest-fsfreeze-thaw") == 2, "thawed on the new connection")
    st = c.ok("stillpoint-status")
    check(st["status"] == "thawed" and st["last-thaw"]["reason"] == "requested", "%s" % st)
    r = c.ok("stillpoint-freeze", {"lease-ms": 30000})
    c = c.reconnect()
    st = c.ok("stillpoint-status")
    check(st["status"] == "thawed", "a hang-up left a stillpoint-freeze: %s" % st)
    check(st["last-thaw"]["epoch"] == r["epoch"]
          and st["last-thaw"]["reason"] == "channel-hangup", "last-thaw: %s" % st)
    check(c.ok("guest-fsfreeze-thaw") == 0, "nothing left to thaw")


def scenario_standard_thaw_on_hangup_option(c):
    check(c.ok("stillpoint-capabilities")["freeze"]["standard-thaw-on-hangup"] is True, "cap")
    check(c.ok("guest-fsfreeze-freeze-list", {"mountpoints": ["C:\\"]}) == 1, "standard freeze")
    c = c.reconnect()
    st = c.ok("stillpoint-status")
    check(st["status"] == "thawed" and st["last-thaw"]["reason"] == "channel-hangup",
          "status: %s" % st)


def scenario_real_vss_backend_under_wine_refuses_to_freeze(c):
    # The real backend starts (COM, the restricted named events), but wine has no VSS (and no
    # NTFS volume): every freeze must fail cleanly and leave the guest thawed.
    check(c.ok("stillpoint-capabilities")["freeze"]["backend"] == "vss", "backend")
    check(isinstance(c.ok("guest-get-fsinfo"), list), "fsinfo")
    expect_error(c.call("guest-fsfreeze-freeze"), "GenericError")
    expect_error(c.call("stillpoint-freeze", {"lease-ms": 1000}), "GenericError",
                 code="freeze-failed")
    check(c.ok("guest-fsfreeze-status") == "thawed", "status")
    check(c.ok("guest-fsfreeze-thaw") == 0, "thaw")


def scenario_shipped_build_ignores_the_fake_switches(c):
    # Started with STILLPOINT_VSS=fake and STILLPOINT_FAKE_VSS set: a shipped agent still
    # drives the real VSS (which wine does not have) and says so.
    scenario_real_vss_backend_under_wine_refuses_to_freeze(c)


# (scenario, backend group, STILLPOINT_FAKE_VSS, extra agent arguments...)
SCENARIOS = [
    (scenario_writer_failing_at_freeze, "fake", "failing-writer=SqlServerWriter"),
    (scenario_provider_hold_limit, "fake", "hold-limit-ms=300"),
    (scenario_vss_call_failing, "fake", "fail=prepare_for_backup,fail-hr=80042318"),
    (scenario_capabilities_name_the_fake_backend, "fake", "volumes=2"),
    (scenario_volumes_selected_by_disk_serial, "fake", "volumes=3"),
    (scenario_hangup_after_standard_and_extension_freezes, "fake", "volumes=2"),
    (scenario_standard_thaw_on_hangup_option, "fake", "volumes=2", "--standard-thaw-on-hangup"),
    (scenario_real_vss_backend_under_wine_refuses_to_freeze, "real", None),
    (scenario_shipped_build_ignores_the_fake_switches, "shipped", "volumes=3"),
]


def check_shipped_refuses_fake_option(cmd, timeout):
    """A shipped agent does not know --fake-vss: bad usage (2), before it serves anything."""
    argv = [a.replace("{port}", "0") for a in cmd] + ["--fake-vss"]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    err = r.stderr.decode(errors="replace")
    if r.returncode != 2 or "unknown option '--fake-vss'" not in err:
        return "exit status %d, stderr: %s" % (r.returncode, err)
    return None


class Session:
    """A client that can hang up and connect again (c = c.reconnect())."""

    def __init__(self, connect, timeout):
        self.connect, self.timeout = connect, timeout
        self.client = conf.Client(connect, timeout)

    def __getattr__(self, name):
        return getattr(self.client, name)

    def reconnect(self):
        self.client.close()
        self.client = conf.Client(self.connect, self.timeout)
        return self

    def close(self):
        self.client.close()


def run_scenario(fn, fake_spec, cmd, timeout, tmp, extra=()):
    # Port 0: the agent picks a free port itself and prints it (no port chosen here that
    # another process could take before the agent binds it).
    argv = [a.replace("{port}", "0") for a in cmd] + list(extra)
    env = dict(os.environ)
    env.pop("STILLPOINT_VSS", None)
    env.pop("STILLPOINT_FAKE_VSS", None)
    if fake_spec:
        env["STILLPOINT_VSS"] = "fake"
        env["STILLPOINT_FAKE_VSS"] = fake_spec
    log = open(os.path.join(tmp, fn.__name__ + ".log"), "w+b")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                            start_new_session=True)
    c = None
    try:
        port = conf.listening_port(log.name, proc, timeout)
        args = argparse.Namespace(connect="tcp:127.0.0.1:%d" % port, timeout=timeout)
        conf.wait_for_agent(args, proc)
        c = Session(args.connect, timeout)
        fn(c)
        return None
    except (Failure, OSError, ValueError, KeyError, TypeError) as e:
        log.seek(0)
        return "%s: %s\n%s" % (type(e).__name__, e, log.read().decode(errors="replace"))
    finally:
        if c:
            c.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--backend", choices=("fake", "real", "all", "shipped"), default="all",
                   help="run the fake-VSS scenarios, the real-VSS one, all but shipped "
                        "(default), or those of a build without SP_TEST_HOOKS (shipped)")
    p.add_argument("agent", nargs=argparse.REMAINDER)
    args = p.parse_args()
    cmd = args.agent[1:] if args.agent[:1] == ["--"] else args.agent
    if not cmd:
        p.error("give the agent command after --")
    scenarios = [(s[0], s[2], s[3:]) for s in SCENARIOS
                 if s[1] == args.backend or (args.backend == "all" and s[1] != "shipped")]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="sp-vss-scenarios-") as tmp:
        shipped = args.backend == "shipped"
        print("1..%d" % (len(scenarios) + shipped))
        if shipped:
            err = check_shipped_refuses_fake_option(cmd, args.timeout)
            failures += err is not None
            print("%s 1 - shipped_build_refuses_the_fake_vss_option%s" % (
                "not ok" if err else "ok", ": " + err if err else ""))
        for i, (fn, fake_spec, extra) in enumerate(scenarios, 1 + shipped):
            name = fn.__name__[len("scenario_"):]
            err = run_scenario(fn, fake_spec, cmd, args.timeout, tmp, extra)
            if err:
                failures += 1
                print("not ok %d - %s (STILLPOINT_FAKE_VSS=%s): %s" % (
                    i, name, fake_spec or "unset: real VSS", err.replace("\n", "\n# ")))
            else:
                print("ok %d - %s (STILLPOINT_FAKE_VSS=%s)" % (i, name,
                                                             fake_spec or "unset: real VSS"))
            sys.stdout.flush()
    print("# %d of %d failed" % (failures, len(scenarios) + (args.backend == "shipped")))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
