#!/usr/bin/python3
"""stillpointd and its roles, on a private system-like bus.

Usage: daemon-roles.py STILLPOINTD STILLPOINT FAKE_AGENT BUS_POLICY SCENARIO   (root; 77 = skip)

A private dbus-daemon with a configuration like the system bus's (method calls denied by
default) includes stillpointd's own policy file; nothing under /etc or /usr/share is touched.
The VM is a paused QEMU (no guest) with real qcow2 disks and sp-fake-agent as its guest agent,
as in host-qemu.sh. Callers that are not root run as nobody, in the group nogroup (the
"backup operator") or in the group daemon (no role).

Authorities (README "Roles"):
  rules_file: stillpointd --rules FILE, the test authority behind the same interface as polkit.
  polkit:     the real polkit client code (libpolkit-gobject) asking a mock polkitd
              (python-dbusmock's polkitd template) on the private bus: polkitd itself cannot
              run here (it needs the system bus and reads actions only from /usr/share).
"""
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback

SKIP = 77
PROMPT_S = 30
OPERATOR = {"user": "nobody", "group": "nogroup", "extra_groups": []}
NO_ROLE = {"user": "nobody", "group": "daemon", "extra_groups": []}
# A second local user (another uid than nobody's).
OTHER_USER = {"user": "daemon", "group": "daemon", "extra_groups": []}
BACKUP_ACTIONS = ["org.stillpoint.read", "org.stillpoint.checkpoint.create",
                  "org.stillpoint.checkpoint.export", "org.stillpoint.backup",
                  "org.stillpoint.schedule"]

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  %(type)s
  <listen>unix:path=%(socket)s</listen>%(servicedir)s
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
    <!-- the mock polkitd (on a real system, polkit's own policy file says this) -->
    <allow send_destination="org.freedesktop.PolicyKit1"/>
  </policy>
  <policy user="root">
    <allow own="org.freedesktop.PolicyKit1"/>
    <!-- dbusmock's control interface -->
    <allow send_interface="org.freedesktop.DBus.Mock"/>
  </policy>
  <include>%(policy)s</include>
</busconfig>
"""


class TestFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)
    print("ok - " + what)


class Env:
    def __init__(self, daemon, cli, fake_agent, policy):
        self.daemon_bin, self.cli, self.fake_agent, self.policy = daemon, cli, fake_agent, policy
        self.base = tempfile.mkdtemp(prefix="sp-daemon-")
        os.chmod(self.base, 0o755)
        self.procs = []
        self.env = dict(os.environ)

    def path(self, *p):
        return os.path.join(self.base, *p)

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, env=self.env, **kw)
        self.procs.append(p)
        return p

    def wait_socket(self, path):
        deadline = time.monotonic() + PROMPT_S
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise TestFailure("socket %s never appeared" % path)
            time.sleep(0.05)

    def start_bus(self, servicedir=None):
        """A private bus like the system bus. With servicedir it activates the services there
        itself: a bus of type "system" would hand activation to the setuid helper, which only
        reads the real system's service directory."""
        sock = self.path("bus.sock")
        with open(self.path("bus.conf"), "w") as f:
            f.write(BUS_CONFIG % {
                "socket": sock, "policy": self.policy,
                "type": "<type>system</type>" if servicedir is None else "",
                "servicedir": "" if servicedir is None
                else "\n  <servicedir>%s</servicedir>" % servicedir})
        # Set before the bus starts: what it activates inherits its environment.
        self.env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=" + sock
        bus = self.spawn(["dbus-daemon", "--nofork", "--nopidfile", "--config-file",
                          self.path("bus.conf"), "--print-address=1"], stdout=subprocess.PIPE)
        check(bus.stdout.readline().startswith(b"unix:"), "private bus started")
        self.address = "unix:path=" + sock
        self.env["DBUS_SYSTEM_BUS_ADDRESS"] = self.address

    def start_vm(self):
        os.makedirs(self.path("img"))
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", self.path("img", "a.qcow2"), "32M"],
                       check=True)
        # Data a backup session must read back (not zeros a wrong export would also give).
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 256k",
                        self.path("img", "a.qcow2")], check=True, stdout=subprocess.DEVNULL)
        self.spawn(["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-S", "-nodefaults",
                    "-display", "none", "-qmp", "unix:%s,server=on,wait=off" % self.path("qmp.sock"),
                    "-blockdev", "driver=qcow2,node-name=disk0,file.driver=file,file.filename=%s"
                    % self.path("img", "a.qcow2"),
                    "-device", "virtio-blk-pci,drive=disk0,id=vda,serial=SPDATA0"])
        self.start_agent()
        self.wait_socket(self.path("qmp.sock"))

    def start_agent(self, *args):
        """sp-fake-agent as the VM's agent (again: the one before is stopped)."""
        if getattr(self, "agent", None):
            self.agent.kill()
            self.agent.wait()
            os.unlink(self.path("agent.sock"))
        self.agent = self.spawn([self.fake_agent, "--socket", self.path("agent.sock"), "--log",
                                 self.path("agent.log")] + list(args))
        self.wait_socket(self.path("agent.sock"))

    def start_daemon(self, *args):
        r, w = os.pipe()
        self.daemon_log = open(self.path("daemon.log"), "ab")
        self.daemon = self.spawn([self.daemon_bin, "--store", self.path("store.db"), "--ready-fd",
                                  str(w)] + list(args), pass_fds=(w,), stderr=self.daemon_log)
        os.close(w)
        with os.fdopen(r) as ready:
            check(ready.readline() == "READY\n", "stillpointd serving")

    def call(self, who, method, *args):
        """gdbus call as root (who=None) or another user; (ok, output)."""
        kw = dict(who or {})
        r = subprocess.run(["gdbus", "call", "--address", self.address, "--dest",
                            "org.stillpoint.Coordinator1", "--object-path",
                            "/org/stillpoint/Coordinator1", "--method",
                            "org.stillpoint.Coordinator1." + method] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=PROMPT_S * 4, env=self.env, **kw)
        return r.returncode == 0, (r.stdout if r.returncode == 0 else r.stderr)

    def call_async(self, who, method, *args, interactive=False):
        """gdbus call in the background (a long client timeout): the Popen."""
        return self.spawn(["gdbus", "call", "--address", self.address, "--timeout", "300"] +
                          (["--interactive"] if interactive else []) +
                          ["--dest", "org.stillpoint.Coordinator1", "--object-path",
                           "/org/stillpoint/Coordinator1", "--method",
                           "org.stillpoint.Coordinator1." + method] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          **dict(who or {}))

    def ok(self, who, method, *args):
        ok, out = self.call(who, method, *args)
        check(ok, "%s %s allowed (%s)" % (who["group"] if who else "root", method, out.strip()[:300]))
        return out

    def refused(self, who, method, *args):
        ok, out = self.call(who, method, *args)
        check(not ok and "NotAuthorized" in out and "Nothing was changed" in out,
              "%s %s refused with a clear error (%s)" % (who["group"], method, out.strip()[:300]))

    def cli_run(self, who, *args):
        return subprocess.run([self.cli] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=PROMPT_S * 4,
                              env=self.env, cwd="/", **dict(who or {}))

    def snapshot(self):
        """What a refusal must not change: the store's records and every image file."""
        ok, records = self.call(None, "ListCheckpoints", "vm1")
        files = sorted((p, os.stat(os.path.join(self.path("img"), p)).st_mtime_ns)
                       for p in os.listdir(self.path("img")))
        return records, files

    def stop_daemon(self):
        self.daemon.send_signal(signal.SIGTERM)
        check(self.daemon.wait(timeout=PROMPT_S) == 0, "stillpointd exits cleanly on SIGTERM")

    def cleanup(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.base, ignore_errors=True)


def same_results(env):
    """The CLI prints the same through stillpointd as on the store directly: the tree, the JSON
    documents (with overlay-bytes, missing-files ...), the VM list; as root and as the operator."""
    # One more checkpoint, so that the tree has depth to draw.
    r = env.cli_run(None, "--daemon", "checkpoint", "create", "vm1", "--name", "child")
    check(r.returncode == 0, "root creates a child through stillpointd (%s)" % r.stderr.strip())
    for args in (["checkpoint", "list", "vm1"], ["--json", "checkpoint", "list", "vm1"],
                 ["vm", "list"], ["--json", "vm", "list"], ["vm", "disks", "vm1"],
                 ["--json", "vm", "disks", "vm1"]):
        direct = env.cli_run(None, "--store", env.path("store.db"), *args)
        check(direct.returncode == 0 and direct.stdout.strip(),
              "%s directly (%s)" % (" ".join(args), direct.stderr.strip()))
        for who in (None, OPERATOR):
            via = env.cli_run(who, *(["--daemon"] if who is None else []), *args)
            check(via.returncode == 0 and via.stdout == direct.stdout,
                  "%s through stillpointd (%s) prints what it prints directly:\n%s---\n%s%s"
                  % (" ".join(args), who["group"] if who else "root", direct.stdout, via.stdout,
                     via.stderr))
    doc = json.loads(direct.stdout)
    check(doc[0]["disk"] == "vda" and "image" in doc[0], "vm disks --json: the direct document")
    # vm recover is a VM administrator's (org.stillpoint.vm.admin): root, not the operator.
    r = env.cli_run(None, "--daemon", "vm", "recover", "vm1")
    check(r.returncode == 0, "root recovers through stillpointd (%s)" % r.stderr.strip())
    r = env.cli_run(OPERATOR, "vm", "recover", "vm1")
    check(r.returncode == 1 and "not authorized to recover VMs" in r.stderr,
          "the operator's CLI is refused vm recover (%s)" % r.stderr.strip())
    doc = json.loads(env.cli_run(OPERATOR, "--json", "checkpoint", "list", "vm1").stdout)
    check(all("overlay-bytes" in c and "missing-files" in c for c in doc["checkpoints"]),
          "checkpoint list --json through stillpointd has overlay-bytes and missing-files")
    r = env.cli_run(None, "--store", env.path("store.db"), "checkpoint", "list", "vm1")
    check("└─" in r.stdout and "<- now" in r.stdout, "checkpoint list draws the tree:\n" + r.stdout)


def direct(env, *args):
    return env.cli_run(None, "--store", env.path("store.db"), *args)


def via(env, *args, who=None):
    return env.cli_run(who, *(["--daemon"] if who is None else []), *args)


def ran(r, what):
    check(r.returncode == 0, "%s (%s)" % (what, r.stderr.strip()[-600:]))
    return r.stdout


MADE_BY = re.compile(r'"made-by":"([^"]*)"')


def same(what, d, v, creates=True):
    """d (direct) and v (through stillpointd) print the same, but for who made the checkpoint it
    creates: the daemon records its caller. A command that creates none prints the same made-by."""
    if not creates:
        check(d == v, "%s prints the same through stillpointd as directly:\n%s---\n%s" % (what, d, v))
        return
    for m in MADE_BY.finditer(v):
        check(m.group(1).endswith(" through stillpointd"),
              "%s: made through stillpointd, recorded as made by %r" % (what, m.group(1)))
    d, v = MADE_BY.sub('"made-by":<made-by>', d), MADE_BY.sub('"made-by":<made-by>', v)
    check(d == v, "%s prints the same through stillpointd as directly:\n%s---\n%s" % (what, d, v))


def current_entry(env):
    """The VM's current checkpoint, as direct `checkpoint list --json` prints it: (dict, text)."""
    out = ran(direct(env, "--json", "checkpoint", "list", "vm1"), "checkpoint list --json")
    doc = json.loads(out)
    return next(c for c in doc["checkpoints"] if c["id"] == doc["current"]), out


def normalise_checkpoint(out, cp):
    """What differs between two checkpoints made (or applied) the same way, and only that: the
    checkpoint's id and parent, its creation time, and its files (image, overlay, state)."""
    for key in ("id", "parent"):
        out = out.replace('"%s":%s,' % (key, json.dumps(cp[key])), '"%s":<%s>,' % (key, key))
    out = out.replace("checkpoint %d '" % cp["id"], "checkpoint <id> '")
    out = out.replace(json.dumps(cp["created"]), "<created>")
    for d in cp["disks"]:
        for key in ("image", "overlay"):
            if d[key]:
                out = out.replace(d[key], "<%s %s>" % (key, d["disk"]))
    if cp["state"]:
        out = out.replace(cp["state"], "<state>")
    return out


def same_outputs(env):
    """Every other command stillpointd offers prints on stdout, as text and --json, what it
    prints working on the store directly (stderr, the progress, may differ). Where two runs
    cannot make the same object twice, only what truly differs is normalised: a created
    checkpoint's id, parent, time and file names (normalise_checkpoint), the directory an export
    through the daemon makes (VM-TIME, for the caller's safety), an applied checkpoint's new
    overlay."""
    qmp, agent = env.path("qmp.sock"), env.path("agent.sock")
    for j in ([], ["--json"]):
        # vm add / remove: the same id comes back (SQLite reuses the highest rowid).
        add = j + ["vm", "add", "vm2", "--qmp", qmp, "--agent", agent]
        remove = j + ["vm", "remove", "vm2"]
        d_add, d_remove = ran(direct(env, *add), "vm add"), ran(direct(env, *remove), "vm remove")
        v_add, v_remove = ran(via(env, *add), "vm add"), ran(via(env, *remove), "vm remove")
        same(" ".join(add), d_add, v_add)
        same(" ".join(remove), d_remove, v_remove)
    check(json.loads(d_add) == {"name": "vm2", "id": 2}, "vm add --json: {name, id}")
    for j in ([], ["--json"]):
        recover = j + ["vm", "recover", "vm1"]
        same(" ".join(recover), ran(direct(env, *recover), "vm recover"),
             ran(via(env, *recover), "vm recover"))
    # checkpoint create, of every type, and rename.
    n = 0
    for kind in ([], ["--type", "crash"], ["--type", "standard"],
                 ["--on-quiesce-failure", "standard"]):
        if kind[0:1] == ["--on-quiesce-failure"]:
            env.start_agent("--fail-freeze")   # so that it falls back
        for j in ([], ["--json"]):
            create = j + ["checkpoint", "create", "vm1", "--name", "new"] + kind
            outs = []
            for run in (direct, via):
                n += 1
                out = ran(run(env, *create), " ".join(create))
                cp, listed = current_entry(env)
                if j:
                    # Byte for byte the checkpoint's entry in the direct list.
                    check(out.strip() in listed, "create --json prints the list's entry:\n%s%s"
                          % (out, listed))
                outs.append(normalise_checkpoint(out, cp))
                rename = j + ["checkpoint", "rename", "vm1", "new", "new-%d" % n]
                # Each run renames to its own name (names are unique); --json names it.
                outs.append(ran(run(env, *rename), " ".join(rename))
                            .replace('"new-%d"' % n, '"<new name>"'))
            same(" ".join(create), outs[0], outs[2])
            same("checkpoint rename", outs[1], outs[3])
            if "standard" in kind:
                check(cp["type"] == "standard" and cp["state"], "a standard checkpoint: %s" % cp)
                if not j:
                    check("standard (its memory and device state are saved in <state>)" in outs[2],
                          "standard checkpoint text: %s" % outs[2])
    env.start_agent()
    # checkpoint export: the manifest is where each way puts it.
    for j in ([], ["--json"]):
        for fmt in ([], ["--format", "raw"]):
            outs = []
            for run, who in ((direct, None), (via, OPERATOR)):
                n += 1
                out_dir = env.path("export-%d" % n)
                os.makedirs(out_dir)
                if who:
                    os.chown(out_dir, 65534, 65534)
                export = j + ["checkpoint", "export", "vm1", "nightly", out_dir] + fmt
                out = ran(run(env, *export, **({"who": who} if who else {})), " ".join(export))
                manifest = [m for m in re.findall(r"(/\S*/manifest\.json)", out)]
                check(len(manifest) == 1 and os.path.exists(manifest[0]) and
                      manifest[0].startswith(out_dir + "/"), "export wrote %s" % manifest)
                outs.append(out.replace(manifest[0], "<manifest>").replace(out_dir, "<dir>"))
            same(" ".join(export), outs[0], outs[1])
    # checkpoint delete, of a checkpoint and of a subtree, made the same way each time.
    for j in ([], ["--json"]):
        for subtree in ([], ["--subtree"]):
            outs = []
            for run in (direct, via):
                for name in ["victim"] + (["victim-child"] if subtree else []):
                    ran(direct(env, "-q", "checkpoint", "create", "vm1", "--type", "crash",
                               "--name", name), "create " + name)
                delete = j + ["checkpoint", "delete", "vm1", "victim"] + subtree
                outs.append(ran(run(env, *delete), " ".join(delete)))
            same(" ".join(delete), outs[0], outs[1])


def normalise_session(out, session):
    """What differs between two backup sessions and only that: the session's checkpoint (id,
    name), its bitmaps, and each disk's node, frozen image and overlay."""
    cp = session["checkpoint"]
    out = out.replace('"id":%d' % cp["id"], '"id":<id>')
    values = [cp["name"], session.get("bitmap"), session.get("previous-bitmap")]
    for d in session["disks"]:
        values += [d.get("node"), d.get("image"), d.get("overlay")]
    for v in sorted((v for v in values if v), key=len, reverse=True):
        out = out.replace(v, "<session>")
    return out


def same_sessions(env):
    """backup begin|status|end and hook pre|post through stillpointd print what they print
    directly (text and --json)."""
    for j in ([], ["--json"]):
        for begin, end in ((["backup", "begin"], ["backup", "end"]),
                           (["hook", "pre"], ["hook", "post"])):
            outs = []
            for run in (direct, via):
                out = ran(run(env, *(j + begin + ["vm1"])), " ".join(j + begin))
                session = json.loads(ran(direct(env, "--json", "backup", "status", "vm1"), "status"))
                status = ran(run(env, *(j + ["backup", "status", "vm1"])), "backup status")
                outs.append(normalise_session(out + status, session))
                outs.append(ran(run(env, *(j + end + ["vm1"])), " ".join(j + end)))
            same(" ".join(j + begin), outs[0], outs[2])
            same(" ".join(j + end), outs[1], outs[3], creates=False)


def same_more(env):
    """vm set, checkpoint show, checkpoint retention and the group commands through stillpointd
    print what they print directly, text and --json. Between the two runs, undo puts back what
    the direct run changed (a group made or removed), so that both start alike."""
    for j in ([], ["--json"]):
        for args, undo in ((["vm", "set", "vm1", "--checkpoint-type", "production"], None),
                           (["checkpoint", "show", "vm1", "nightly"], None),
                           (["group", "create", "pair", "vm1"], ["group", "remove", "pair"]),
                           (["group", "list"], None),
                           (["group", "remove", "pair"], ["group", "create", "pair", "vm1"]),
                           (["checkpoint", "retention", "vm1", "--keep", "5"], None)):
            d = ran(direct(env, *(j + args)), " ".join(j + args))
            if undo:
                ran(direct(env, *undo), " ".join(undo))
            same(" ".join(j + args), d, ran(via(env, *(j + args)), " ".join(j + args)),
                 creates=False)
    same_sessions(env)
    same_schedules(env)
    r = via(env, "vm", "recover", "vm1", "--adopt-running")
    check(r.returncode == 1 and "not available through stillpointd" in r.stderr,
          "vm recover --adopt-running is refused through stillpointd, not dropped (%s)"
          % r.stderr.strip())


def same_schedules(env):
    """schedule create|list|remove through stillpointd print what they print directly, text and
    --json: the daemon runs with --unit-dir UNITS (test builds, root's), the direct runs are
    given the same directory; the caller's --unit-dir is refused through the daemon."""
    units = ["--unit-dir", env.path("units")]
    create = ["schedule", "create", "vm1", "--on-calendar", "Mon *-*-* 02:30:00", "--keep", "3"]
    for j in ([], ["--json"]):
        for args, undo in ((create, ["schedule", "remove", "vm1"]),
                           (["schedule", "list"], None),
                           (["schedule", "list", "vm1"], None),
                           (["schedule", "remove", "vm1"], create)):
            d = ran(direct(env, *(j + args + units)), " ".join(j + args))
            if undo:
                ran(direct(env, *(undo + units)), " ".join(undo))
            same(" ".join(j + args), d, ran(via(env, *(j + args)), " ".join(j + args)),
                 creates=False)
    r = via(env, "schedule", "list", *units)
    check(r.returncode != 0 and "--unit-dir" in r.stderr and r.stdout == "",
          "--unit-dir is refused through stillpointd (%s)" % r.stderr.strip())


def same_group(env):
    """checkpoint create --group through stillpointd prints what it prints directly (text and
    --json); the operator's create role covers it, a caller without it is refused."""
    ran(direct(env, "group", "create", "solo", "vm1"), "group create solo")
    for j in ([], ["--json"]):
        outs = []
        for run in (direct, via):
            args = j + ["checkpoint", "create", "--group", "solo", "--name", "grouped"]
            out = ran(run(env, *args), " ".join(args))
            cp, _ = current_entry(env)
            outs.append(normalise_checkpoint(out, cp))
            ran(direct(env, "checkpoint", "delete", "vm1", "grouped"), "delete grouped")
        same(" ".join(j + ["checkpoint", "create", "--group"]), outs[0], outs[1])
        if j:
            check(json.loads(out)[0]["vm"] == "vm1", "--json names each member's VM")
    ran(via(env, "checkpoint", "create", "--group", "solo", who=OPERATOR),
        "the operator's group checkpoint goes through stillpointd")
    cp, _ = current_entry(env)
    check(cp["name"].startswith("solo ("), "named after the group: %s" % cp["name"])
    ran(direct(env, "checkpoint", "delete", "vm1", "#%d" % cp["id"]), "delete it")
    env.refused(NO_ROLE, "CreateGroupCheckpoint", "solo", "{}")
    ran(direct(env, "group", "remove", "solo"), "group remove solo")


def same_apply(env):
    """checkpoint apply (text and --json, production and standard): the links to start the VM
    from are in the daemon's store directory. Stops the VM (--force)."""
    d = json.loads(ran(direct(env, "--json", "checkpoint", "list", "vm1"), "list"))
    standard = next(c["name"] for c in d["checkpoints"] if c["type"] == "standard")
    for target in ("child", standard):
        for j in ([], ["--json"]):
            apply = j + ["checkpoint", "apply", "vm1", target, "--force"]
            outs = []
            for run in (direct, via):
                out = ran(run(env, *apply), " ".join(apply))
                cp, _ = current_entry(env)
                check(cp["name"] == target, "applied %s" % target)
                # Its overlay is new each time; nothing else differs.
                for disk in cp["disks"]:
                    out = out.replace(disk["overlay"], "<overlay %s>" % disk["disk"])
                outs.append(out)
            same(" ".join(apply), outs[0], outs[1], creates=False)
            if not j:
                check(env.path("vms", "vm1", "vda.qcow2") in outs[1] and
                      ("standard checkpoint" in outs[1]) == (target == standard),
                      "apply names the link to start from:\n" + outs[1])


def progress_to_caller_only(env, name):
    """Progress reaches the caller and no one else (issue 16, item 3): while the operator's CLI
    creates a checkpoint and prints the progress it receives, another connection of the same
    user subscribed to the daemon's signals, and another user eavesdropping (dbus-monitor falls
    back to eavesdrop match rules when it may not become a monitor), receive none of it."""
    same_user = env.spawn(["gdbus", "monitor", "--address", env.address, "--dest",
                           "org.stillpoint.Coordinator1"], stdout=subprocess.PIPE, text=True,
                          **OPERATOR)
    # Ready once it has resolved the name's owner (its match rules are in place by then).
    for line in same_user.stdout:
        if "is owned by" in line:
            break
    eavesdropper = env.spawn(["dbus-monitor", "--address", env.address,
                              "interface='org.stillpoint.Coordinator1'",
                              "sender='org.stillpoint.Coordinator1'"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             **OTHER_USER)
    eavesdropper.stdout.readline()   # its first message: it is connected, its rules added
    r = env.cli_run(OPERATOR, "checkpoint", "create", "vm1", "--name", name)
    check(r.returncode == 0 and "'%s' of VM 'vm1': application-consistent" % name in r.stdout,
          "the operator's CLI creates through stillpointd (%s%s)" % (r.stdout, r.stderr))
    check(r.stderr.count("stillpoint: ") >= 2,
          "the caller receives its Progress (printed on stderr):\n" + r.stderr)
    for p in (same_user, eavesdropper):
        check(p.poll() is None, "the listener %s was listening all along" % p.args[0])
        p.send_signal(signal.SIGTERM)
    seen = same_user.communicate(timeout=PROMPT_S)[0]
    check("Progress" not in seen, "another connection of the same user receives no Progress:\n"
          + seen)
    seen = eavesdropper.communicate(timeout=PROMPT_S)[0]
    check("Progress" not in seen,
          "another user eavesdropping receives no Progress:\n" + seen)


def whole_api(env):
    """Every command is a method with its action (issue 16, "the whole API on the bus"): vm set,
    checkpoint show and resume, groups, backup sessions; each refused to whom the role table
    (README) does not give it, and done for whom it does."""
    env.refused(OPERATOR, "SetVm", "vm1", "{'checkpoint-type': <'standard'>}")
    env.ok(None, "SetVm", "vm1", "{'checkpoint-type': <'production'>}")
    out = env.ok(OPERATOR, "ShowCheckpoint", "vm1", "nightly")
    check("'vm': <'vm1'>" in out and "'children': <" in out and "'parent-checkpoint'" in out,
          "ShowCheckpoint: the checkpoint show document, typed")
    env.refused(OPERATOR, "ResumeCheckpoint", "vm1")
    env.refused(OPERATOR, "CreateGroup", "pair", "['vm1']")
    env.ok(None, "CreateGroup", "pair", "['vm1']")
    check("{'pair': <[<'vm1'>]>}" in env.ok(OPERATOR, "ListGroups"), "ListGroups: the group")
    env.refused(OPERATOR, "RemoveGroup", "pair")
    env.ok(None, "RemoveGroup", "pair")
    check("{}" in env.ok(OPERATOR, "ListGroups"), "the group is gone")
    # Retention merges checkpoints away: checkpoint.delete's, not the operator's.
    for name in ("sched-1", "sched-2"):
        ran(direct(env, "-q", "checkpoint", "create", "vm1", "--type", "crash", "--scheduled",
                   "--name", name), "a scheduled checkpoint")
    env.refused(OPERATOR, "ApplyRetention", "vm1", "{'keep': <uint32 0>}")
    out = env.ok(None, "ApplyRetention", "vm1", "{'keep': <uint32 1>}")
    listed = ran(direct(env, "--json", "checkpoint", "list", "vm1"), "list")
    check(out.strip() == "(uint32 1,)" and "sched-1" not in listed and "sched-2" in listed,
          "ApplyRetention keeps the newest scheduled checkpoint, merges the older (%s)" % out)
    ran(direct(env, "checkpoint", "delete", "vm1", "sched-2"), "delete sched-2")
    schedule_api(env)
    # A backup session, full then incremental: the operator's (org.stillpoint.backup).
    env.refused(NO_ROLE, "BeginBackup", "vm1", "{}")
    env.refused(NO_ROLE, "GetBackupStatus", "vm1")
    for options in ("{}", "{'incremental': <true>}"):
        out = env.ok(OPERATOR, "BeginBackup", "vm1", options)
        check("'nbd-uri': <'nbd+unix:" in out and ("'changed': <" in out) == ("true" in options),
              "BeginBackup %s: the session, typed, with the changed extents when incremental"
              % options)
        check("'state': <'open'>" in env.ok(OPERATOR, "GetBackupStatus", "vm1"), "it is open")
        sock_dir = session_read_by_caller(env, out)
        env.refused(NO_ROLE, "EndBackup", "vm1", "{}")
        env.ok(OPERATOR, "EndBackup", "vm1", "{}")
        check("'state': <'closed'>" in env.ok(OPERATOR, "GetBackupStatus", "vm1"), "then closed")
        check(not os.path.exists(sock_dir), "EndBackup removed the socket's directory")


def session_read_by_caller(env, out):
    """A session begun through stillpointd is its caller's to read, without root: the operator
    reads the checkpoint's data over NBD (the frozen image's, byte for byte); another user cannot
    connect. Returns the socket's directory."""
    uri = re.search(r"'nbd-uri': <'([^']+)'>", out).group(1)
    image = re.search(r"'image': <'([^']+)'>", out).group(1)
    sock_dir = os.path.dirname(uri.split("socket=", 1)[1])
    st = os.stat(sock_dir)
    check(st.st_uid == 0 and (st.st_mode & 0o777) == 0o711,
          "the session's socket directory stays root's, 0711: the caller can leave nothing in it"
          " (uid %d, %o)" % (st.st_uid, st.st_mode & 0o777))
    st = os.lstat(os.path.join(sock_dir, "nbd.sock"))
    check(stat.S_ISSOCK(st.st_mode) and st.st_uid == 65534 and (st.st_mode & 0o777) == 0o600,
          "the session's socket is the caller's alone (uid %d, %o)"
          % (st.st_uid, st.st_mode & 0o777))
    copy = env.path("operator", "copy.raw")
    shutil.rmtree(env.path("operator"), ignore_errors=True)
    os.mkdir(env.path("operator"), 0o700)
    os.chown(env.path("operator"), 65534, -1)
    r = subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", uri, copy],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       cwd=env.path("operator"), timeout=PROMPT_S * 4, **OPERATOR)
    check(r.returncode == 0, "the operator (not root) reads the session's disk over NBD (%s)"
          % r.stdout.strip())
    r = subprocess.run(["qemu-img", "compare", "-U", "-f", "raw", "-F", "qcow2", copy, image],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(r.returncode == 0, "what it read is the checkpoint's data, the frozen image's (%s)"
          % r.stdout.strip())
    r = subprocess.run(["qemu-img", "info", uri], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=PROMPT_S * 4, **OTHER_USER)
    check(r.returncode != 0, "another user cannot connect to the session (%s)" % r.stdout.strip())
    return sock_dir


# Connects to the bus, calls Watch (unless told "listen") and prints every signal of stillpointd
# it receives, one line each.
WATCHER = r"""
import sys
from gi.repository import Gio, GLib
bus = Gio.DBusConnection.new_for_address_sync(
    sys.argv[1], Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
    Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
def on_signal(conn, sender, path, iface, name, params):
    print(name, *params.unpack(), flush=True)
bus.signal_subscribe(None, "org.stillpoint.Coordinator1", None, None, None,
                     Gio.DBusSignalFlags.NONE, on_signal)
if sys.argv[2] == "watch":
    try:
        bus.call_sync("org.stillpoint.Coordinator1", "/org/stillpoint/Coordinator1",
                      "org.stillpoint.Coordinator1", "Watch", None, None,
                      Gio.DBusCallFlags.NONE, 30000, None)
    except GLib.Error as e:
        print("error:", e.message, flush=True)
        sys.exit(0)
print("ready", flush=True)
GLib.MainLoop().run()
"""


def start_watcher(env, who, mode):
    """WATCHER as who; its output file, once it is ready (or refused)."""
    path = env.path("watch-%s-%d.out" % (mode, len(env.procs)))
    out = open(path, "w")
    env.spawn(["/usr/bin/python3", "-c", WATCHER, env.address, mode], stdout=out,
              stderr=subprocess.STDOUT, **who)
    wait_for("the watcher is ready", lambda: open(path).read().endswith("\n"))
    return path


def watching(env):
    """VMs and checkpoints seen as they appear and go, without polling (issue 16): Watch
    (the read role) and unicast signals to the watchers; no one else receives them."""
    watcher = start_watcher(env, OPERATOR, "watch")
    check(open(watcher).read() == "ready\n", "the operator watches")
    refused = start_watcher(env, NO_ROLE, "watch")
    check("NotAuthorized" in open(refused).read(), "a caller without the read role may not watch "
          "(%s)" % open(refused).read().strip())
    listener = start_watcher(env, OTHER_USER, "listen")
    env.ok(None, "AddVm", "vm3", "{'driver': <'hook'>, 'hook-command': <'true'>}")
    env.ok(OPERATOR, "CreateCheckpoint", "vm1", "{'name': <'watched'>, 'type': <'crash'>}")
    env.ok(None, "RemoveVm", "vm3", "true")
    want = "ready\nVmAdded vm3\nCheckpointsChanged vm1\nVmRemoved vm3\n"
    wait_for("the watcher hears of the changes", lambda: open(watcher).read() == want)
    check(True, "the watcher hears of a VM added, a checkpoint made and a VM removed, in order")
    check(open(listener).read() == "ready\n",
          "a connection that did not Watch receives none of it: %r" % open(listener).read())
    env.ok(None, "DeleteCheckpoint", "vm1", "watched", "false")


def schedule_api(env):
    """Schedules are the operator's (org.stillpoint.schedule; listing is read's): the units go
    into the daemon's directory, run the installed CLI on the daemon's store, and the caller's
    calendar cannot add a line to them."""
    units = env.path("units")
    env.refused(NO_ROLE, "CreateSchedule", "vm1", "{}")
    env.refused(NO_ROLE, "ListSchedules", "")
    out = env.ok(OPERATOR, "CreateSchedule", "vm1",
                 "{'on_calendar': <'hourly'>, 'keep': <uint32 2>}")
    check("'event': <'schedule-written'>" in out and "'enabled': <false>" in out and
          "'unit_dir': <'%s'>" % units in out, "CreateSchedule: the document, typed (%s)" % out)
    with open(os.path.join(units, "stillpoint-checkpoint-vm1.service")) as f:
        service = f.read()
    check('--store "%s" checkpoint create --scheduled "vm1"' % env.path("store.db") in service
          and "--keep 2" in service and "ExecStart=\"/" in service,
          "the service runs the installed CLI on the daemon's store:\n" + service)
    ok, msg = env.call(OPERATOR, "CreateSchedule", "vm1", "{'on_calendar': <'daily\nOnBootSec=1'>}")
    check(not ok and "InvalidArgs" in msg, "a calendar with a line break is refused (%s)" % msg)
    out = env.ok(OPERATOR, "ListSchedules", "")
    check("'on_calendar': <'hourly'>" in out and "'keep': <int64 2>" in out,
          "ListSchedules: the schedule, typed (%s)" % out)
    env.refused(NO_ROLE, "RemoveSchedule", "vm1")
    env.ok(OPERATOR, "RemoveSchedule", "vm1")
    check(os.listdir(units) == [], "RemoveSchedule deleted both units")
    ok, msg = env.call(OPERATOR, "RemoveSchedule", "vm1")
    check(not ok and "NotFound" in msg, "a second RemoveSchedule finds none (%s)" % msg)


def roles(env, operator_setup):
    out = env.ok(None, "AddVm", "vm1", "{'qmp-socket': <'%s'>, 'agent-socket': <'%s'>}"
                 % (env.path("qmp.sock"), env.path("agent.sock")))
    check(out.strip() == "({'name': <'vm1'>, 'id': <int64 1>},)",
          "AddVm returns what vm add --json prints, typed (%s)" % out.strip())
    out = env.ok(OPERATOR, "CreateCheckpoint", "vm1", "{'name': <'nightly'>}")
    check("'consistency': <'application'>" in out, "an application-consistent checkpoint")
    check(out.startswith("({'id': <int64 1>, 'parent': <@ay []>, 'name': <'nightly'>"),
          "typed, the document the CLI prints for it, null as empty bytes (%s)" % out[:200])
    check("nightly" in env.ok(OPERATOR, "ListCheckpoints", "vm1"), "the operator lists checkpoints")
    # Export into a directory the operator owns: the copy is theirs.
    out_dir = env.path("export")
    os.makedirs(out_dir)
    os.chown(out_dir, 65534, 65534)
    out = env.ok(OPERATOR, "ExportCheckpoint", "vm1", "nightly", out_dir, "qcow2")
    manifest = out.split("'")[1]
    check(os.path.dirname(os.path.dirname(manifest)) == out_dir, "export in a new directory")
    check(all(os.stat(os.path.join(os.path.dirname(manifest), f)).st_uid == 65534
              for f in os.listdir(os.path.dirname(manifest))) and
          os.stat(os.path.dirname(manifest)).st_uid == 65534, "export given to the operator")
    disk = os.path.join(os.path.dirname(manifest), "vm1-vda.qcow2")
    check(os.path.exists(disk) and subprocess.run(["qemu-img", "check", "-q", disk]).returncode == 0,
          "the exported disk is a sound image (%s)" % os.listdir(os.path.dirname(manifest)))
    with open(manifest) as f:
        m = json.load(f)
    check(m["checkpoint"] == "nightly" and "/proc/" not in json.dumps(m),
          "the manifest names the checkpoint and no staging path: %s" % m)
    ok, msg = env.call(OPERATOR, "ExportCheckpoint", "vm1", "nightly", env.base, "qcow2")
    check(not ok and "is not yours" in msg, "no export into a directory the operator does not own")
    os.symlink(out_dir, env.path("link"))
    ok, msg = env.call(OPERATOR, "ExportCheckpoint", "vm1", "nightly", env.path("link"), "qcow2")
    check(not ok and "not a symlink" in msg, "no export through a symlink")
    before = env.snapshot()
    env.refused(OPERATOR, "ApplyCheckpoint", "vm1", "nightly", "{'force': <true>}")
    env.refused(OPERATOR, "DeleteCheckpoint", "vm1", "nightly", "false")
    env.refused(OPERATOR, "RenameCheckpoint", "vm1", "nightly", "renamed")
    env.refused(OPERATOR, "RemoveVm", "vm1", "true")
    env.refused(OPERATOR, "RecoverVm", "vm1")
    env.refused(NO_ROLE, "CreateCheckpoint", "vm1", "{}")
    env.refused(NO_ROLE, "ListVms")
    check(env.snapshot() == before, "nothing changed on refusal (records and image files)")
    # The CLI goes through the daemon by itself when not root (and with --daemon when root).
    progress_to_caller_only(env, "via-cli")
    r = env.cli_run(OPERATOR, "checkpoint", "delete", "vm1", "via-cli")
    check(r.returncode == 1 and "not authorized to delete checkpoints" in r.stderr,
          "the operator's CLI is refused delete (%s)" % r.stderr.strip())
    r = env.cli_run(None, "--daemon", "--json", "checkpoint", "list", "vm1")
    check(r.returncode == 0 and
          [c["name"] for c in json.loads(r.stdout)["checkpoints"]] == ["nightly", "via-cli"],
          "root's CLI lists through stillpointd (%s%s)" % (r.stdout, r.stderr))
    same_results(env)
    same_outputs(env)
    same_group(env)
    whole_api(env)
    watching(env)
    same_more(env)
    # Root may do what the operator may not.
    env.ok(None, "RenameCheckpoint", "vm1", "nightly", "kept")
    env.ok(None, "DeleteCheckpoint", "vm1", "kept", "false")
    check("'kept'" not in env.ok(None, "ListCheckpoints", "vm1"), "root deletes")
    same_apply(env)
    env.stop_daemon()


def test_rules_file(env):
    env.start_bus()
    env.start_vm()
    rules = env.path("rules.conf")
    with open(rules, "w") as f:
        f.write("[actions]\n" + "".join("%s=group:nogroup\n" % a for a in BACKUP_ACTIONS))
    env.start_daemon("--rules", rules, "--unit-dir", env.path("units"))
    roles(env, None)


def test_polkit(env):
    try:
        import dbusmock  # noqa: F401
    except ImportError:
        raise SkipTest("python3-dbusmock is not installed")
    env.start_bus()
    env.start_vm()
    env.spawn([sys.executable, "-m", "dbusmock", "--system", "--template", "polkitd"],
              stdout=subprocess.DEVNULL)
    subprocess.run(["gdbus", "wait", "--address", env.address, "--timeout", str(PROMPT_S),
                    "org.freedesktop.PolicyKit1"], check=True, env=env.env)
    # The mock allows exactly what 50-stillpoint-backup.rules grants the backup group. It does
    # not look at the caller, so the no-role caller is left out of this scenario.
    subprocess.run(["gdbus", "call", "--address", env.address, "--dest",
                    "org.freedesktop.PolicyKit1", "--object-path",
                    "/org/freedesktop/PolicyKit1/Authority", "--method",
                    "org.freedesktop.DBus.Mock.SetAllowed", str(BACKUP_ACTIONS)],
                   check=True, stdout=subprocess.DEVNULL, env=env.env)
    env.start_daemon()
    env.ok(None, "AddVm", "vm1", "{'qmp-socket': <'%s'>, 'agent-socket': <'%s'>}"
           % (env.path("qmp.sock"), env.path("agent.sock")))
    env.ok(OPERATOR, "CreateCheckpoint", "vm1", "{'name': <'nightly'>}")
    out_dir = env.path("export")
    os.makedirs(out_dir)
    os.chown(out_dir, 65534, 65534)
    env.ok(OPERATOR, "ExportCheckpoint", "vm1", "nightly", out_dir, "raw")
    before = env.snapshot()
    env.refused(OPERATOR, "ApplyCheckpoint", "vm1", "nightly", "{}")
    env.refused(OPERATOR, "DeleteCheckpoint", "vm1", "nightly", "false")
    check(env.snapshot() == before, "nothing changed on refusal")
    env.stop_daemon()


def start_mock_polkit(env, log):
    """python-dbusmock's polkitd on the private bus, logging each call (with its flags)."""
    try:
        import dbusmock  # noqa: F401
    except ImportError:
        raise SkipTest("python3-dbusmock is not installed")
    env.spawn([sys.executable, "-m", "dbusmock", "--system", "--template", "polkitd", "-l", log],
              stdout=subprocess.DEVNULL)
    subprocess.run(["gdbus", "wait", "--address", env.address, "--timeout", str(PROMPT_S),
                    "org.freedesktop.PolicyKit1"], check=True, env=env.env)


def mock_polkit(env, method, *args):
    subprocess.run(["gdbus", "call", "--address", env.address, "--dest",
                    "org.freedesktop.PolicyKit1", "--object-path",
                    "/org/freedesktop/PolicyKit1/Authority", "--method",
                    "org.freedesktop.DBus.Mock." + method] + list(args),
                   check=True, stdout=subprocess.DEVNULL, env=env.env)


def polkit_checks(log):
    """The CheckAuthorization calls polkitd received: [(action, flags)]."""
    with open(log, errors="replace") as f:
        return [(m.group(1), int(m.group(2))) for m in
                re.finditer(r'CheckAuthorization .*?"(org\.stillpoint\.[a-z.]+)" \{[^}]*\} (\d+) ',
                            f.read())]


def wait_for(what, cond, timeout=PROMPT_S):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TestFailure("timed out waiting: " + what)
        time.sleep(0.1)


def test_authorize_first(env):
    """A local user cannot starve the others (issue 16, item 1): polkit is asked before a job
    slot is taken, with a deadline; each uid has at most 2 calls in progress; polkit is asked
    non-interactively unless the caller allowed interactive authorization; and a daemon with
    unanswered questions stops at once."""
    log = env.path("polkitd.log")
    env.start_bus()
    start_mock_polkit(env, log)
    mock_polkit(env, "SetAllowed", str(BACKUP_ACTIONS))
    # polkitd never answers about create: every such call waits for it.
    mock_polkit(env, "SimulateHangActions", "['org.stillpoint.checkpoint.create']")
    env.env["STILLPOINT_TEST_AUTHORIZE_TIMEOUT_MS"] = "10000"
    env.start_daemon()
    # One user sends 10 creates at once (more than the daemon's 8 job slots).
    started = time.monotonic()
    flood = [env.call_async(OPERATOR, "CreateCheckpoint", "vm1", "{}") for _ in range(10)]
    wait_for("8 of the 10 calls answered", lambda: sum(p.poll() is not None for p in flood) >= 8)
    refused = [p.communicate()[1] for p in flood if p.poll() is not None]
    check(len(refused) == 8 and all("Busy" in e and "calls in progress" in e for e in refused),
          "the user's calls beyond 2 are refused at once (%s)" % refused[0].strip())
    wait_for("polkitd asked twice", lambda: len(polkit_checks(log)) == 2)
    # Meanwhile another user is served.
    t = time.monotonic()
    out = env.ok(OTHER_USER, "ListVms")
    check(time.monotonic() - t < 5 and "[]" in out,
          "another user's call is served while the first user's wait for polkit")
    # The two waiting calls end at the deadline, refused.
    pending = [p for p in flood if p.returncode is None]
    for p in pending:
        err = p.communicate(timeout=PROMPT_S)[1]
        check(p.returncode != 0 and "NotAuthorized" in err and "no answer" in err,
              "a call polkit does not answer is refused at the deadline (%s)" % err.strip())
    check(time.monotonic() - started < 10 + 8, "... after about 10 s")
    # polkit is told which VM the call is about (rules can grant some VMs, README).
    with open(log, errors="replace") as f:
        asked = [l for l in f if "CheckAuthorization" in l and "checkpoint.create" in l]
    check(asked and all(re.search(r"""['"]vm['"]: ['"]vm1['"]""", l) for l in asked),
          "polkit gets the VM as the detail \"vm\": %s" % asked[:1])
    # Non-interactive unless the caller said otherwise.
    check(all(flags == 0 for _, flags in polkit_checks(log)),
          "polkit is asked without user interaction: %s" % polkit_checks(log))
    out = env.call_async(OPERATOR, "ListVms", interactive=True).communicate(timeout=PROMPT_S)[0]
    check("[]" in out, "an interactive-authorization call is answered")
    check(polkit_checks(log)[-2] == ("org.stillpoint.read", 1),
          "polkit is asked with user interaction when the caller allowed it: %s"
          % polkit_checks(log)[-2:])
    check(polkit_checks(log)[-1] == ("org.stillpoint.vm.admin", 0),
          "... but never for whether it may see hook commands (a no only hides them)")
    # Stopping with questions pending: at once, and the callers hear why.
    # Counted before the calls: polkitd may be asked before this process looks again.
    n = len(polkit_checks(log))
    waiting = [env.call_async(OPERATOR, "CreateCheckpoint", "vm1", "{}") for _ in range(2)]
    wait_for("polkitd asked twice more", lambda: len(polkit_checks(log)) == n + 2)
    t = time.monotonic()
    env.stop_daemon()
    check(time.monotonic() - t < 5, "stillpointd stops at once with questions pending")
    for p in waiting:
        err = p.communicate(timeout=PROMPT_S)[1]
        check(p.returncode != 0 and "stopping" in err, "the waiting caller is told (%s)"
              % err.strip())


def test_per_vm(env):
    """Rules can grant some VMs and not others (issue 16, item 7): the authority is told which VM
    a call is about (polkit: the detail "vm"; the rules file: [vm:NAME]). The read role does
    not see hook command lines (they may hold credentials); a VM administrator does."""
    env.start_bus()
    rules = env.path("rules.conf")
    with open(rules, "w") as f:
        f.write("[actions]\norg.stillpoint.read=group:nogroup;user:daemon\n"
                "org.stillpoint.vm.admin=user:daemon\n"
                "[vm:web]\norg.stillpoint.checkpoint.create=group:nogroup\n")
    env.start_daemon("--rules", rules)
    secret = "true # --token=s3cr3t"
    for vm in ("web", "db"):
        env.ok(None, "AddVm", vm, "{'driver': <'hook'>, 'hook-command': <'%s'>}" % secret)
    env.refused(OPERATOR, "CreateCheckpoint", "db", "{'type': <'crash'>}")
    ok, out = env.call(OPERATOR, "CreateCheckpoint", "web", "{'type': <'crash'>}")
    check("NotAuthorized" not in out, "the operator may create on web, granted for that VM (%s)"
          % out.strip()[:300])
    for method in ("ListVms",):
        out = env.ok(OPERATOR, method)
        check("web" in out and "s3cr3t" not in out,
              "%s: the read role does not see hook command lines" % method)
        check("s3cr3t" in env.ok(OTHER_USER, method) and "s3cr3t" in env.ok(None, method),
              "%s: a VM administrator and root do" % method)
    r = env.cli_run(OPERATOR, "--json", "vm", "list")
    check(r.returncode == 0 and "web" in r.stdout and "s3cr3t" not in r.stdout,
          "the operator's vm list through stillpointd has no hook command (%s%s)"
          % (r.stdout, r.stderr))
    env.stop_daemon()


# Connects, then lets a child it forks make the call once the process that connected is gone:
# the bus recorded that pid, which no longer exists (or, later, is another process).
ORPHAN_CALLER = r"""
import os, sys, time, dbus
bus = dbus.bus.BusConnection(sys.argv[1])
connected_by = os.getpid()
if os.fork() > 0:
    os._exit(0)
while os.path.exists("/proc/%d" % connected_by):   # exited and reaped: no zombie's status
    time.sleep(0.05)
try:
    obj = bus.get_object("org.stillpoint.Coordinator1", "/org/stillpoint/Coordinator1")
    print("reply:", obj.ListVms(dbus_interface="org.stillpoint.Coordinator1"), flush=True)
except dbus.exceptions.DBusException as e:
    print("error:", e, flush=True)
"""


def orphan_call(env, who):
    """ORPHAN_CALLER as who: the process that connected is reaped here at once; what its child
    got back."""
    path = env.path("orphan-%s.out" % who["group"])
    with open(path, "w") as out:
        p = subprocess.Popen(["/usr/bin/python3", "-c", ORPHAN_CALLER, env.address], stdout=out,
                             stderr=subprocess.STDOUT, env=env.env, **who)
    p.wait(timeout=PROMPT_S)
    wait_for("the orphaned connection's call answered",
             lambda: open(path).read().endswith("\n"))
    return open(path).read()


def test_bus_identity(env):
    """The rules file decides by the groups the bus recorded when the caller connected
    (GetConnectionCredentials), not by /proc/PID at check time (issue 16, item 5): the process
    that connected has exited, a child of it calls on the same connection; its pid now names
    nothing (or, after pid reuse, another process)."""
    env.start_bus()
    rules = env.path("rules.conf")
    with open(rules, "w") as f:
        f.write("[actions]\norg.stillpoint.read=group:nogroup\n")
    env.start_daemon("--rules", rules)
    out = orphan_call(env, OPERATOR)
    check(out.startswith("reply:"), "a caller in the granted group is allowed by the groups the "
          "bus recorded, though the pid it connected with is gone (%s)" % out.strip())
    out = orphan_call(env, NO_ROLE)
    check(out.startswith("error:") and "NotAuthorized" in out,
          "a caller outside it is refused (%s)" % out.strip()[:200])
    env.stop_daemon()


def test_activation(env):
    """No daemon running, but an activation file (as installed in dbus-1/system-services): the
    CLI's first call starts stillpointd through the bus, as root with --daemon and as the
    operator by itself."""
    services = env.path("services")
    os.makedirs(services)
    rules = env.path("rules.conf")
    with open(rules, "w") as f:
        f.write("[actions]\n" + "".join("%s=group:nogroup\n" % a for a in BACKUP_ACTIONS))
    with open(os.path.join(services, "org.stillpoint.Coordinator1.service"), "w") as f:
        f.write("[D-BUS Service]\nName=org.stillpoint.Coordinator1\nExec=%s --store %s --rules %s\n"
                % (env.daemon_bin, env.path("store.db"), rules))
    env.start_bus(servicedir=services)
    owner = ["gdbus", "call", "--address", env.address, "--dest", "org.freedesktop.DBus",
             "--object-path", "/org/freedesktop/DBus", "--method"]
    r = subprocess.run(owner + ["org.freedesktop.DBus.NameHasOwner", "org.stillpoint.Coordinator1"],
                       capture_output=True, text=True, env=env.env)
    check(r.stdout.strip() == "(false,)", "no stillpointd runs at first")
    out = ran(via(env, "vm", "list"), "root's 'stillpoint --daemon vm list' reached stillpointd")
    check("no VMs registered" in out, "... through the daemon the bus started (%s)" % out.strip())
    r = subprocess.run(owner + ["org.freedesktop.DBus.GetConnectionUnixProcessID",
                                "org.stillpoint.Coordinator1"],
                       capture_output=True, text=True, env=env.env)
    pid = int(r.stdout.strip().strip("(,)").split()[-1].rstrip(",")) if r.returncode == 0 else 0
    check(pid > 0, "stillpointd runs now, started by the bus (pid %d)" % pid)
    try:
        out = ran(via(env, "vm", "list", who=OPERATOR), "the operator's 'vm list' went through it")
        check("no VMs registered" in out, "... with the same answer")
    finally:
        os.kill(pid, signal.SIGTERM)


class SkipTest(Exception):
    pass


SCENARIOS = {name[5:]: fn for name, fn in globals().items() if name.startswith("test_")}


def main():
    if len(sys.argv) != 6 or sys.argv[5] not in SCENARIOS:
        sys.stderr.write("usage: %s STILLPOINTD STILLPOINT FAKE_AGENT POLICY {%s}\n"
                         % (sys.argv[0], ",".join(SCENARIOS)))
        return 2
    if os.geteuid() != 0:
        print("skipped: needs root (the daemon runs as root; callers run as nobody)")
        return SKIP
    for tool in ("dbus-daemon", "gdbus", "qemu-system-x86_64", "qemu-img", "qemu-io"):
        if not shutil.which(tool):
            print("skipped: %s not installed" % tool)
            return SKIP
    env = Env(*sys.argv[1:5])
    try:
        SCENARIOS[sys.argv[5]](env)
    except SkipTest as e:
        print("skipped: %s" % e)
        return SKIP
    except Exception:
        traceback.print_exc()
        try:
            sys.stderr.write(open(env.path("daemon.log"), errors="replace").read())
        except OSError:
            pass
        return 1
    finally:
        env.cleanup()
    print("ok: %s" % sys.argv[5])
    return 0


if __name__ == "__main__":
    sys.exit(main())
