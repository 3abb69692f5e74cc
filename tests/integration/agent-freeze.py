#!/usr/bin/python3
"""Integration tests of stillpoint-agent on real loop-mounted ext4 and xfs filesystems.

Usage: agent-freeze.py AGENT SCENARIO   (as root; exits 77 = skipped otherwise)

Each scenario runs in a private mount namespace (entered first thing), so the
mounts made here are invisible to the rest of the machine and vanish with us. The agent is
given a configuration that excludes every mountpoint that existed before the test: it must never
freeze the machine the test runs on. Loop devices are attached with autoclear and released by
umount, also on failure.
"""
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sptest import Failure, Skip, check, need_root, need_tools, scenario_main  # noqa: E402

FIFREEZE = 0xC0045877
FITHAW = 0xC0045878
# A writer that has not finished after this long is blocked by the freeze.
BLOCKED_GRACE_S = 0.4
# Upper bound for anything that should happen promptly (a thaw, an answer).
PROMPT_S = 10


def run(*argv, **kw):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def mountpoints_now():
    """Every mountpoint in this namespace, unescaped."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split(" ")[4]
            out.append(mp.encode().decode("unicode_escape"))
    return out


def fnmatch_escape(path):
    return "".join("[%s]" % c if c in "*?[]\\" else c for c in path)


class Client:
    """One connection to the agent's unix socket, speaking newline-delimited JSON."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(PROMPT_S)
        self.sock.connect(path)
        self.buf = b""

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Failure("agent closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def reply(self):
        return json.loads(self.read_line())

    def call(self, execute, arguments=None):
        msg = {"execute": execute}
        if arguments is not None:
            msg["arguments"] = arguments
        self.send_raw(json.dumps(msg).encode() + b"\n")
        return self.reply()

    def ok(self, execute, arguments=None):
        r = self.call(execute, arguments)
        check("return" in r, "%s failed: %s" % (execute, r))
        return r["return"]

    def error(self, execute, arguments=None):
        r = self.call(execute, arguments)
        check("error" in r, "%s should have failed: %s" % (execute, r))
        return r["error"]

    def close(self):
        self.sock.close()


class Writer:
    """A process writing (and fsyncing) a file: blocks while its filesystem is frozen."""

    def __init__(self, path, data="written\n"):
        self.path, self.data = path, data
        # It says "go" just before its first system call on the filesystem, so that "still
        # running BLOCKED_GRACE_S later" means blocked, not slow to start.
        code = ("import os,sys\nprint('go',flush=True)\n"
                "fd=os.open(sys.argv[1],os.O_WRONLY|os.O_CREAT|os.O_TRUNC,0o644)\n"
                "os.write(fd,sys.argv[2].encode())\nos.fsync(fd)\n")
        self.proc = subprocess.Popen([sys.executable, "-c", code, path, data],
                                     stdout=subprocess.PIPE)
        self.started = False

    def wait_started(self):
        if not self.started:
            check(self.proc.stdout.readline() == b"go\n", "writer to %s did not start" % self.path)
            self.started = True

    def blocked(self):
        self.wait_started()
        try:
            self.proc.wait(timeout=BLOCKED_GRACE_S)
            return False
        except subprocess.TimeoutExpired:
            return True

    def finish(self, what):
        self.wait_started()
        try:
            rc = self.proc.wait(timeout=PROMPT_S)
        except subprocess.TimeoutExpired:
            raise Failure("%s: writer to %s still blocked" % (what, self.path))
        self.proc.stdout.close()
        check(rc == 0, "%s: writer to %s failed (%d)" % (what, self.path, rc))
        with open(self.path) as f:
            check(f.read() == self.data, "%s: %s lost its data" % (what, self.path))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


class Env:
    """Test filesystems, the agent, and cleanup of both."""

    def __init__(self, agent_bin):
        self.agent_bin = agent_bin
        self.pre_existing = mountpoints_now()
        self.base = tempfile.mkdtemp(prefix="sp-agent-it-")
        self.mounts = []       # in mount order; unmounted in reverse
        self.agent = None
        self.writers = []
        self.state_dir = os.path.join(self.base, "state")
        self.sock = os.path.join(self.base, "agent.sock")
        self.conf = os.path.join(self.base, "agent.conf")
        self.hook = None

    def path(self, *p):
        return os.path.join(self.base, *p)

    def image(self, name, fstype, size_mb, directory=None):
        img = os.path.join(directory or self.base, name + ".img")
        with open(img, "wb") as f:
            f.truncate(size_mb << 20)
        if fstype == "xfs":
            run("mkfs.xfs", "-q", "-f", img)
        else:
            run("mkfs.ext4", "-q", "-F", img)
        return img

    def mount(self, img, mp, *opts):
        os.makedirs(mp, exist_ok=True)
        run("mount", "-o", ",".join(("loop",) + opts), img, mp)
        self.mounts.append(mp)

    def bind(self, src, mp):
        os.makedirs(mp, exist_ok=True)
        run("mount", "--bind", src, mp)
        self.mounts.append(mp)

    def standard_layout(self):
        """ext4, xfs, an ext4 nested in the first (its image a file on it: a loop dependency),
        a bind mount of the first, a read-only ext4 and a tmpfs."""
        self.mount(self.image("ext4", "ext4", 64), self.path("ext4"))
        self.mount(self.image("xfs", "xfs", 320), self.path("xfs"))
        nested = self.image("nested", "ext4", 32, directory=self.path("ext4"))
        self.mount(nested, self.path("ext4", "nested"))
        self.bind(self.path("ext4"), self.path("bind"))
        self.mount(self.image("ro", "ext4", 32), self.path("ro"), "ro")
        os.makedirs(self.path("tmp"))
        run("mount", "-t", "tmpfs", "tmpfs", self.path("tmp"))
        self.mounts.append(self.path("tmp"))

    def write_config(self, extra="", lease_ms=20000):
        excluded = ";".join(fnmatch_escape(m) for m in self.pre_existing)
        with open(self.conf, "w") as f:
            f.write("[freeze]\n# never freeze the machine running the test\n"
                    "exclude-mountpoints=%s\ndefault-lease-ms=%d\n%s" % (excluded, lease_ms, extra))

    def set_hook(self, body):
        self.hook = self.path("fsfreeze-hook")
        with open(self.hook, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(self.hook, 0o755)

    def start_agent(self):
        if not os.path.exists(self.conf):
            self.write_config()
        r, w = os.pipe()
        argv = [self.agent_bin, "--config", self.conf, "--unix", self.sock,
                "--state-dir", self.state_dir, "--ready-fd", str(w)]
        self.agent_log = open(self.path("agent.log"), "ab")
        self.agent = subprocess.Popen(argv, pass_fds=(w,), stderr=self.agent_log)
        os.close(w)
        with os.fdopen(r) as ready:
            line = ready.readline()   # EOF without READY = the agent died
        check(line == "READY\n", "agent did not become ready (see %s)" % self.path("agent.log"))
        return Client(self.sock)

    def stop_agent(self):
        if self.agent and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            rc = self.agent.wait(timeout=PROMPT_S)
            check(rc == 0, "agent exited with status %d on SIGTERM" % rc)
        self.agent = None

    def kill_agent(self):
        self.agent.kill()
        self.agent.wait()
        self.agent = None

    def writer(self, *p, data="written\n"):
        w = Writer(self.path(*p), data)
        self.writers.append(w)
        return w

    def cleanup(self):
        for w in self.writers:
            w.kill()
        # Thaw whatever a failed test left frozen, so that umount works and an agent blocked on a
        # frozen filesystem can die: these are our own filesystems (never the machine's).
        for mp in reversed(self.mounts):
            try:
                fd = os.open(mp, os.O_RDONLY)
                try:
                    fcntl.ioctl(fd, FITHAW, 0)
                except OSError:
                    pass
                os.close(fd)
            except OSError:
                pass
        if self.agent and self.agent.poll() is None:
            self.agent.kill()
            self.agent.wait()
        for mp in reversed(self.mounts):
            subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
        shutil.rmtree(self.base, ignore_errors=True)

    def dump_log(self):
        try:
            with open(self.path("agent.log"), "rb") as f:
                sys.stderr.write(f.read().decode(errors="replace"))
        except OSError:
            pass


def frozen_mountpoints(reply):
    return sorted(f["mountpoint"] for f in reply["frozen"])


def skipped(reply):
    return {s["mountpoint"]: s["reason"] for s in reply["skipped"]}


# ---- scenarios ----

def test_freeze_all_counts_each_filesystem_once(env):
    env.standard_layout()
    c = env.start_agent()
    check(c.ok("guest-fsfreeze-freeze") == 3, "ext4, xfs and nested: three superblocks")
    check(c.ok("guest-fsfreeze-status") == "frozen", "status frozen")
    check(c.ok("guest-fsfreeze-thaw") == 3, "thaw answers the count")
    check(c.ok("guest-fsfreeze-status") == "thawed", "status thawed")
    r = c.ok("stillpoint-freeze", {"lease-ms": 20000})
    check(frozen_mountpoints(r) == sorted([env.path("ext4"), env.path("xfs"),
                                           env.path("ext4", "nested")]), "frozen: %s" % r)
    s = skipped(r)
    check(s.get(env.path("bind")) == "same-filesystem", "bind mount skipped: %s" % s)
    check(s.get(env.path("ro")) == "read-only", "read-only skipped: %s" % s)
    check(s.get(env.path("tmp")) == "memory", "tmpfs skipped: %s" % s)
    # The nested filesystem lives in a file on ext4: it must be frozen first.
    order = [f["mountpoint"] for f in r["frozen"]]
    check(order.index(env.path("ext4", "nested")) < order.index(env.path("ext4")),
          "loop-backed filesystem frozen before its parent: %s" % order)
    # Identified with libblkid, as blkid(8) sees them.
    for f in r["frozen"]:
        uuid = run("blkid", "-p", "-s", "UUID", "-o", "value", f["device"]).stdout.decode().strip()
        check(f.get("uuid") == uuid, "uuid of %s: %s, blkid says %s" % (f["mountpoint"], f, uuid))
    t = c.ok("stillpoint-thaw", {"epoch": r["epoch"]})
    check(t["thawed"] == 3 and t["consistent"] is True and t["reason"] == "requested", str(t))
    # A host whose reply got lost asks again: same verdict, nothing thawed twice.
    again = c.ok("stillpoint-thaw", {"epoch": r["epoch"]})
    check(again["thawed"] == 0 and again["consistent"] is True and again["epoch"] == r["epoch"],
          str(again))
    check(c.error("stillpoint-thaw").get("code") == "not-frozen", "no epoch: not frozen")
    env.stop_agent()


def test_writer_blocks_until_thaw(env):
    env.standard_layout()
    c = env.start_agent()
    c.ok("guest-fsfreeze-freeze")
    writers = [env.writer("ext4", "f"), env.writer("xfs", "f"), env.writer("ext4", "nested", "f")]
    for w in writers:
        check(w.blocked(), "writer to %s not blocked while frozen" % w.path)
    st = c.ok("stillpoint-status")
    check(st["status"] == "frozen" and len(st["frozen"]) == 3, str(st))
    check(0 < st["remaining-ms"] <= 20000, "remaining-ms %s" % st)
    c.ok("guest-fsfreeze-thaw")
    for w in writers:
        w.finish("after thaw")
    env.stop_agent()


def test_freeze_list_freezes_only_that_mountpoint(env):
    env.standard_layout()
    c = env.start_agent()
    check(c.ok("guest-fsfreeze-freeze-list", {"mountpoints": [env.path("xfs")]}) == 1, "one")
    env.writer("ext4", "f").finish("ext4 not in the list")
    w = env.writer("xfs", "f")
    check(w.blocked(), "xfs writer not blocked")
    check(c.ok("guest-fsfreeze-thaw") == 1, "thaw one")
    w.finish("after thaw")
    # qemu-ga ignores mountpoints that are not mounted; stillpoint-freeze refuses them.
    check(c.ok("guest-fsfreeze-freeze-list", {"mountpoints": [env.path("nowhere")]}) == 0, "zero")
    # Nothing frozen: the guest stays thawed (no lease, commands not disabled), as PROTOCOL.md says.
    check(c.ok("guest-fsfreeze-status") == "thawed", "a freeze of nothing left the guest 'frozen'")
    check(isinstance(c.ok("guest-get-fsinfo"), list), "guest-get-fsinfo after a freeze of nothing")
    check(c.ok("guest-fsfreeze-thaw") == 0, "nothing to thaw")
    e = c.error("stillpoint-freeze", {"mountpoints": [env.path("nowhere")]})
    check(e.get("code") == "unknown-mountpoint", str(e))
    env.stop_agent()


def test_state_dir_on_a_tmpfs_inside_a_frozen_filesystem(env):
    """As /run/stillpoint on a systemd guest: the state directory is on a tmpfs whose mountpoint
    lives on a filesystem the agent freezes. Writing the state after the freeze must not wait for
    the thaw (mkdir of an existing directory on a frozen filesystem blocks)."""
    env.mount(env.image("root", "ext4", 64), env.path("root"))
    os.makedirs(env.path("root", "run"))
    run("mount", "-t", "tmpfs", "tmpfs", env.path("root", "run"))
    env.mounts.append(env.path("root", "run"))
    env.state_dir = env.path("root", "run", "stillpoint")
    c = env.start_agent()
    r = c.ok("stillpoint-freeze", {"lease-ms": 20000})
    check(frozen_mountpoints(r) == [env.path("root")], "frozen: %s" % r)
    with open(os.path.join(env.state_dir, "frozen")) as f:
        check("epoch %d\n" % r["epoch"] in f.read(), "the state file records the freeze")
    t = c.ok("stillpoint-thaw", {"epoch": r["epoch"]})
    check(t["thawed"] == 1 and t["consistent"] is True, str(t))
    env.stop_agent()


def test_lease_expiry_thaws_and_thaw_reports_inconsistent(env):
    env.standard_layout()
    c = env.start_agent()
    r = c.ok("stillpoint-freeze", {"mountpoints": [env.path("ext4")], "lease-ms": 500})
    check(r["lease-ms"] == 500, str(r))
    w = env.writer("ext4", "f")
    # The writer completing is the thaw we are waiting for.
    w.finish("after the lease ran out")
    check(c.ok("guest-fsfreeze-status") == "thawed", "thawed by itself")
    t = c.ok("stillpoint-thaw", {"epoch": r["epoch"]})
    check(t["consistent"] is False and t["reason"] == "lease-expired" and t["thawed"] == 0, str(t))
    check(t["held-ms"] >= 500, str(t))
    env.stop_agent()


def test_client_hangup_thaws(env):
    env.standard_layout()
    c = env.start_agent()
    c.ok("stillpoint-freeze", {"lease-ms": 20000})
    w = env.writer("xfs", "f")
    check(w.blocked(), "frozen")
    c.close()
    w.finish("after the client hung up")
    c2 = Client(env.sock)
    st = c2.ok("stillpoint-status")
    check(st["status"] == "thawed" and st["last-thaw"]["reason"] == "channel-hangup", str(st))
    check(st["last-thaw"]["consistent"] is False, str(st))
    env.stop_agent()


def test_other_client_hangup_does_not_thaw(env):
    env.standard_layout()
    owner = env.start_agent()
    owner.ok("stillpoint-freeze", {"mountpoints": [env.path("ext4")]})
    other = Client(env.sock)
    check(other.ok("guest-fsfreeze-status") == "frozen", "shared state: frozen")
    other.close()
    check(owner.ok("guest-fsfreeze-status") == "frozen", "still frozen")
    t = owner.ok("stillpoint-thaw")
    check(t["consistent"] is True, str(t))
    env.stop_agent()


def test_only_the_freezing_channel_or_its_token_thaws(env):
    # #15 item 7: another client of the agent (in a guest: a process on a vsock loopback or a
    # local socket) cannot end the host's stillpoint-freeze early; the lease token can.
    env.standard_layout()
    owner = env.start_agent()
    r = owner.ok("stillpoint-freeze", {"mountpoints": [env.path("ext4")]})
    check(isinstance(r.get("token"), str) and len(r["token"]) == 32, "token: %s" % r)
    w = env.writer("ext4", "f")
    check(w.blocked(), "frozen")
    other = Client(env.sock)
    for cmd, args in (("stillpoint-thaw", None), ("stillpoint-thaw", {"epoch": r["epoch"]}),
                      ("stillpoint-thaw", {"token": "0" * 32})):
        e = other.error(cmd, args)
        check(e.get("code") == "not-owner", "%s %s: %s" % (cmd, args, e))
    e = other.error("guest-fsfreeze-thaw")
    check("code" not in e and "another channel" in e["desc"], str(e))
    check("token" not in json.dumps(other.ok("stillpoint-status")), "status shows the token")
    check(w.blocked(), "a refused thaw thawed")
    t = other.ok("stillpoint-thaw", {"token": r["token"]})
    check(t["consistent"] is True and t["thawed"] == 1, str(t))
    w.finish("after the thaw with the token")
    other.close()
    env.stop_agent()


def test_standard_freeze_survives_hangup_until_thaw_on_another_connection(env):
    # Proxmox-style hosts send guest-fsfreeze-freeze and -thaw on separate connections.
    env.standard_layout()
    c = env.start_agent()
    n = c.ok("guest-fsfreeze-freeze-list", {"mountpoints": [env.path("ext4")]})
    check(n == 1, "froze one: %s" % n)
    c.close()
    w = env.writer("ext4", "f")
    check(w.blocked(), "still frozen after the freezing client hung up")
    c2 = Client(env.sock)
    check(c2.ok("guest-fsfreeze-status") == "frozen", "status after hang-up")
    check(c2.ok("guest-fsfreeze-thaw") == 1, "thawed on the new connection")
    w.finish("after the thaw")
    env.stop_agent()


def test_restart_after_kill_thaws(env):
    env.standard_layout()
    c = env.start_agent()
    c.ok("guest-fsfreeze-freeze")
    check(os.path.exists(os.path.join(env.state_dir, "frozen")), "state recorded")
    writers = [env.writer("ext4", "f"), env.writer("xfs", "f")]
    env.kill_agent()
    for w in writers:
        check(w.blocked(), "still frozen after kill -9")
    c = env.start_agent()   # recovery happens before READY
    for w in writers:
        w.finish("after restart")
    check(not os.path.exists(os.path.join(env.state_dir, "frozen")), "state removed")
    check(c.ok("guest-fsfreeze-status") == "thawed", "thawed")
    env.stop_agent()


def test_failing_hook_aborts_freeze(env):
    env.standard_layout()
    marker = env.path("hook-calls")
    env.set_hook('echo "$1" >> %s\n[ "$1" = freeze ] && exit 3\nexit 0\n' % marker)
    env.write_config("[hooks]\nfsfreeze-hook=%s\ntimeout-ms=5000\n" % env.hook)
    c = env.start_agent()
    e = c.error("stillpoint-freeze")
    check(e.get("code") == "hook-failed" and e["class"] == "GenericError", str(e))
    e = c.error("guest-fsfreeze-freeze")
    check(e["class"] == "GenericError" and "code" not in e, "standard error has no code: %s" % e)
    check(c.ok("guest-fsfreeze-status") == "thawed", "nothing frozen")
    env.writer("ext4", "f").finish("hook failed, nothing frozen")
    with open(marker) as f:
        # The failed freeze hook is told to thaw, so applications let go.
        check(f.read().split() == ["freeze", "thaw", "freeze", "thaw"], "hook calls")
    env.stop_agent()


def test_hook_timeout_and_unsafe_hook(env):
    env.standard_layout()
    env.set_hook('[ "$1" = freeze ] && exec sleep 30\nexit 0\n')
    env.write_config("[hooks]\nfsfreeze-hook=%s\ntimeout-ms=300\n" % env.hook)
    c = env.start_agent()
    t0 = time.monotonic()
    e = c.error("stillpoint-freeze")
    check(e.get("code") == "hook-failed" and "did not finish" in e["desc"], str(e))
    check(time.monotonic() - t0 < 5, "timeout honoured")
    os.chmod(env.hook, 0o777)   # writable by others: refused
    e = c.error("stillpoint-freeze")
    check(e.get("code") == "hook-failed" and "refused" in e["desc"], str(e))
    os.chmod(env.hook, 0o755)
    os.chmod(env.base, 0o777)   # a directory others can write: they could swap the script
    try:
        e = c.error("stillpoint-freeze")
        check(e.get("code") == "hook-failed" and "its directory" in e["desc"], str(e))
    finally:
        os.chmod(env.base, 0o700)
    check(c.ok("guest-fsfreeze-status") == "thawed", "nothing frozen")
    env.stop_agent()


def test_hook_runs_around_freeze(env):
    env.standard_layout()
    marker = env.path("hook-calls")
    env.set_hook('echo "$1" >> %s\n' % marker)
    env.write_config("[hooks]\nfsfreeze-hook=%s\n" % env.hook)
    c = env.start_agent()
    c.ok("guest-fsfreeze-freeze")
    c.ok("guest-fsfreeze-thaw")
    with open(marker) as f:
        check(f.read().split() == ["freeze", "thaw"], "hook called with freeze, then thaw")
    env.stop_agent()


def test_bad_input_gets_errors_and_agent_keeps_serving(env):
    c = env.start_agent()
    c.send_raw(b'{"execute": guest-ping}\n')
    e = c.reply()["error"]
    check(e["class"] == "GenericError" and e["desc"].startswith("JSON parse error"), str(e))
    # Running programs is not the agent's; forwarded to qemu-ga only when agent.conf allows it.
    e = c.error("guest-exec", {"path": "/bin/sh"})
    check(e["class"] == "CommandNotFound" and e["desc"].startswith("Command guest-exec has been "
                                                                  "disabled") and "allow-exec=true" in e["desc"], str(e))
    e = c.error("stillpoint-nonsense")
    check(e["class"] == "CommandNotFound" and e.get("code") == "command-not-found", str(e))
    c.send_raw(b'{"execute": "guest-ping", "arguments": {"pad": "' + b"x" * (1 << 20) + b'"}}\n')
    e = c.reply()["error"]
    check(e["desc"] == "JSON token size limit exceeded", str(e))
    check(c.ok("guest-ping") == {}, "still serving")
    e = c.error("guest-sync", {})
    check(e["desc"] == "Parameter 'id' is missing", str(e))
    e = c.error("stillpoint-freeze", {"lease-ms": "soon"})
    check(e.get("code") == "invalid-arguments", str(e))
    e = c.error("stillpoint-freeze", {"lease-ms": 10})
    check(e.get("code") == "lease-out-of-range", str(e))
    e = c.error("stillpoint-freeze", {"mountpoints": ["/"], "disks": ["x"]})
    check(e.get("code") == "invalid-arguments", str(e))
    e = c.error("stillpoint-thaw")
    check(e.get("code") == "not-frozen", str(e))
    c.send_raw(b'\xff{"execute":"guest-sync-delimited","arguments":{"id":7}}\n')
    raw = c.read_line()
    check(raw == b'\xff{"return":7}', "delimited reply: %r" % raw)
    env.stop_agent()


def test_frozen_agent_refuses_other_commands(env):
    env.standard_layout()
    c = env.start_agent()
    r = c.ok("stillpoint-freeze", {"mountpoints": [env.path("ext4")]})
    e = c.error("guest-get-fsinfo")
    check(e == {"class": "CommandNotFound",
                "desc": "Command guest-get-fsinfo has been disabled: the command is not allowed"}, str(e))
    e = c.error("guest-fsfreeze-freeze")
    check(e["class"] == "CommandNotFound", str(e))
    e = c.error("stillpoint-freeze")
    check(e.get("code") == "already-frozen", str(e))
    e = c.error("stillpoint-thaw", {"epoch": r["epoch"] + 1})
    check(e.get("code") == "epoch-mismatch", str(e))
    check(c.ok("guest-ping") == {}, "ping while frozen")
    info = c.ok("guest-info")
    enabled = {x["name"]: x["enabled"] for x in info["supported_commands"]}
    check(enabled["guest-fsfreeze-thaw"] and not enabled["guest-get-fsinfo"], str(enabled))
    t = c.ok("stillpoint-thaw", {"epoch": r["epoch"]})
    check(t["consistent"] is True and t["thawed"] == 1, str(t))
    env.stop_agent()


def test_filesystem_frozen_by_someone_else_is_reported_not_thawed(env):
    env.standard_layout()
    fd = os.open(env.path("xfs"), os.O_RDONLY)
    fcntl.ioctl(fd, FIFREEZE, 0)
    try:
        c = env.start_agent()
        r = c.ok("stillpoint-freeze")
        check(skipped(r).get(env.path("xfs")) == "frozen-by-other", str(r))
        check(env.path("xfs") not in frozen_mountpoints(r), str(r))
        c.ok("stillpoint-thaw")
        w = env.writer("xfs", "f")
        check(w.blocked(), "the other tool's freeze must survive our thaw")
        env.writer("ext4", "f").finish("ours thawed")
    finally:
        fcntl.ioctl(fd, FITHAW, 0)
        os.close(fd)
    w.finish("after the other tool thawed")
    env.stop_agent()


def test_get_fsinfo_lists_test_filesystems(env):
    env.standard_layout()
    c = env.start_agent()
    info = c.ok("guest-get-fsinfo")
    by_mp = {f["mountpoint"]: f for f in info}
    check(by_mp[env.path("xfs")]["type"] == "xfs", str(by_mp.get(env.path("xfs"))))
    disk = by_mp[env.path("xfs")]["disk"]
    check(len(disk) == 1 and disk[0]["dev"].startswith("/dev/loop"), str(disk))
    check(by_mp[env.path("ext4")]["total-bytes"] > 0, "sizes")
    check(env.path("tmp") not in by_mp, "tmpfs is not on a block device")
    env.stop_agent()


def test_hook_dir_runs_in_name_order_and_thaws_in_reverse(env):
    env.standard_layout()
    marker = env.path("hook-calls")
    hook_dir = env.path("hook.d")
    os.makedirs(hook_dir)
    for name in ("20-db", "10-app", "30-cache", ".hidden", "40-backup~"):
        with open(os.path.join(hook_dir, name), "w") as f:
            f.write('#!/bin/sh\necho "%s $1" >> %s\n' % (name, marker))
        os.chmod(os.path.join(hook_dir, name), 0o755)
    env.write_config("[hooks]\nfsfreeze-hook=\nfsfreeze-hook-dir=%s\n" % hook_dir)
    c = env.start_agent()
    check(c.ok("stillpoint-capabilities")["freeze"]["hooks"] is True, "hooks reported")
    c.ok("stillpoint-freeze", {"mountpoints": [env.path("xfs")]})
    c.ok("stillpoint-thaw")
    with open(marker) as f:
        calls = f.read().splitlines()
    check(calls == ["10-app freeze", "20-db freeze", "30-cache freeze",
                    "30-cache thaw", "20-db thaw", "10-app thaw"], "hook order: %s" % calls)
    env.stop_agent()


def test_standard_freeze_gets_the_configured_default_lease(env):
    env.standard_layout()
    env.write_config(lease_ms=600)
    c = env.start_agent()
    check(c.ok("guest-fsfreeze-freeze-list", {"mountpoints": [env.path("ext4")]}) == 1, "one")
    env.writer("ext4", "f").finish("after the default lease ran out")
    check(c.ok("guest-fsfreeze-status") == "thawed", "thawed by itself")
    # The thaw of whoever froze (libvirt, Proxmox) is told the freeze did not hold, once: it
    # would record its snapshot as quiesced. After that, as qemu-ga: thawing a thawed guest is
    # not an error.
    e = c.error("guest-fsfreeze-thaw")
    check(e["class"] == "GenericError" and "code" not in e and "lease expired" in e["desc"]
          and "not consistent" in e["desc"], str(e))
    check(c.ok("guest-fsfreeze-thaw") == 0, "nothing left to thaw")
    env.stop_agent()


def test_sigterm_thaws_before_exit(env):
    env.standard_layout()
    c = env.start_agent()
    c.ok("guest-fsfreeze-freeze")
    w = env.writer("xfs", "f")
    check(w.blocked(), "frozen")
    env.stop_agent()   # asserts exit status 0 (and no leaks under ASan)
    w.finish("after SIGTERM")
    check(not os.path.exists(os.path.join(env.state_dir, "frozen")), "state removed")


def test_log_lines_are_held_while_frozen(env):
    env.standard_layout()
    c = env.start_agent()
    log = env.path("agent.log")
    c.ok("stillpoint-freeze", {"mountpoints": [env.path("xfs")]})
    c.error("stillpoint-freeze")          # refused: logs nothing either way
    with open(log) as f:
        held = f.read()
    check("froze" not in held, "a log line was written while frozen: %s" % held)
    c.ok("stillpoint-thaw")
    with open(log) as f:
        text = f.read()
    check("froze 1 filesystem" in text and "thawed 1 filesystem" in text, text)
    check(text.index("froze 1") < text.index("thawed 1"), "order kept")
    env.stop_agent()


def test_systemd_notify_ready_and_watchdog(env):
    """Type=notify and WatchdogSec= without libsystemd: READY=1, then WATCHDOG=1 pings."""
    path = env.path("notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(PROMPT_S)
    os.environ["NOTIFY_SOCKET"] = path
    os.environ["WATCHDOG_USEC"] = "200000"
    try:
        env.start_agent()
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    check(sock.recv(64) == b"READY=1", "READY=1 first")
    t0 = time.monotonic()
    for _ in range(3):
        check(sock.recv(64) == b"WATCHDOG=1", "watchdog ping")
    # Pings every half interval: three take about 300 ms.
    check(time.monotonic() - t0 < 2.0, "pings too slow")
    env.stop_agent()
    sock.close()


def test_watchdog_is_fed_while_a_hook_runs(env):
    """The main loop waits for a freeze hook; the agent still tells systemd it is alive."""
    env.standard_layout()
    env.set_hook('[ "$1" = freeze ] && sleep 2\nexit 0\n')
    env.write_config("[hooks]\nfsfreeze-hook=%s\ntimeout-ms=10000\n" % env.hook)
    path = env.path("notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(PROMPT_S)
    os.environ["NOTIFY_SOCKET"] = path
    os.environ["WATCHDOG_USEC"] = "600000"
    try:
        c = env.start_agent()
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    check(sock.recv(64) == b"READY=1", "READY=1 first")
    result = {}
    caller = threading.Thread(target=lambda: result.update(r=c.ok("stillpoint-freeze", {
        "mountpoints": [env.path("xfs")]})))
    t0 = time.monotonic()
    caller.start()
    pings = []
    while caller.is_alive():
        sock.settimeout(0.2)
        try:
            if sock.recv(64) == b"WATCHDOG=1":
                pings.append(time.monotonic() - t0)
        except socket.timeout:
            pass
    caller.join()
    during = [t for t in pings if 0.5 < t < 1.9]
    check(len(during) >= 1, "no watchdog ping during the 2 s hook: %s" % pings)
    check(len(result["r"]["frozen"]) == 1, str(result))
    c.ok("stillpoint-thaw")
    env.stop_agent()
    sock.close()


def test_btrfs_subvolumes_are_one_filesystem(env):
    """Two subvolumes of one btrfs mounted (and not its top level): each has its own st_dev, but
    it is one superblock, frozen once through the first."""
    if not shutil.which("mkfs.btrfs"):
        raise Skip("mkfs.btrfs not installed (btrfs-progs)")
    img = os.path.join(env.base, "btrfs.img")
    with open(img, "wb") as f:
        f.truncate(200 << 20)
    run("mkfs.btrfs", "-q", img)
    env.mount(img, env.path("btr-top"))
    for sub in ("sub-a", "sub-b"):
        run("btrfs", "-q", "subvolume", "create", env.path("btr-top", sub))
    subprocess.run(["umount", env.path("btr-top")], check=True)
    env.mounts.remove(env.path("btr-top"))
    env.mount(img, env.path("a"), "subvol=sub-a")
    env.mount(img, env.path("b"), "subvol=sub-b")
    check(os.stat(env.path("a")).st_dev != os.stat(env.path("b")).st_dev, "subvolume st_dev differ")
    c = env.start_agent()
    # Anonymous st_dev, but the disk under it is known (from the device it was mounted from).
    fs = {f["mountpoint"]: f for f in c.ok("guest-get-fsinfo")}
    check(fs[env.path("a")]["type"] == "btrfs", str(fs.get(env.path("a"))))
    check([d["dev"][:9] for d in fs[env.path("a")]["disk"]] == ["/dev/loop"], str(fs[env.path("a")]))
    r = c.ok("stillpoint-freeze")
    check(frozen_mountpoints(r) == [env.path("a")], "one superblock, frozen once: %s" % r)
    check(skipped(r).get(env.path("b")) == "same-filesystem", str(r))
    w = env.writer("b", "f")
    check(w.blocked(), "the other subvolume is frozen too")
    t = c.ok("stillpoint-thaw")
    check(t["thawed"] == 1 and t["consistent"] is True, str(t))
    w.finish("after thaw")
    env.stop_agent()


def loop_sectors_written(mp):
    """Sectors written to the loop device mounted at mp (/sys/block/loopN/stat, field 7)."""
    dev = run("findmnt", "-n", "-o", "SOURCE", mp).stdout.decode().strip()
    with open("/sys/block/%s/stat" % os.path.basename(dev)) as f:
        return int(f.read().split()[6])


def test_flush_writes_dirty_data_without_freezing(env):
    env.mount(env.image("ext4", "ext4", 96), env.path("ext4"))
    env.mount(env.image("xfs", "xfs", 320), env.path("xfs"))
    c = env.start_agent()
    check("stillpoint-flush" in c.ok("stillpoint-capabilities")["commands"], "advertised")
    size = 24 << 20
    for fs in ("ext4", "xfs"):
        with open(env.path(fs, "dirty"), "wb") as f:   # buffered: no fsync, pages stay dirty
            f.write(os.urandom(size))
    before = {fs: loop_sectors_written(env.path(fs)) for fs in ("ext4", "xfs")}
    r = c.ok("stillpoint-flush", {"mountpoints": [env.path("ext4")]})
    check(r["flushed"] == 1 and r["ms"] >= 0, str(r))
    ext4 = loop_sectors_written(env.path("ext4")) - before["ext4"]
    check(ext4 * 512 >= size, "ext4: %d bytes written by the flush, %d were dirty" % (ext4 * 512, size))
    # Nothing was frozen: a writer goes straight through.
    check(c.ok("guest-fsfreeze-status") == "thawed", "not frozen")
    env.writer("ext4", "after-flush").finish("without a freeze")
    r = c.ok("stillpoint-flush")
    check(r["flushed"] == 2, "both test filesystems: %s" % r)
    xfs = loop_sectors_written(env.path("xfs")) - before["xfs"]
    check(xfs * 512 >= size, "xfs: %d bytes written by the flush, %d were dirty" % (xfs * 512, size))
    check(c.error("stillpoint-flush", {"mountpoints": [env.path("nowhere")]}).get("code") ==
          "unknown-mountpoint", "unknown mountpoint")
    check(c.error("stillpoint-flush", {"disks": ["no-such-serial"]}).get("code") == "unknown-disk",
          "unknown disk")
    # Refused while frozen, and the freeze is untouched.
    f = c.ok("stillpoint-freeze", {"lease-ms": 20000})
    check(c.error("stillpoint-flush").get("code") == "already-frozen", "refused while frozen")
    check(c.ok("stillpoint-status")["status"] == "frozen", "still frozen")
    t = c.ok("stillpoint-thaw", {"epoch": f["epoch"]})
    check(t["consistent"] is True, str(t))
    check(c.ok("stillpoint-flush")["flushed"] == 2, "flushes again once thawed")
    env.stop_agent()


def private_mount_namespace():
    """Our mounts stay ours: invisible to the machine, and gone when we exit."""
    CLONE_NEWNS = 0x00020000
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    run("mount", "--make-rprivate", "/")


SCENARIOS = {name[5:]: fn for name, fn in globals().items() if name.startswith("test_")}


def prepare():
    need_root("loop devices, mount, FIFREEZE")
    need_tools("mkfs.ext4", "mkfs.xfs", "mount", "umount")
    private_mount_namespace()


if __name__ == "__main__":
    sys.exit(scenario_main(SCENARIOS, "AGENT", Env, prepare))
