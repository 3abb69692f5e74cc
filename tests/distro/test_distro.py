#!/usr/bin/python3
"""distro/* — stillpoint-agent installed from its .deb in a real Debian 12 system (systemd, udev,
journald, D-Bus, stock qemu-guest-agent, PostgreSQL 15), booted under QEMU TCG
(tests/distro/build-distro, spdistro.py), and the stillpoint CLI on the host.

  test_distro.py --guest DIR --distro DIR --run-dir DIR --stillpoint BIN CASE

CASE: udev        udev starts the agent when the port appears: unplugged, the agent stops;
                  plugged again, udev starts a new agent the host talks to; qemu-ga runs beside
                  it (forwarded commands answer); the agent's logs are in the journal
      freeze-root a checkpoint from the host through the sandboxed unit freezes the real root
                  filesystem (the checkpoint's ext4 needs no journal recovery, the live one
                  does), runs the PostgreSQL hook (CHECKPOINT in the server's log), asks a
                  writer on the system bus (sp-example-writer, an unprivileged service) and logs
                  the freeze and the thaw to the journal
      postgresql  checkpoints while PostgreSQL commits one transaction after another: the
                  checkpoint's export, booted, starts PostgreSQL, which holds every transaction
                  committed before the checkpoint began, with no gap
      libvirt     the guest as a libvirt domain (session libvirtd, splibvirt.py) with the agent
                  on libvirt's own channel: virsh domifaddr --source agent lists the card and its
                  DHCP address, domtime reads and sets the guest's clock, domfsfreeze/domfsthaw
                  and snapshot-create-as --quiesce --disk-only are stillpoint-agent's freezes
                  (its state, the journal, an ext4 that needs no recovery), shutdown --mode
                  agent powers the guest off
      polkit      the image as a host: stillpointd from the stillpoint .deb under systemd, with the
                  real polkitd and the package's policy and example rule (installed by the test
                  as an administrator would): a member of stillpoint-backup creates and exports
                  a checkpoint of a VM (a QEMU that runs no guest code, -machine none) and is
                  refused delete; a user outside the group is refused; the first call starts
                  stillpointd by D-Bus activation through systemd; the member's schedule through
                  stillpointd is enabled by its systemctl from inside the hardened unit
      schedule    schedule create enables a timer that fires and makes a checkpoint; schedule
                  list shows its next and last run and the result; with the VM gone the next run
                  fails, in schedule list and in the journal; schedule remove disables the timer
                  and deletes the units
Each case boots one VM (ctest's RESOURCE_LOCK vm keeps VMs from overlapping)."""
import argparse
import glob
import json
import os
import shutil
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guest"))
from spdistro import QGA_PORT, DistroGuest, GuestError  # noqa: E402
from spguest import QmpClient, wait_for_agent  # noqa: E402
from splibvirt import MAC, LibvirtDomain, LibvirtError  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sptest import Failure, ok  # noqa: E402

PG_UNIT = "postgresql@15-main.service"
PG_LOG = "/var/log/postgresql/postgresql-15-main.log"
PSQL = "setpriv --reuid=postgres --regid=postgres --init-groups psql -X -q -At -v ON_ERROR_STOP=1"


class Ctx:
    def __init__(self, a):
        self.a = a
        self.store = os.path.join(a.run_dir, "store.db")
        for f in glob.glob(self.store + "*"):
            os.unlink(f)

    def guest(self, name, root_image=None):
        return DistroGuest(self.a.guest, self.a.distro, os.path.join(self.a.run_dir, name),
                           root_image=root_image)

    def sp(self, g, *args):
        g.qga_disconnect()  # QEMU serves one agent client at a time: the CLI's turn
        env = dict(os.environ, STILLPOINT_STORE=self.store)
        r = subprocess.run([self.a.stillpoint, *args], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise Failure(f"stillpoint {' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
        return r.stdout


def journal(g, unit):
    return g.sh(f"journalctl --no-pager -o cat -u {unit}", check=True)[1]


def ext4_state(image):
    """(needs_recovery, e2fsck -fn status) of the ext4 filesystem in a qcow2 image chain."""
    with tempfile.TemporaryDirectory(prefix="sp-distro-") as tmp:
        raw = os.path.join(tmp, "root.raw")
        subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", image, raw], check=True)
        header = subprocess.run(["dumpe2fs", "-h", raw], capture_output=True, text=True,
                                check=True).stdout
        features = re.search(r"^Filesystem features:\s*(.*)$", header, re.M).group(1).split()
        fsck = subprocess.run(["e2fsck", "-fn", raw], capture_output=True, text=True)
        return "needs_recovery" in features, fsck.returncode


def wait_active(g, unit, timeout=120):
    g.wait_for(f"systemctl is-active --quiet {unit}", f"{unit} active", timeout)


# -- udev ------------------------------------------------------------------------------------------

def device_present(g, dev_id):
    return any(p["name"] == dev_id for p in g.qmp("qom-list", {"path": "/machine/peripheral"}))


def case_udev(c):
    with c.guest("udev") as g:
        ok(g.sh("systemctl is-active stillpoint-agent")[1].strip() == "active",
           "at boot, stillpoint-agent.service is active")
        props = g.sh(f"udevadm info -q property -n /dev/virtio-ports/{QGA_PORT}", check=True)[1]
        wants = re.search(r"^SYSTEMD_WANTS=(.*)$", props, re.M)
        ok(wants and "stillpoint-agent.service" in wants.group(1).split(),
           f"udev's rule asks systemd for the agent when the port appears ({wants and wants.group(0)})")
        ok(g.qga("guest-get-host-name")["host-name"] == "sp-distro",
           "guest-get-host-name, forwarded to qemu-ga beside the agent, answers")
        ok(g.qga("guest-get-osinfo").get("id") == "debian", "guest-get-osinfo (forwarded) says debian")
        ok(g.sh("systemctl is-active qemu-guest-agent")[1].strip() == "active",
           "qemu-guest-agent.service runs beside it")
        first = g.sh("systemctl show -P InvocationID stillpoint-agent", check=True)[1].strip()

        # Unplug the port: the unit is bound to it and stops.
        g.qga_disconnect()
        g.qmp("device_del", {"id": "qga-port"})
        deadline = time.monotonic() + 30
        while device_present(g, "qga-port"):
            if time.monotonic() > deadline:
                raise Failure("QEMU did not unplug the agent port")
            time.sleep(0.2)
        ok(True, "the agent port is unplugged")
        # Plugged again, udev starts an agent for it; the host talks to it on the new port.
        t0 = time.monotonic()
        while True:
            try:
                g.qmp("device_add", {"driver": "virtserialport", "bus": "vser0.0",
                                     "chardev": "qga0", "name": QGA_PORT, "id": "qga-port"})
                break
            except GuestError as e:
                # The unplugged port lets go of its chardev a moment after it left the tree.
                if "in use" not in str(e) or time.monotonic() > t0 + 30:
                    raise
                time.sleep(0.2)
        g._qga_conn = wait_for_agent(g.qga_path, time.monotonic() + 60, lambda: g._check_alive("replug"))
        ok(True, f"plugged again, an agent answers guest-ping after {time.monotonic() - t0:.1f} s")
        second = g.sh("systemctl show -P InvocationID stillpoint-agent", check=True)[1].strip()
        ok(second and second != first, f"it is a new start of the unit ({first} -> {second})")
        log = journal(g, "stillpoint-agent")
        ok(log.count("Stopped stillpoint-agent.service") >= 1,
           "the journal shows the unit stopped when the port went away")
        ok(len(re.findall(r"stillpoint-agent \S+ serving", log)) == 2,
           "the journal holds the agent's own log lines: 'serving' from both starts")
        entries = g.sh("journalctl --no-pager -o json -u stillpoint-agent -g serving",
                       check=True)[1].splitlines()
        fields = [json.loads(e) for e in entries if e.strip()]
        ok(fields and all(f.get("_SYSTEMD_UNIT") == "stillpoint-agent.service" for f in fields),
           "journald attributes them to stillpoint-agent.service")


# -- freeze-root -----------------------------------------------------------------------------------

def case_freeze_root(c):
    with c.guest("freeze-root") as g:
        wait_active(g, PG_UNIT)
        sandbox = g.sh("systemctl show -p ProtectSystem -p NoNewPrivileges -p PrivateMounts "
                       "-p SystemCallFilter stillpoint-agent", check=True)[1]
        ok("ProtectSystem=full" in sandbox and "NoNewPrivileges=yes" in sandbox
           and "PrivateMounts=yes" in sandbox and "SystemCallFilter=" in sandbox,
           "the agent runs in the shipped unit's sandbox")
        pg_checkpoints = g.sh(f"grep -c 'checkpoint starting: immediate force wait' {PG_LOG}")[1]
        # An application writer on the system bus: a service of its own user, a member of the
        # group the package's bus policy lets register writers.
        g.sh("useradd --system --no-create-home -G stillpoint-writers sp-writer && "
             "systemd-run --unit sp-writer -p User=sp-writer "
             "-p StateDirectory=sp-writer -p RuntimeDirectory=sp-writer "
             "/usr/libexec/stillpoint/sp-example-writer --database /var/lib/sp-writer/db "
             "--log /run/sp-writer/calls.log", check=True)
        g.wait_for("journalctl --no-pager -o cat -u stillpoint-agent | grep -q 'writer .* registered'",
                   "the writer registered with the agent")
        root_image = g.root_image
        c.sp(g, "-q", "vm", "add", "vm", "--qmp", g.qmp_path, "--agent", g.qga_path)
        c.sp(g, "-q", "checkpoint", "create", "vm", "--name", "c1")
        cps = json.loads(c.sp(g, "--json", "-q", "checkpoint", "list", "vm"))["checkpoints"]
        ok(len(cps) == 1 and cps[0]["disks"][0]["image"] == root_image,
           "the checkpoint holds the root disk's image")

        needs_recovery, fsck = ext4_state(root_image)
        ok(not needs_recovery, "the checkpoint's root ext4 needs no journal recovery: it was frozen")
        ok(fsck == 0, f"e2fsck -fn of the checkpoint's root filesystem is clean (status {fsck})")
        live = [b["inserted"]["file"] for b in g.qmp("query-block") if "inserted" in b][0]
        ok(live != root_image and ext4_state(live)[0],
           "the live root ext4 (the overlay QEMU writes to now) is mounted: it would need recovery")
        log = journal(g, "stillpoint-agent")
        ok(re.search(r"froze 1 filesystem\(s\)", log), "the journal has the agent's freeze of /")
        ok(re.search(r"thawed 1 filesystem\(s\)", log), "... and its thaw")
        calls = [line.split()[1] for line in
                 g.sh("cat /run/sp-writer/calls.log", check=True)[1].splitlines()]
        ok(calls[-3:] == ["prepare", "freeze", "thaw"],
           f"the writer on the system bus took part: {calls}")
        after = g.sh(f"grep -c 'checkpoint starting: immediate force wait' {PG_LOG}")[1]
        ok(int(after or 0) == int(pg_checkpoints or 0) + 1,
           "the freeze hook ran psql CHECKPOINT as postgres from inside the sandbox "
           f"(the server logged {pg_checkpoints.strip()} -> {after.strip()} requested checkpoints)")


# -- postgresql ------------------------------------------------------------------------------------

class Acks(threading.Thread):
    """Reads sp-pg-workload's "committed ID" lines from the workload port."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.last = 0
        self.ready = None
        self.lock = threading.Lock()

    def run(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                words = line.decode(errors="replace").split()
                with self.lock:
                    if words[:1] == ["committed"]:
                        self.last = max(self.last, int(words[1]))
                    elif words[:1] == ["ready"]:
                        self.ready = int(words[1])

    def wait(self, n, timeout=120):
        deadline = time.monotonic() + timeout
        while self.last < n:
            if time.monotonic() > deadline:
                raise Failure(f"the workload committed only {self.last} of {n} transactions")
            time.sleep(0.1)
        return self.last


def case_postgresql(c):
    with c.guest("postgresql") as g:
        wait_active(g, PG_UNIT)
        acks = Acks(g.workload_path)
        acks.start()
        g.sh("systemd-run --unit sp-pg-workload /usr/local/sbin/sp-pg-workload", check=True)
        acks.wait(10)
        ok(acks.ready == 0, "the workload commits transactions, acknowledged one by one")
        c.sp(g, "-q", "vm", "add", "vm", "--qmp", g.qmp_path, "--agent", g.qga_path)
        marks = []
        for name in ("pg1", "pg2"):
            before = acks.last
            c.sp(g, "-q", "checkpoint", "create", "vm", "--name", name)
            after = acks.last
            marks.append((name, before, after))
            acks.wait(after + 5)  # it goes on after the thaw
        ok(True, f"checkpoints while committing: {marks}")
        export = os.path.join(c.a.run_dir, "export")
        c.sp(g, "-q", "checkpoint", "export", "vm", "pg2", export)
    with open(os.path.join(export, "manifest.json")) as f:
        manifest = json.load(f)
    image = os.path.join(export, manifest["disks"][0]["file"])
    needs_recovery, fsck = ext4_state(image)
    ok(not needs_recovery and fsck == 0, "the export's root ext4 is clean and needs no recovery")

    name, before, after = marks[-1]
    with c.guest("postgresql-checkpoint", root_image=image) as g:
        wait_active(g, PG_UNIT)
        ok(True, "booted from the checkpoint's export, PostgreSQL starts")
        n, lo, hi = g.sh(f"{PSQL} -F ' ' -c 'select count(*), min(id), max(id) from tx'",
                         check=True)[1].split()
        n, lo, hi = int(n), int(lo), int(hi)
        ok(lo == 1 and n == hi, f"the ids are 1..{hi} with no gap ({n} rows)")
        ok(hi >= before, f"every transaction acknowledged before checkpoint {name} began is "
                         f"there ({before} <= {hi})")
        ok(hi <= after + 1, f"and none committed after its thaw ({hi} <= {after} + 1 in flight)")
        log = g.sh(f"cat {PG_LOG}", check=True)[1]
        ok("database system is ready to accept connections" in log.split("checkpoint starting: immediate force wait")[-1],
           "the server log of the image: the hook's CHECKPOINT, then a clean start")
        ok(not re.search(r"PANIC|FATAL:.*(corrupt|invalid)", log), "no PANIC and no corruption in the log")


# -- libvirt ---------------------------------------------------------------------------------------

def domifaddr(d):
    """{interface name: (MAC, [addresses])} from virsh domifaddr --source agent --full."""
    ifaces = {}
    for line in d.virsh("domifaddr", d.name, "--source", "agent", "--full").splitlines():
        words = line.split()
        if len(words) == 4 and words[2] in ("ipv4", "ipv6"):
            ifaces.setdefault(words[0], (words[1], []))[1].append(words[3])
    return ifaces


def domtime(d):
    out = d.virsh("domtime", d.name)
    m = re.fullmatch(r"Time: (\d+)", out.strip())
    if not m:
        raise Failure(f"virsh domtime: unexpected output {out!r}")
    return int(m.group(1))


def guest_clock(d):
    return int(d.sh("date +%s", check=True)[1])


def agent_log_count(d, pattern):
    return len(re.findall(pattern, journal(d, "stillpoint-agent")))


def case_libvirt(c):
    with LibvirtDomain(c.a.guest, c.a.distro, os.path.join(c.a.run_dir, "libvirt")) as d:
        t0 = time.monotonic()
        ok(d.wait_agent() == "sp-distro",
           f"libvirt's channel reaches the agent; guest-get-host-name (forwarded to qemu-ga) "
           f"answers after {time.monotonic() - t0:.0f} s")
        commands = [x["name"] for x in d.qga("guest-info")["supported_commands"]]
        ok("stillpoint-status" in commands, "it is stillpoint-agent that serves libvirt's channel")
        ok(d.sh("systemctl is-active stillpoint-agent qemu-guest-agent")[1].split()
           == ["active", "active"], "stillpoint-agent.service and qemu-guest-agent.service run")

        # domifaddr: the guest configures its card by DHCP (QEMU's user network), as a
        # server would; what the agent reports is the guest's own view.
        d.sh(f"printf '[Match]\\nMACAddress={MAC}\\n[Network]\\nDHCP=ipv4\\n' "
             "> /etc/systemd/network/50-sp-test.network && systemctl start systemd-networkd",
             check=True)
        deadline = time.monotonic() + 60
        while True:
            ifaces = domifaddr(d)
            card = [(n, a) for n, (mac, a) in ifaces.items() if mac == MAC]
            if card and any(x.startswith("10.0.2.15/") for x in card[0][1]):
                break
            if time.monotonic() > deadline:
                raise Failure(f"virsh domifaddr --source agent shows no DHCP address: {ifaces}")
            time.sleep(1)
        name, addrs = card[0]
        ok("10.0.2.15/24" in addrs, f"virsh domifaddr --source agent: {name} {MAC} {addrs}")
        ok("127.0.0.1/8" in ifaces.get("lo", ("", []))[1], f"... and lo {ifaces.get('lo')}")
        ok(d.sh(f"cat /sys/class/net/{name}/address", check=True)[1].strip() == MAC,
           f"the guest's {name} has that MAC")

        # domtime: reads the guest's clock; --time and --now set it (qemu-ga, hwclock).
        host = time.time()
        t = domtime(d)
        ok(abs(t - host) < 120 and abs(t - guest_clock(d)) <= 5,
           f"virsh domtime reads the guest's clock ({t}; the host's {host:.0f})")
        target = int(time.time()) + 3 * 86400
        d.virsh("domtime", d.name, "--time", str(target))
        t, g = domtime(d), guest_clock(d)
        ok(abs(t - target) < 30 and abs(g - target) < 30,
           f"virsh domtime --time sets it three days ahead ({target}: domtime {t}, date {g})")
        d.virsh("domtime", d.name, "--now")
        host = time.time()
        t, g = domtime(d), guest_clock(d)
        ok(abs(t - host) < 30 and abs(g - host) < 30,
           f"virsh domtime --now sets it back to the host's time ({host:.0f}: domtime {t}, date {g})")

        # domfsfreeze / domfsthaw: stillpoint-agent's freeze of the root filesystem.
        wait_active(d, PG_UNIT)
        froze = agent_log_count(d, r"froze 1 filesystem\(s\)")
        thawed = agent_log_count(d, r"thawed 1 filesystem\(s\)")
        out = d.virsh("domfsfreeze", d.name, quiet=False)
        st = d.qga("stillpoint-status")
        ok(out.strip() == "Froze 1 filesystem(s)" and st["status"] == "frozen"
           and [f["mountpoint"] for f in st["frozen"]] == ["/"],
           f"virsh domfsfreeze: {out.strip()!r}; stillpoint-status: frozen {st['frozen']}")
        try:
            d.qga("guest-get-time")
            raise Failure("a forwarded command answered while frozen")
        except LibvirtError as e:
            ok("disabled" in str(e), "while frozen the agent refuses forwarded commands")
        out = d.virsh("domfsthaw", d.name, quiet=False)
        after = d.qga("stillpoint-status")
        ok(out.strip() == "Thawed 1 filesystem(s)" and after["status"] == "thawed"
           and after["last-thaw"]["epoch"] == st["epoch"] and after["last-thaw"]["consistent"],
           f"virsh domfsthaw: {out.strip()!r}; last-thaw {after['last-thaw']}")

        # snapshot-create-as --quiesce --disk-only: libvirt's own freeze reaches stillpoint's
        # (the PostgreSQL hook runs); the old layer holds a frozen ext4.
        pg = int(d.sh(f"grep -c 'checkpoint starting: immediate force wait' {PG_LOG}")[1] or 0)
        overlay = os.path.join(d.tmp, "root-q1.qcow2")
        d.virsh("snapshot-create-as", d.name, "q1", "--disk-only", "--quiesce", "--atomic",
                "--no-metadata", "--diskspec", f"vda,file={overlay}", timeout=120)
        snap = d.qga("stillpoint-status")
        ok(snap["epoch"] > st["epoch"] and snap["last-thaw"]["consistent"],
           f"virsh snapshot-create-as --quiesce: a freeze of stillpoint-agent (epoch "
           f"{snap['epoch']}, thawed consistent)")
        ok(agent_log_count(d, r"froze 1 filesystem\(s\)") == froze + 2
           and agent_log_count(d, r"thawed 1 filesystem\(s\)") == thawed + 2,
           "the journal has the agent's freeze and thaw of / for both")
        n = int(d.sh(f"grep -c 'checkpoint starting: immediate force wait' {PG_LOG}")[1] or 0)
        ok(n == pg + 1, f"the snapshot's freeze ran the PostgreSQL hook ({pg} -> {n} CHECKPOINTs)")
        needs_recovery, fsck = ext4_state(d.root_image)
        ok(not needs_recovery and fsck == 0,
           f"the snapshot's root ext4 needs no journal recovery and e2fsck -fn is clean ({fsck})")
        ok(ext4_state(overlay)[0], "the live one (libvirt's new overlay) is mounted: it would")

        # shutdown --mode agent: guest-shutdown, forwarded to qemu-ga, powers the guest off.
        d.virsh("shutdown", d.name, "--mode", "agent")
        t0 = time.monotonic()
        while d.state() != "shut off":
            if time.monotonic() > t0 + 120:
                raise Failure(f"virsh shutdown --mode agent: the domain is still {d.state()}")
            time.sleep(0.5)
        ok("reboot: Power down" in d.console_tail(200),
           f"virsh shutdown --mode agent: shut off after {time.monotonic() - t0:.0f} s, the "
           "kernel powered down")


# -- the image as a host: polkit, schedule -----------------------------------------------------------

VM_DIR = "/var/lib/sp-vm"
VM_QMP = "/run/sp-vm/qmp.sock"
PATTERN = "0x5a"


def start_tiny_vm(g):
    """A VM for stillpoint to checkpoint inside the guest, cheap under TCG in TCG: QEMU with no
    machine (no CPU runs), a qcow2 disk holding a known pattern, QMP; a unit of its own."""
    g.sh(f"mkdir -p {VM_DIR} && qemu-img create -q -f qcow2 {VM_DIR}/disk.qcow2 64M && "
         f"qemu-io -f qcow2 -c 'write -P {PATTERN} 0 1M' {VM_DIR}/disk.qcow2 >/dev/null && "
         "systemd-run --unit sp-vm -p RuntimeDirectory=sp-vm "
         "qemu-system-x86_64 -machine none -accel tcg -nodefaults -display none "
         f"-qmp unix:{VM_QMP},server=on,wait=off "
         f"-drive file={VM_DIR}/disk.qcow2,format=qcow2,if=none,id=drive0,node-name=disk0",
         check=True)
    g.wait_for(f"test -S {VM_QMP}", "the VM's QMP socket", 60)


def holds_pattern(g, image, pattern=PATTERN):
    """The image's first MiB is the pattern (qemu-io verifies it; a mismatch says so)."""
    out = g.sh(f"qemu-io -f qcow2 -r -c 'read -P {pattern} 0 1M' {image}")[1]
    return "read 1048576/1048576 bytes" in out and "verification failed" not in out


def as_user(g, user, args):
    """stillpoint ARGS as USER (not root, no store given: through stillpointd)."""
    return g.sh(f"runuser -u {user} -- stillpoint {args}", timeout=120)


def refused(result, action):
    status, out, err = result
    return status != 0 and "not authorized" in err and action in err


def case_polkit(c):
    with c.guest("polkit") as g:
        ok(g.sh("dpkg-query -W -f '${Status}' stillpoint polkitd")[1].count("install ok installed") == 2,
           "the stillpoint host package and polkitd are installed (by apt, in the image)")
        status, state, _ = g.sh("systemctl is-active stillpointd")
        ok(status != 0 and state.strip() == "inactive",
           f"stillpointd is not running after boot (not enabled: D-Bus starts it) ({state.strip()})")
        # The role, as the README tells an administrator: the example rule into rules.d, and a
        # member of the group.
        g.sh("install -m 644 /usr/share/doc/stillpoint/examples/50-stillpoint-backup.rules "
             "/etc/polkit-1/rules.d/ && systemctl try-restart polkit.service && "
             "useradd -m -G stillpoint-backup alice && useradd -m bob", check=True)
        start_tiny_vm(g)
        g.sh(f"stillpoint -q vm add vm --qmp {VM_QMP}", check=True)  # root: the store directly

        t0 = time.monotonic()
        status, out, err = as_user(g, "alice", "checkpoint create vm --type crash --name c1")
        ok(status == 0, f"alice (stillpoint-backup) creates a checkpoint through stillpointd "
                         f"({time.monotonic() - t0:.1f} s): {out.strip()} {err.strip()[-200:]}")
        ok(g.sh("systemctl is-active stillpointd")[1].strip() == "active",
           "stillpointd runs under systemd now")
        uid = g.sh("id -u alice", check=True)[1].strip()
        bus = g.sh("journalctl --no-pager -o cat -u dbus.service", check=True)[1]
        ok(re.search(r"Activating via systemd: service name='org\.stillpoint\.Coordinator1' "
                     rf"unit='stillpointd\.service' requested by '[^']*' \(uid={uid} ", bus),
           "dbus-daemon started it through systemd for alice's call (D-Bus activation)")
        cps = json.loads(g.sh("stillpoint --json -q checkpoint list vm", check=True)[1])["checkpoints"]
        ok([cp["name"] for cp in cps] == ["c1"], "the store holds alice's checkpoint c1")

        g.sh("runuser -u alice -- mkdir /home/alice/export", check=True)
        status, out, err = as_user(g, "alice", "checkpoint export vm c1 /home/alice/export")
        ok(status == 0, f"alice exports it ({out.strip()})")
        # (stillpointd exports into a new directory in the caller's, given to the caller.)
        files = g.sh("find /home/alice/export -mindepth 1 -printf '%u %p\\n'",
                     check=True)[1].split()
        owners, paths = files[0::2], files[1::2]
        images = [p for p in paths if p.endswith(".qcow2")]
        ok(len(images) == 1 and any(p.endswith("/manifest.json") for p in paths) and
           set(owners) == {"alice"}, f"the export (manifest and image) is alice's: {paths}")
        ok(holds_pattern(g, images[0]) and not holds_pattern(g, images[0], "0xa5"),
           "the exported image holds the VM's disk as it was (qemu-io reads its pattern)")

        ok(refused(as_user(g, "alice", "checkpoint delete vm c1"), "org.stillpoint.checkpoint.delete"),
           "alice is refused delete: not authorized (org.stillpoint.checkpoint.delete)")
        ok(refused(as_user(g, "alice", "checkpoint rename vm c1 c2"), "org.stillpoint.checkpoint.rename"),
           "... and rename")
        ok(refused(as_user(g, "bob", "checkpoint create vm --type crash --name b1"),
                   "org.stillpoint.checkpoint.create"),
           "bob (not in the group) is refused create")
        g.sh("runuser -u bob -- mkdir /home/bob/export", check=True)
        ok(refused(as_user(g, "bob", "checkpoint export vm c1 /home/bob/export"),
                   "org.stillpoint.checkpoint.export"), "... and export")
        ok(refused(as_user(g, "bob", "checkpoint list vm"), "org.stillpoint.read"), "... and list")
        cps = json.loads(g.sh("stillpoint --json -q checkpoint list vm", check=True)[1])["checkpoints"]
        ok([cp["name"] for cp in cps] == ["c1"] and
           g.sh("ls -A /home/bob/export")[1].strip() == "",
           "nothing changed: c1 is still the only checkpoint, bob's directory is empty")
        log = journal(g, "stillpointd")
        ok(len(re.findall(r"refused (DeleteCheckpoint|RenameCheckpoint|CreateCheckpoint|"
                          r"ExportCheckpoint|ListCheckpoints\w*) vm", log)) >= 5,
           "stillpointd's journal has each refusal")
        schedule_through_daemon(g)
        # Root is authorized by polkitd: the refusal was the role, not the operation.
        status, out, err = g.sh("stillpoint --daemon checkpoint delete vm c1", timeout=120)
        ok(status == 0, f"root deletes c1 through stillpointd ({err.strip()[-200:]})")


def schedule_through_daemon(g):
    """alice's schedule, through stillpointd under systemd: the units under /etc/systemd/system
    (the unit's one writable path under /etc), the timer enabled by the daemon's systemctl from
    inside its sandbox; bob is refused."""
    unit = "/etc/systemd/system/stillpoint-checkpoint-vm"
    ok(refused(as_user(g, "bob", "schedule create vm --on-calendar daily"),
               "org.stillpoint.schedule"), "bob is refused schedule create")
    status, out, err = as_user(g, "alice", "schedule create vm --on-calendar daily --keep 2")
    ok(status == 0 and "enabled and started the timer" in out,
       f"alice creates a schedule through stillpointd: {out.strip()} {err.strip()[-300:]}")
    ok(g.sh("systemctl is-enabled stillpoint-checkpoint-vm.timer")[1].strip() == "enabled" and
       g.sh("systemctl is-active stillpoint-checkpoint-vm.timer")[1].strip() == "active",
       "the timer is enabled and active")
    ok(g.sh(f"grep -c '^ExecStart=\"/usr/bin/stillpoint\" --store ' {unit}.service")[1].strip() == "1",
       "its service runs the installed CLI on stillpointd's store")
    listed = json.loads(as_user(g, "alice", "--json schedule list vm")[1])
    ok(listed["systemd"] and listed["schedules"][0]["enabled"] == "enabled",
       f"alice lists it, enabled ({listed})")
    status, out, err = as_user(g, "alice", "schedule remove vm")
    ok(status == 0 and g.sh(f"ls {unit}.* 2>/dev/null")[1] == "",
       f"alice removes it, both units deleted ({err.strip()[-300:]})")


def wait_schedule(g, cond, what, timeout=60):
    """Polls schedule list (JSON) until cond(the VM's entry); returns the entry."""
    deadline = time.monotonic() + timeout
    while True:
        s = json.loads(g.sh("stillpoint --json schedule list vm", check=True)[1])["schedules"][0]
        if cond(s):
            return s
        if time.monotonic() > deadline:
            raise Failure(f"{what}: not after {timeout} s ({s})")
        time.sleep(1)


def case_schedule(c):
    with c.guest("schedule") as g:
        start_tiny_vm(g)
        g.sh(f"stillpoint -q vm add vm --qmp {VM_QMP}", check=True)
        # Every 10 s; systemd fires within its default accuracy (a minute).
        t0 = time.monotonic()
        out = json.loads(g.sh("stillpoint --json schedule create vm --on-calendar '*:*:0/10' "
                              "--keep 1", check=True)[1])
        ok(out["enabled"] and out["timer"] == "stillpoint-checkpoint-vm.timer",
           f"schedule create says the timer is enabled: {out}")
        ok(g.sh("systemctl is-enabled stillpoint-checkpoint-vm.timer")[1].strip() == "enabled" and
           g.sh("systemctl is-active stillpoint-checkpoint-vm.timer")[1].strip() == "active",
           "systemd has the timer enabled and running (daemon-reload, enable --now)")
        listed = json.loads(g.sh("stillpoint --json schedule list", check=True)[1])
        s = listed["schedules"]
        ok(listed["systemd"] and len(s) == 1 and s[0]["vm"] == "vm" and s[0]["on_calendar"] ==
           "*:*:0/10" and s[0]["keep"] == 1 and s[0]["enabled"] == "enabled",
           f"schedule list: the calendar, the retention, the timer enabled ({s})")
        # A timer has no next elapse while its service runs.
        s = wait_schedule(g, lambda s: "next" in s, "a next run in schedule list")
        ok(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s["next"]),
           f"schedule list: the next run ({s['next']})")
        s = wait_schedule(g, lambda s: s.get("result") == "success" and "last" in s,
                          "a scheduled run that succeeded", 150)
        ok(True, f"the timer fired on its own and the run succeeded ({time.monotonic() - t0:.0f} s):"
                 f" schedule list says last run {s['last']}, success")
        cps = json.loads(g.sh("stillpoint --json -q checkpoint list vm", check=True)[1])["checkpoints"]
        ok(cps and all(cp["origin"] == "schedule" for cp in cps),
           f"the store holds the schedule's checkpoint ({[cp['name'] for cp in cps]})")
        text = g.sh("stillpoint schedule list", check=True)[1]
        ok(re.search(r"^vm\s+\*:\*:0/10\s+1\s+enabled\s+(\S+ \S+|-)\s+\S+ \S+\s+(success|running)$", text, re.M),
           f"... and as text:\n{text}")

        # The VM goes away: the next run fails, visibly.
        g.wait_for("test $(systemctl show -P ActiveState stillpoint-checkpoint-vm.service) != "
                   "activating", "no scheduled run going on", 120)
        g.sh("systemctl stop sp-vm", check=True)
        # The timer's service, now (the timer would start it within a minute).
        g.sh("systemctl start stillpoint-checkpoint-vm.service", timeout=120)
        # (The timer may start another run meanwhile, "running" until it fails too.)
        s = wait_schedule(g, lambda s: s.get("result") not in (None, "success", "running"),
                          "the failed run in schedule list")
        ok(s.get("exit_status", 0) != 0, f"schedule list shows the failed run: result "
                                         f"{s.get('result')}, exit status {s.get('exit_status')}")
        text = g.wait_for("stillpoint schedule list vm | grep -E '\\sfailed$'",
                          "the failed run in schedule list's text", 60)
        ok(True, f"... as text: {text.strip()}")
        log = journal(g, "stillpoint-checkpoint-vm.service")
        ok(re.search(r"VM 'vm': QMP socket /run/sp-vm/qmp\.sock: cannot connect", log) and
           "Failed with result" in log,
           "the journal has stillpoint's error and systemd's 'Failed with result'")

        out = json.loads(g.sh("stillpoint --json schedule remove vm", check=True)[1])
        ok(out["disabled"], "schedule remove disabled the timer")
        ok(g.sh("ls /etc/systemd/system/stillpoint-checkpoint-vm.* 2>/dev/null")[1] == "" and
           g.sh("systemctl show -P LoadState stillpoint-checkpoint-vm.timer")[1].strip() == "not-found"
           and "stillpoint-checkpoint" not in g.sh("systemctl list-timers --all", check=True)[1],
           "the units are deleted and systemd no longer has the timer")
        ok(json.loads(g.sh("stillpoint --json schedule list", check=True)[1])["schedules"] == [],
           "schedule list is empty")
        ok(len(json.loads(g.sh("stillpoint --json -q checkpoint list vm",
                               check=True)[1])["checkpoints"]) >= 1,
           "the schedule's checkpoints stay")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    for name in ("--guest", "--distro", "--run-dir", "--stillpoint"):
        p.add_argument(name, required=True)
    p.add_argument("case", choices=["udev", "freeze-root", "postgresql", "libvirt", "polkit",
                                    "schedule"])
    a = p.parse_args()
    # Each run starts empty: a store, images or an export left by an earlier run would change it.
    shutil.rmtree(a.run_dir, ignore_errors=True)
    os.makedirs(a.run_dir)
    t0 = time.monotonic()
    try:
        {"udev": case_udev, "freeze-root": case_freeze_root,
         "postgresql": case_postgresql, "libvirt": case_libvirt, "polkit": case_polkit,
         "schedule": case_schedule}[a.case](Ctx(a))
    except Failure as e:
        print(f"not ok - {e}", flush=True)
        return 1
    print(f"# {a.case}: {time.monotonic() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
