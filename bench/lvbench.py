#!/usr/bin/python3
"""lvbench.py: stillpoint's libvirt driver against libvirt's own quiesced snapshot, driven by
bench/libvirt. Python 3 standard library.

One libvirt domain (the test guest with sp-bench-guest, as bench/run builds it) on a private
session libvirtd, one data disk, one writer. Rounds alternate A, B, B, A, A, B, ... on the same
boot; before each round sp-bench-guest starts that side's agent on libvirt's
org.qemu.guest_agent.0 channel (and stops the other):

  A = libvirt's own: stock qemu-ga, `virsh snapshot-create-as DOM --disk-only --quiesce --atomic
      --no-metadata` (libvirt: guest-fsfreeze-freeze, blockdev-create of the overlay, one
      transaction, guest-fsfreeze-thaw); merged back with `virsh blockcommit --active --pivot`.
  B = stillpoint's libvirt driver: stillpoint-agent, `stillpoint checkpoint create` (overlays made
      before the freeze, leased stillpoint-freeze through virDomainQemuAgentCommand, one
      virDomainSnapshotCreateXML REUSE_EXT, stillpoint-thaw); merged with `checkpoint delete`.

The measuring point for the window is libvirtd itself: its debug log (qemu_agent and
qemu_monitor_json, millisecond timestamps) has every agent and QMP line both sides send and
receive, so both windows are read the same way: freeze command written -> thaw reply read.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
DOM = "lvbench"
URI = "qemu:///session"
QGA_PORT = "/dev/virtio-ports/org.qemu.guest_agent.0"
DISK_SIZE = "320M"
AGENT = {"A": "qemu-ga", "B": "stillpoint"}


def log(msg):
    print(f"bench/libvirt: {msg}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, a):
        self.a = a
        self.t = a.work
        self.daemon = None
        self.wl = None
        self.wl_buf = b""
        self.current = None
        self.merge_retries = []
        self.as_user = []
        if os.getuid() == 0:  # root's libvirtd is the system one: run a session daemon as nobody
            self.as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            os.chown(self.t, 65534, 65534)
        self.env = dict(os.environ, HOME=self.t, XDG_CONFIG_HOME=f"{self.t}/config",
                        XDG_CACHE_HOME=f"{self.t}/cache", XDG_RUNTIME_DIR=f"{self.t}/run",
                        XDG_DATA_HOME=f"{self.t}/data", STILLPOINT_STORE=f"{self.t}/store.db")
        self.debug_log = f"{self.t}/libvirtd-debug.log"

    # -- processes ----------------------------------------------------------------------------
    def run(self, *cmd, check=True, env=None):
        p = subprocess.run(self.as_user + list(cmd), env=env or self.env, capture_output=True,
                           text=True)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
        return p

    def virsh(self, *args, check=True):
        return self.run("virsh", "-q", "-c", URI, *args, check=check)

    def start_daemon(self):
        for d in ("config", "cache", "run", "data"):
            self.run("mkdir", "-p", f"{self.t}/{d}")
        os.chmod(f"{self.t}/run", 0o700)
        env = dict(self.env, LIBVIRT_LOG_FILTERS="1:qemu.qemu_agent 1:qemu.qemu_monitor",
                   LIBVIRT_LOG_OUTPUTS=f"1:file:{self.debug_log}")
        self.daemon_out = open(f"{self.t}/libvirtd.out", "w")
        self.daemon = subprocess.Popen(self.as_user + ["libvirtd", "--timeout", "3600"], env=env,
                                       stdout=self.daemon_out, stderr=subprocess.STDOUT)
        for _ in range(400):
            if self.virsh("version", check=False).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("libvirtd did not answer")

    def make_disk(self, serial):
        raw, img = f"{self.t}/{serial}.raw", f"{self.t}/{serial}.qcow2"
        self.run("qemu-img", "create", "-q", "-f", "raw", raw, DISK_SIZE)
        self.run("mkfs.ext4", "-q", "-F", raw)
        self.run("qemu-img", "convert", "-O", "qcow2", raw, img)
        os.unlink(raw)
        return img

    def start_domain(self):
        g = self.a.guest
        env = dict(l.strip().split("=", 1) for l in open(f"{g}/guest.env") if "=" in l)
        self.serials = [f"d{k}" for k in range(self.a.disks)]
        self.targets = [f"vd{chr(ord('a') + k)}" for k in range(self.a.disks)]
        self.images = [self.make_disk(s) for s in self.serials]
        disks = "".join(f"""
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{img}'/>
      <target dev='{tgt}' bus='virtio'/>
      <serial>{ser}</serial>
    </disk>""" for img, tgt, ser in zip(self.images, self.targets, self.serials))
        self.wl_path = f"{self.t}/workload.sock"
        self.console = f"{self.t}/console.log"
        cmdline = ("console=ttyS0 panic=-1 loglevel=4 cryptomgr.notests mitigations=off "
                   "sp.agent=none sp.ports=org.qemu.guest_agent.0,org.stillpoint.workload.0 "
                   f"sp.disks={','.join(self.serials)} sp.workload=bench")
        xml = f"""<domain type='qemu'>
  <name>{DOM}</name>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{g}/{env['KERNEL']}</kernel>
    <initrd>{g}/initrd.img</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <on_reboot>destroy</on_reboot>
  <devices>{disks}
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <channel type='unix'>
      <source mode='bind' path='{self.wl_path}'/>
      <target type='virtio' name='org.stillpoint.workload.0'/>
    </channel>
    <serial type='file'><source path='{self.console}'/></serial>
  </devices>
</domain>
"""
        path = f"{self.t}/{DOM}.xml"
        with open(path, "w") as f:
            f.write(xml)
        self.virsh("define", path)
        t0 = time.monotonic()
        self.virsh("start", DOM)
        self.connect_helper()
        self.boot_s = time.monotonic() - t0

    # -- sp-bench-guest -----------------------------------------------------------------------
    def _line(self, deadline):
        while b"\n" not in self.wl_buf:
            self.wl.settimeout(max(0.01, deadline - time.monotonic()))
            data = self.wl.recv(65536)
            if not data:
                raise RuntimeError("sp-bench-guest's port closed")
            self.wl_buf += data
        line, _, self.wl_buf = self.wl_buf.partition(b"\n")
        return line

    def connect_helper(self, timeout=180.0):
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.wl_path):
            time.sleep(0.05)
        self.wl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.wl.connect(self.wl_path)
        self.wl.sendall(b"mark\n")  # kept by QEMU until the guest opens the port
        while True:
            if time.monotonic() > deadline:
                raise RuntimeError("sp-bench-guest did not answer\n" + self.console_tail())
            try:
                json.loads(self._line(time.monotonic() + 0.5))
                return
            except (TimeoutError, socket.timeout):
                continue

    def helper(self, line, timeout=60.0):
        self.wl.sendall(line.encode() + b"\n")
        reply = json.loads(self._line(time.monotonic() + timeout))
        if reply.get("error"):
            raise RuntimeError(f"sp-bench-guest '{line}': {reply['error']}")
        return reply

    def console_tail(self):
        try:
            return "".join(open(self.console, errors="replace").readlines()[-20:])
        except OSError:
            return ""

    def use_agent(self, side):
        """Only this side's agent on org.qemu.guest_agent.0, and libvirt talking to it."""
        other = AGENT["B" if side == "A" else "A"]
        self.helper(f"stop {other}")
        self.helper(f"stop {AGENT[side]}")
        self.helper(f"spawn {AGENT[side]} {QGA_PORT}")
        for _ in range(300):
            if self.virsh("qemu-agent-command", DOM, '{"execute":"guest-ping"}',
                          check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"libvirt does not reach {AGENT[side]}\n" + self.console_tail())

    # -- one round ----------------------------------------------------------------------------
    def log_size(self):
        try:
            return os.path.getsize(self.debug_log)
        except OSError:
            return 0

    def snapshot(self, side, tag):
        """One snapshot of this side, timed from exec to exit; returns (e2e ms, overlay or None)."""
        if side == "A":
            overlay = [f"{self.t}/a-{tag}-{tgt}.qcow2" for tgt in self.targets]
            cmd = ["virsh", "-q", "-c", URI, "snapshot-create-as", DOM, f"a{tag}", "--disk-only",
                   "--quiesce", "--atomic", "--no-metadata"]
            for tgt, ov in zip(self.targets, overlay):
                cmd += ["--diskspec", f"{tgt},file={ov}"]
        else:
            overlay = None
            cmd = [self.a.cli, "-q", "checkpoint", "create", "lvb", "--name", f"b{tag}"]
        t0 = time.monotonic()
        self.run(*cmd)
        return (time.monotonic() - t0) * 1000, overlay

    def merge(self, side, tag, overlay):
        """Back to the base image, so that every round starts from the same chain."""
        t0 = time.monotonic()
        if side == "A":
            for tgt, ov in zip(self.targets, overlay):
                self.virsh("blockcommit", DOM, tgt, "--active", "--pivot", "--wait")
                os.unlink(ov)
        else:
            p = self.run(self.a.cli, "-q", "checkpoint", "delete", "lvb", f"b{tag}", check=False)
            if p.returncode != 0:
                # stillpoint's driver pivots once virDomainGetBlockJobInfo says cur == end, which
                # libvirt reports from QEMU's "ready" before it has processed the job's ready event
                # itself; the pivot then fails with "not ready for pivot yet" (a race in
                # host/lib/libvirt.c wait_job). The delete stays journaled: `vm recover` finishes it.
                if "not ready for pivot" not in p.stderr:
                    raise RuntimeError(f"checkpoint delete b{tag}: {p.stderr}")
                log(f"checkpoint delete b{tag} failed ({p.stderr.strip()}); vm recover")
                r = self.run(self.a.cli, "vm", "recover", "lvb")
                left = self.run(self.a.cli, "--json", "-q", "checkpoint", "list", "lvb").stdout
                if json.loads(left)["checkpoints"]:
                    raise RuntimeError(f"after vm recover, checkpoints are left: {left}")
                self.merge_retries.append({"tag": str(tag), "error": p.stderr.strip(),
                                           "recover": (r.stdout + r.stderr).strip()})
        ms = (time.monotonic() - t0) * 1000
        top = self.virsh("domblklist", DOM).stdout.split()
        if any(img not in top for img in self.images):
            raise RuntimeError(f"after the merge the domain does not write to {self.images}: {top}")
        return ms

    def round(self, side, i):
        if self.current != side:
            # A fresh agent on the channel, then one unmeasured snapshot and merge: both agents
            # are measured warm, as a long-running agent would be (stillpoint-agent caches its
            # libblkid probes per mount; libvirt has synced the channel).
            self.use_agent(side)
            self.current = side
            time.sleep(self.a.settle_before)
            _, overlay = self.snapshot(side, f"{i}w")
            self.merge(side, f"{i}w", overlay)
        time.sleep(self.a.settle_before)
        self.helper("sync")
        time.sleep(self.a.gap)
        dirty = self.helper("meminfo")["dirty_kb"]
        off = self.log_size()
        mark = self.helper("mark")["now_ns"]
        e2e, overlay = self.snapshot(side, i)
        time.sleep(self.a.settle)  # the write in flight during the window finishes
        stall = self.helper(f"stall {mark}")
        time.sleep(0.3)  # libvirtd's log written
        rec = {"side": side, "round": i, "e2e_ms": round(e2e, 1),
               "stall_ms": round(stall["max_us"] / 1000, 2), "writes": stall["writes"],
               "dirty_kb": dirty}
        rec.update(parse_window(self.read_log(off)))
        rec["merge_ms"] = round(self.merge(side, i, overlay), 1)
        return rec

    def read_log(self, off):
        with open(self.debug_log, "rb") as f:
            f.seek(off)
            return f.read().decode(errors="replace")

    def close(self):
        if self.wl:
            self.wl.close()
        self.virsh("destroy", DOM, check=False)
        self.virsh("undefine", DOM, "--snapshots-metadata", check=False)
        if self.daemon:
            self.daemon.terminate()
            try:
                self.daemon.wait(10)
            except subprocess.TimeoutExpired:
                self.daemon.kill()


# -- libvirtd's log -------------------------------------------------------------------------------
# 2026-11-26 07:40:01.123+0000: 4711: debug : qemuAgentCommandFull:1120 : Send command '...' ...
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\+0000: \d+: \w+ : (\w+):\d+ : (.*)$")


def _events(text):
    """(t seconds, "agent"|"qmp", "send"|"recv", payload) from libvirtd's debug log."""
    out = []
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        fn, msg = m.group(2), m.group(3)
        chan = "agent" if fn.startswith("qemuAgent") else "qmp" if fn.startswith("qemuMonitor") else None
        if chan is None:
            continue
        if chan == "agent" and msg.startswith("Send command '"):
            out.append((t, chan, "send", msg))
        elif chan == "agent" and msg.startswith("Line ["):
            out.append((t, chan, "recv", msg))
        elif chan == "qmp" and msg.startswith("QEMU_MONITOR_IO_WRITE:"):  # written to QEMU
            out.append((t, chan, "send", msg))
        elif chan == "qmp" and msg.startswith("QEMU_MONITOR_RECV_REPLY:"):
            out.append((t, chan, "recv", msg))
    return out


def parse_window(text):
    """The window as libvirtd saw it: the freeze command sent -> the thaw reply read; its steps;
    the agent's held-ms (stillpoint-agent's thaw reply)."""
    ev = _events(text)

    def find(start, chan, kind, pred=lambda m: True):
        for j in range(start, len(ev)):
            if ev[j][1] == chan and ev[j][2] == kind and pred(ev[j][3]):
                return j
        return None

    fr = find(0, "agent", "send", lambda m: "fsfreeze-freeze" in m or "stillpoint-freeze" in m)
    if fr is None:
        return {"window_ms": None}
    fr_r = find(fr + 1, "agent", "recv")
    tx = find(fr + 1, "qmp", "send", lambda m: '"transaction"' in m)
    tx_r = find(tx + 1, "qmp", "recv") if tx is not None else None
    th = find(fr + 1, "agent", "send", lambda m: "fsfreeze-thaw" in m or "stillpoint-thaw" in m)
    th_r = find(th + 1, "agent", "recv") if th is not None else None
    if None in (fr_r, tx, tx_r, th, th_r):
        return {"window_ms": None}
    ms = lambda a, b: round((ev[b][0] - ev[a][0]) * 1000, 1)
    held = re.search(r'"held-ms":\s*(\d+)', ev[th_r][3])
    qmp_in = sum(1 for j in range(fr_r, th) if ev[j][1] == "qmp" and ev[j][2] == "send")
    return {"window_ms": ms(fr, th_r), "freeze_ms": ms(fr, fr_r), "prep_ms": ms(fr_r, tx),
            "transaction_ms": ms(tx, tx_r), "to_thaw_ms": ms(tx_r, th), "thaw_ms": ms(th, th_r),
            "qmp_in_window": qmp_in, "held_ms": int(held.group(1)) if held else None}


# -- the machine, the report --------------------------------------------------------------------
def first_line(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0].strip()
    except (OSError, IndexError):
        return "unknown"


def machine(guest):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    env = dict(l.strip().split("=", 1) for l in open(f"{guest}/guest.env") if "=" in l)
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(),
            "kernel": platform.release(), "qemu": first_line(["qemu-system-x86_64", "--version"]),
            "libvirt": first_line(["libvirtd", "--version"]), "accel": "tcg",
            "guest_kernel": env.get("KERNEL_PACKAGE", ""), "qemu_ga": env.get("QGA_PACKAGE", ""),
            "mem_mb": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20,
            "loadavg_start": open("/proc/loadavg").read().split()[:3]}


METRICS = [("stall_ms", "longest in-guest write stall"),
           ("window_ms", "frozen window, libvirtd's view (freeze sent → thaw answered)"),
           ("freeze_ms", "… freeze (sent → answered)"),
           ("prep_ms", "… freeze answered → transaction sent"),
           ("transaction_ms", "… transaction"),
           ("to_thaw_ms", "… transaction answered → thaw sent"),
           ("thaw_ms", "… thaw (sent → answered)"),
           ("held_ms", "agent's own held-ms (frozen → thawed, in the guest)"),
           ("e2e_ms", "command wall time (exec → exit)"),
           ("outside_ms", "… of it outside the window"),
           ("merge_ms", "merge back (blockcommit --pivot / checkpoint delete)")]


def summary(rounds):
    for r in rounds:
        if r.get("window_ms") is not None:
            r["outside_ms"] = round(r["e2e_ms"] - r["window_ms"], 1)
    out = {}
    for key, _ in METRICS:
        out[key] = {}
        for side in "AB":
            vals = [r[key] for r in rounds if r["side"] == side and r.get(key) is not None]
            out[key][side] = ({"median": round(statistics.median(vals), 1), "min": min(vals),
                               "max": max(vals), "n": len(vals)} if vals else None)
        a, b = out[key]["A"], out[key]["B"]
        out[key]["ratio_b_a"] = round(b["median"] / a["median"], 2) if a and b and a["median"] else None
    return out


def markdown(res):
    m, s, p = res["machine"], res["summary"], res["params"]
    fmt = lambda d: "—" if d is None else f"{d['median']:g} ({d['min']:g}–{d['max']:g})"
    lines = [f"# libvirt: stillpoint's driver vs libvirt's own quiesced snapshot ({res['date']})", "",
             f"Commit `{res['commit'][:7]}`{' (quick)' if res['quick'] else ''}; "
             f"{p['rounds']} rounds per side, alternating ABBA, one boot; load: {p['load']} "
             f"({p['load_desc']}) on {p['disks']} ext4 data disk(s) ({DISK_SIZE} qcow2, virtio-blk), all "
             "frozen and snapshotted at once. Before each measured snapshot the guest is `sync`ed "
             f"and left writing for {p['gap_s']:g} s, so every freeze finds about the same dirty data.", "",
             f"Machine: {m['cores']} cores, {m['cpu']}, kernel {m['kernel']}, {m['qemu']} (TCG), "
             f"{m['libvirt']}; guest {m['guest_kernel']}, {m['qemu_ga']}; load average "
             f"{' '.join(m['loadavg_start'])} at start, {' '.join(m['loadavg_end'])} at end; "
             f"{res['duration_s']:.0f} s.", "",
             "- **A** = libvirt's own: stock qemu-ga, `virsh snapshot-create-as --disk-only "
             "--quiesce --atomic --no-metadata`, merged back with `virsh blockcommit --active --pivot`.",
             "- **B** = stillpoint's libvirt driver: stillpoint-agent, `stillpoint checkpoint create`, "
             "merged back with `stillpoint checkpoint delete`.", "",
             "Each side's agent is started on libvirt's `org.qemu.guest_agent.0` channel when the "
             "side changes and warmed up with one unmeasured snapshot and merge.", "",
             "Medians (min–max) in ms; B/A of the medians, below 1 = stillpoint shorter.", "",
             "| | A: libvirt + qemu-ga | B: stillpoint driver | B/A |", "|---|---|---|---|"]
    for key, label in METRICS:
        r = s[key]
        if r["A"] is None and r["B"] is None:
            continue
        lines.append(f"| {label} | {fmt(r['A'])} | {fmt(r['B'])} | "
                     f"{'—' if r['ratio_b_a'] is None else r['ratio_b_a']} |")
    base = res.get("baseline_stall_ms")
    retries = len(res.get("merge_retries", []))
    lines += ["", f"Longest write stall over an equal quiet period without a snapshot: "
              f"{base if base is not None else '—'} ms.", "",
              (f"`stillpoint checkpoint delete` failed with \"not ready for pivot yet\" {retries} "
               f"time(s) (of {p['rounds']} measured deletes plus the warm-ups); `stillpoint vm "
               "recover` finished it (that round's merge time includes both)." if retries else
               "Every `stillpoint checkpoint delete` succeeded the first time."), "",
              "qemu-ga reports no held time; A's frozen window is bounded by libvirtd's view "
              "(the freeze cannot start before the command is written nor end after its answer "
              "is read).", "", "## Rounds", "",
              "| # | side | stall | window | freeze | prep | txn | to-thaw | thaw | held | e2e | merge | dirty MiB |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rounds"]:
        v = lambda k: "—" if r.get(k) is None else f"{r[k]:g}"
        lines.append(f"| {r['round']} | {r['side']} | " + " | ".join(
            v(k) for k in ("stall_ms", "window_ms", "freeze_ms", "prep_ms", "transaction_ms",
                           "to_thaw_ms", "thaw_ms", "held_ms", "e2e_ms", "merge_ms")) +
                     f" | {r['dirty_kb'] / 1024:.1f} |")
    return "\n".join(lines) + "\n"


LOADS = {"fsync": ("load fsync", "4 KiB pwrite + fsync every 20 ms, one writer per filesystem"),
         "buffered": ("load buffered 12", "64 KiB pwrites without fsync at 12 MiB/s in total")}


def main(argv):
    if argv[:1] == ["--report"]:  # --report JSON MD: the table again from a results file
        with open(argv[1]) as f:
            res = json.load(f)
        res["summary"] = summary(res["rounds"])
        with open(argv[1], "w") as f:
            json.dump(res, f, indent=1)
        with open(argv[2], "w") as f:
            f.write(markdown(res))
        return 0
    p = argparse.ArgumentParser(prog="lvbench.py")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int)
    p.add_argument("--load", default="fsync", choices=sorted(LOADS))
    p.add_argument("--disks", type=int, default=1, choices=range(1, 9))
    p.add_argument("--work", required=True)
    p.add_argument("--guest", required=True)
    p.add_argument("--commit", default="")
    p.add_argument("--cli", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--md", required=True)
    a = p.parse_args(argv)
    a.guest, a.cli, a.work = (os.path.abspath(x) for x in (a.guest, a.cli, a.work))
    a.rounds = a.rounds or (5 if a.quick else 15)
    a.settle, a.settle_before, a.gap = 0.5, 0.5, 2.0
    res = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "quick": a.quick, "commit": a.commit, "machine": machine(a.guest),
           "params": {"rounds": a.rounds, "load": a.load, "load_desc": LOADS[a.load][1],
                      "settle_s": a.settle, "settle_before_s": a.settle_before,
                      "disks": a.disks, "disk_size": DISK_SIZE, "order": "ABBA", "gap_s": a.gap},
           "rounds": []}
    t0 = time.monotonic()
    b = Bench(a)
    try:
        b.start_daemon()
        log("starting the domain")
        b.start_domain()
        log(f"booted in {b.boot_s:.1f} s")
        out = b.run(a.cli, "vm", "add", "lvb", "--driver", "libvirt", "--domain", DOM,
                    "--uri", URI).stdout
        log(out.strip().splitlines()[0] if out.strip() else "vm add: ok")
        b.helper(" ".join([LOADS[a.load][0]] + [f"/mnt/{s}" for s in b.serials]))
        time.sleep(2.0)
        b.helper("sync")
        m = b.helper("mark")["now_ns"]
        time.sleep(a.gap)
        res["baseline_stall_ms"] = round(b.helper(f"stall {m}")["max_us"] / 1000, 2)
        for i in range(a.rounds):
            for side in (("A", "B") if i % 2 == 0 else ("B", "A")):
                rec = b.round(side, i)
                res["rounds"].append(rec)
                log(f"round {i} {side}: stall {rec['stall_ms']} ms, window {rec.get('window_ms')} ms "
                    f"(freeze {rec.get('freeze_ms')}, prep {rec.get('prep_ms')}, txn "
                    f"{rec.get('transaction_ms')}, thaw {rec.get('thaw_ms')}, held "
                    f"{rec.get('held_ms')}), e2e {rec['e2e_ms']} ms, merge {rec['merge_ms']} ms")
        taint = re.findall(r"tainted: [a-z-]+", open(f"{a.work}/cache/libvirt/qemu/log/{DOM}.log",
                                                      errors="replace").read()) \
            if os.path.exists(f"{a.work}/cache/libvirt/qemu/log/{DOM}.log") else []
        res["libvirt_taint"] = sorted(set(taint))
        res["merge_retries"] = b.merge_retries
    finally:
        b.close()
    res["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    res["duration_s"] = round(time.monotonic() - t0, 1)
    res["summary"] = summary(res["rounds"])
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    with open(a.md, "w") as f:
        f.write(markdown(res))
    sys.stdout.write(markdown(res).split("## Rounds")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
