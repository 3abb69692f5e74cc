#!/usr/bin/python3
"""Application writers of stillpoint-agent, on a private system-like bus and real loop-mounted
filesystems.

Usage: agent-writers.py AGENT EXAMPLE_WRITER BUS_POLICY SCENARIO   (as root; 77 = skipped)

A private dbus-daemon is started with a configuration like the system bus's (default deny of
method calls) that includes the agent's own policy file, so the policy is tested too; nothing
under /etc or /usr/share/dbus-1 is read or touched. The agent and the example writer
(sp-example-writer, a SQLite database on a test filesystem) find the bus through
DBUS_SYSTEM_BUS_ADDRESS. The filesystem helpers come from agent-freeze.py.
"""
import importlib.util
import os
import pwd
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("agent_freeze", os.path.join(HERE, "agent-freeze.py"))
af = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(af)
PROMPT_S = af.PROMPT_S
sys.path.insert(0, os.path.join(HERE, ".."))
from sptest import Skip, check, need_root, need_tools, scenario_main  # noqa: E402

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%(socket)s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>
  <include>%(policy)s</include>
</busconfig>
"""


class WriterEnv(af.Env):
    def __init__(self, agent_bin, writer_bin, policy):
        super().__init__(agent_bin)
        self.writer_bin, self.policy = writer_bin, policy
        self.bus = None
        self.apps = []

    def start_bus(self, policy=None):
        sock = self.path("bus.sock")
        conf = self.path("bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONFIG % {"socket": sock, "policy": policy or self.policy})
        self.bus = subprocess.Popen(["dbus-daemon", "--nofork", "--nopidfile", "--config-file", conf,
                                     "--print-address=1"], stdout=subprocess.PIPE,
                                    stderr=open(self.path("bus.log"), "ab"))
        line = self.bus.stdout.readline()   # printed once it listens
        check(line.startswith(b"unix:"), "dbus-daemon did not start: %s" % open(self.path("bus.log")).read()[-500:])
        self.address = "unix:path=" + sock
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self.address

    def fs(self):
        """One ext4 test filesystem, holding the database."""
        self.mount(self.image("ext4", "ext4", 64), self.path("ext4"))
        return self.path("ext4", "app.db")

    def start_writer(self, *args, user=None, group=None, name=None, expect_ready=True):
        log = self.path("writer-%d.log" % len(self.apps))
        with open(log, "w"):
            os.chmod(log, 0o666)   # for writers running as nobody
        r, w = os.pipe()
        argv = [self.writer_bin, "--database", self.path("ext4", "app.db"), "--log", log,
                "--ready-fd", str(w)] + list(args)
        if name:
            argv += ["--name", name]
        err = open(self.path("writer-%d.err" % len(self.apps)), "ab")
        p = subprocess.Popen(argv, pass_fds=(w,), stderr=err, user=user, group=group,
                             extra_groups=[] if user else None)
        os.close(w)
        with os.fdopen(r) as ready:
            line = ready.readline()
        if expect_ready:
            check(line == "READY\n", "writer did not register (see %s)" % err.name)
        p.log, p.err = log, err.name
        self.apps.append(p)
        return p

    def gdbus(self, method, *args):
        return subprocess.run(["gdbus", "call", "--address", self.address, "--dest",
                               "org.stillpoint.Agent1", "--object-path", "/org/stillpoint/Agent1",
                               "--method", "org.stillpoint.Agent1." + method] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=PROMPT_S)

    def list_writers(self):
        r = self.gdbus("ListWriters")
        check(r.returncode == 0, "ListWriters failed: %s" % r.stderr)
        return r.stdout

    def cleanup(self):
        for p in self.apps:
            if p.poll() is None:
                p.kill()
                p.wait()
        super().cleanup()
        if self.bus:
            self.bus.kill()
            self.bus.wait()

    def dump_log(self):
        super().dump_log()
        for p in self.apps:
            for f in (p.err,):
                try:
                    sys.stderr.write(open(f, errors="replace").read())
                except OSError:
                    pass


def events(p):
    """The example writer's log: [(phase, epoch, monotonic seconds, detail)]."""
    out = []
    with open(p.log) as f:
        for line in f:
            seq, phase, epoch, us, *detail = line.split()
            out.append((phase, int(epoch), int(us) / 1e6, " ".join(detail)))
    return out


def wait_for(cond, what):
    deadline = time.monotonic() + PROMPT_S
    while not cond():
        check(time.monotonic() < deadline, "timed out waiting for " + what)
        time.sleep(0.02)


def writers_conf(extra=""):
    return "[writers]\n" + extra


# ---- scenarios ----

def test_writers_called_in_order_around_the_freeze(env):
    env.start_bus()
    env.fs()
    env.write_config(writers_conf("timeout-ms=5000\n"))
    c = env.start_agent()
    w = env.start_writer()
    check("sqlite-example" in env.list_writers(), "writer not listed")
    check(c.ok("stillpoint-capabilities")["freeze"]["writers"] is True, "capabilities: writers")
    t0 = time.monotonic()
    reply = c.ok("stillpoint-freeze", {"mountpoints": [env.path("ext4")], "lease-ms": 20000})
    t1 = time.monotonic()
    check([(x["name"], x["phase"], x["result"]) for x in reply["writers"]] ==
          [("sqlite-example", "freeze", "ok")], "freeze reply writers: %s" % reply["writers"])
    # The filesystem is frozen now (a write blocks) and the writer holds the database's lock.
    blocked = env.writer("ext4", "after-freeze")
    check(blocked.blocked(), "the filesystem was not frozen after the freeze reply")
    ev = events(w)
    check([e[0] for e in ev] == ["prepare", "freeze"], "calls before the thaw: %s" % ev)
    check(t0 < ev[0][2] < ev[1][2] < t1, "prepare/freeze not inside the freeze call")
    check(ev[0][1] == reply["epoch"] == ev[1][1], "epoch passed to the writer")
    st = c.ok("stillpoint-status")
    check(st["writers"][0]["result"] == "ok" and "thaw" not in st["writers"][0], "status: %s" % st)
    t2 = time.monotonic()
    th = c.ok("stillpoint-thaw", {"epoch": reply["epoch"]})
    check(th["consistent"], "thaw not consistent: %s" % th)
    check([(x["name"], x["thaw"]) for x in th["writers"]] == [("sqlite-example", "ok")],
          "thaw reply writers: %s" % th["writers"])
    blocked.finish("after thaw")
    ev = events(w)
    check([e[0] for e in ev] == ["prepare", "freeze", "thaw"], "calls: %s" % ev)
    check(ev[2][2] > t2 and ev[2][3] == "requested consistent", "thaw: %s" % (ev[2],))
    check(c.ok("stillpoint-status")["writers"][0]["thaw"] == "ok", "status after thaw")
    # The writer wrote its record on Thaw: only possible once the filesystem was thawed.
    db = sqlite3.connect(env.path("ext4", "app.db"), timeout=PROMPT_S)
    rows = db.execute("SELECT epoch, reason, consistent FROM stillpoint_freezes").fetchall()
    db.close()
    check(rows == [(reply["epoch"], "requested", 1)], "database rows: %s" % rows)
    env.stop_agent()


def test_lease_expiry_tells_writers_to_thaw(env):
    env.start_bus()
    env.fs()
    env.write_config(writers_conf())
    c = env.start_agent()
    w = env.start_writer()
    reply = c.ok("stillpoint-freeze", {"mountpoints": [env.path("ext4")], "lease-ms": 300})
    wait_for(lambda: [e[0] for e in events(w)] == ["prepare", "freeze", "thaw"], "thaw after the lease")
    check(events(w)[2][3] == "lease-expired inconsistent", "thaw reason: %s" % (events(w)[2],))
    check(c.ok("stillpoint-thaw", {"epoch": reply["epoch"]})["consistent"] is False, "consistent")
    env.stop_agent()


def test_writer_deadline_miss_aborts_the_freeze(env):
    env.start_bus()
    env.fs()
    env.write_config(writers_conf("timeout-ms=400\n"))
    c = env.start_agent()
    w = env.start_writer("--delay-in", "freeze", "--delay-ms", "1500")
    t0 = time.monotonic()
    err = c.error("stillpoint-freeze", {"mountpoints": [env.path("ext4")]})
    check(time.monotonic() - t0 < 3, "the agent waited too long for the writer")
    check(err["code"] == "writer-failed", "code: %s" % err)
    check("sqlite-example did not answer freeze within 400 ms" in err["desc"], "desc: %s" % err)
    check(c.ok("stillpoint-status")["status"] == "thawed", "frozen after an aborted freeze")
    env.writer("ext4", "not-frozen").finish("after the aborted freeze")
    # Every writer asked to prepare is told to thaw, reason "aborted".
    wait_for(lambda: "thaw" in [e[0] for e in events(w)], "Thaw after the abort")
    check([e for e in events(w) if e[0] == "thaw"][0][3] == "aborted inconsistent", "reason")
    st = c.ok("stillpoint-status")["writers"][0]
    check((st["phase"], st["result"]) == ("freeze", "timeout"), "status: %s" % st)
    env.stop_agent()


def test_writer_failure_goes_on_when_configured(env):
    env.start_bus()
    env.fs()
    env.write_config(writers_conf("on-failure=continue\n"))
    c = env.start_agent()
    w = env.start_writer("--fail-in", "prepare")
    reply = c.ok("stillpoint-freeze", {"mountpoints": [env.path("ext4")]})
    wr = reply["writers"][0]
    check((wr["phase"], wr["result"]) == ("prepare", "failed"), "reply: %s" % wr)
    check("failing on purpose" in wr["message"], "message: %s" % wr)
    check([e[0] for e in events(w)] == ["prepare"], "a failed writer is not asked to Freeze")
    c.ok("stillpoint-thaw", {"epoch": reply["epoch"]})
    check([e[0] for e in events(w)] == ["prepare", "thaw"], "but is told Thaw: %s" % events(w))
    env.stop_agent()


def test_writer_crash_mid_freeze_aborts_and_is_forgotten(env):
    env.start_bus()
    env.fs()
    env.write_config(writers_conf("timeout-ms=5000\n"))
    c = env.start_agent()
    w = env.start_writer("--exit-in", "freeze")
    t0 = time.monotonic()
    err = c.error("stillpoint-freeze", {"mountpoints": [env.path("ext4")]})
    check(time.monotonic() - t0 < 4, "a crashed writer was waited for until the deadline")
    check(err["code"] == "writer-failed" and "left the bus during freeze" in err["desc"], "%s" % err)
    check(w.wait(timeout=PROMPT_S) == 3, "writer did not crash as asked")
    wait_for(lambda: "sqlite-example" not in env.list_writers(), "the crashed writer to be forgotten")
    reply = c.ok("stillpoint-freeze", {"mountpoints": [env.path("ext4")]})
    check(reply["writers"] == [], "a forgotten writer was called: %s" % reply["writers"])
    c.ok("stillpoint-thaw", {"epoch": reply["epoch"]})
    env.stop_agent()


def test_writer_crash_while_frozen_makes_the_thaw_inconsistent(env):
    # #15 item 5: the writer answered Freeze, then crashed while the filesystems were frozen:
    # whatever it was holding is not known to have held, so neither is the freeze.
    env.start_bus()
    env.fs()
    env.write_config(writers_conf("timeout-ms=5000\n"))
    c = env.start_agent()
    w = env.start_writer()
    reply = c.ok("stillpoint-freeze", {"mountpoints": [env.path("ext4")], "lease-ms": 20000})
    check([x["result"] for x in reply["writers"]] == ["ok"], "freeze: %s" % reply["writers"])
    w.kill()
    w.wait()
    # Thaw at once, before or after the agent saw it leave: either way the verdict is the same.
    th = c.ok("stillpoint-thaw", {"epoch": reply["epoch"]})
    check(th["consistent"] is False and th["reason"] == "writer-failed", "thaw: %s" % th)
    check(th.get("failed-writer") == "sqlite-example", "failed-writer: %s" % th)
    check([(x["name"], x["result"], x["thaw"]) for x in th["writers"]] ==
          [("sqlite-example", "vanished", "vanished")], "writers: %s" % th["writers"])
    st = c.ok("stillpoint-status")
    check(st["last-thaw"]["consistent"] is False and st["last-thaw"]["reason"] == "writer-failed"
          and st["last-thaw"].get("failed-writer") == "sqlite-example", "status: %s" % st)
    again = c.ok("stillpoint-thaw", {"epoch": reply["epoch"]})
    check(again["consistent"] is False and again["thawed"] == 0, "repeated: %s" % again)
    e = c.error("stillpoint-thaw")
    check(e.get("code") == "not-frozen", "epoch-less thaw after a requested one: %s" % e)
    # The same through the standard commands: libvirt's thaw is told the freeze did not hold.
    w2 = env.start_writer()
    check(c.ok("guest-fsfreeze-freeze-list", {"mountpoints": [env.path("ext4")]}) == 1, "freeze")
    w2.kill()
    w2.wait()
    e = c.error("guest-fsfreeze-thaw")
    check("writer-failed, writer sqlite-example" in e["desc"] and "code" not in e, str(e))
    check(c.ok("guest-fsfreeze-status") == "thawed", "thawed")
    # A writer that stays gets a consistent freeze again.
    w3 = env.start_writer()
    reply = c.ok("stillpoint-freeze", {"mountpoints": [env.path("ext4")]})
    th = c.ok("stillpoint-thaw", {"epoch": reply["epoch"]})
    check(th["consistent"] is True and "failed-writer" not in th, "after: %s" % th)
    w3.terminate()
    env.stop_agent()


def test_unregistration(env):
    env.start_bus()
    env.fs()
    env.write_config(writers_conf())
    c = env.start_agent()
    w = env.start_writer()
    other = env.gdbus("UnregisterWriter", "sqlite-example")
    check(other.returncode != 0 and "NotRegistered" in other.stderr,
          "another connection unregistered the writer: %s" % other.stderr)
    taken = env.gdbus("RegisterWriter", "sqlite-example", "/x")
    check(taken.returncode != 0 and "NameTaken" in taken.stderr, "name taken: %s" % taken.stderr)
    bad = env.gdbus("RegisterWriter", "no spaces", "/x")
    check(bad.returncode != 0 and "InvalidArgs" in bad.stderr, "bad name: %s" % bad.stderr)
    w.terminate()   # the example writer unregisters on SIGTERM
    check(w.wait(timeout=PROMPT_S) == 0, "writer exit status")
    check("sqlite-example" not in env.list_writers(), "still registered")
    with open(env.path("agent.log")) as f:
        check("writer sqlite-example unregistered" in f.read(), "the agent did not log it")
    reply = c.ok("stillpoint-freeze", {"mountpoints": [env.path("ext4")]})
    check(reply["writers"] == [], "an unregistered writer was called")
    c.ok("stillpoint-thaw", {"epoch": reply["epoch"]})
    env.stop_agent()


def test_bus_policy_allows_only_root_and_the_group(env):
    # The installed policy with the group set to nogroup: nobody in nogroup may register,
    # nobody in no group may not.
    with open(env.policy) as f:
        policy = f.read()
    start = policy.index('<policy group="') + len('<policy group="')
    group = policy[start:policy.index('"', start)]
    copy = env.path("policy.conf")
    with open(copy, "w") as f:
        f.write(policy.replace('group="%s"' % group, 'group="nogroup"'))
    env.start_bus(copy)
    env.fs()
    os.chmod(env.base, 0o755)
    os.chmod(env.path("ext4"), 0o777)
    env.write_config(writers_conf())
    env.start_agent()
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody")
    denied = env.start_writer(user="nobody", group="daemon", expect_ready=False)
    check(denied.wait(timeout=PROMPT_S) == 1, "a writer outside the group registered")
    with open(denied.err) as f:
        check("Rejected send message" in f.read(), "not refused by the bus policy")
    env.start_writer(user="nobody", group="nogroup", name="in-group")
    check("in-group" in env.list_writers(), "a writer in the group could not register")
    env.stop_agent()


def test_bus_started_after_the_agent_is_used(env):
    # The agent comes up first (early boot, or dbus-daemon restarting): it keeps trying.
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=" + env.path("bus.sock")
    env.fs()
    env.write_config(writers_conf())
    c = env.start_agent()
    env.start_bus()
    w = env.start_writer()   # registers once the agent owns its name (within its retry interval)
    reply = c.ok("stillpoint-freeze", {"mountpoints": [env.path("ext4")]})
    check([x["result"] for x in reply["writers"]] == ["ok"], "writers: %s" % reply["writers"])
    c.ok("stillpoint-thaw", {"epoch": reply["epoch"]})
    check([e[0] for e in events(w)] == ["prepare", "freeze", "thaw"], "calls: %s" % events(w))
    env.stop_agent()


def test_bus_restart_is_survived(env):
    env.start_bus()
    env.fs()
    env.write_config(writers_conf())
    c = env.start_agent()
    env.start_writer()
    env.bus.kill()     # the writer's connection closes with it (and the writer exits)
    env.bus.wait()
    os.unlink(env.path("bus.sock"))
    env.start_bus()
    w = env.start_writer()   # registers once the agent is back on the new bus
    check(env.agent.poll() is None, "the agent survived the bus")
    reply = c.ok("stillpoint-freeze", {"mountpoints": [env.path("ext4")]})
    check([x["result"] for x in reply["writers"]] == ["ok"], "writers: %s" % reply["writers"])
    c.ok("stillpoint-thaw", {"epoch": reply["epoch"]})
    check([e[0] for e in events(w)] == ["prepare", "freeze", "thaw"], "calls: %s" % events(w))
    env.stop_agent()


def test_agent_without_a_bus_works_as_before(env):
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=" + env.path("no-bus.sock")
    env.fs()
    env.write_config(writers_conf())
    c = env.start_agent()
    # No bus socket: GDBus is not even tried (its connection attempt leaves a worker thread and
    # its state in the agent's memory), only GLib's own "gmain" thread runs beside the agent.
    time.sleep(0.5)
    task = "/proc/%d/task" % env.agent.pid
    threads = sorted(open("%s/%s/comm" % (task, t)).read().strip() for t in os.listdir(task)
                     if int(t) != env.agent.pid)
    check(threads in ([], ["gmain"]), "threads of an agent without a bus: %s" % threads)
    reply = c.ok("stillpoint-freeze", {"mountpoints": [env.path("ext4")]})
    check(reply["writers"] == [], "writers without a bus: %s" % reply["writers"])
    c.ok("stillpoint-thaw", {"epoch": reply["epoch"]})
    env.stop_agent()


SCENARIOS = {name[5:]: fn for name, fn in globals().items() if name.startswith("test_")}


def prepare():
    need_root("loop devices, mount, FIFREEZE")
    need_tools("mkfs.ext4", "mount", "umount", "dbus-daemon", "gdbus")
    af.private_mount_namespace()


if __name__ == "__main__":
    sys.exit(scenario_main(SCENARIOS, "AGENT WRITER POLICY", WriterEnv, prepare))
