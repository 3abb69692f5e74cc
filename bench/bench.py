#!/usr/bin/python3
"""bench.py: stillpoint's benchmarks (issue 10), driven by bench/run. Python 3 standard library.

Boots the test guest (tests/guest) with BOTH agents on two virtio-serial ports, so that A
(stillpoint-agent + `stillpoint checkpoint create`) and B (stock qemu-ga + the QMP sequence libvirt
uses for `snapshot-create --quiesce --disk-only`) alternate on one guest, one page cache, one set of
disks. Every agent and QMP channel goes through a timestamping proxy (LineProxy), the one
measuring point for both sides. See bench/README.md for the method and how to read the results.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(BENCH)
# The runner of the tree being measured (bench/run passes --src, the snapshot of HEAD it built).
_src = sys.argv[sys.argv.index("--src") + 1] if "--src" in sys.argv[:-1] else TOP
sys.path.insert(0, os.path.join(_src, "tests", "guest"))
from spguest import (Disk, Guest, GuestError, QgaClient, WorkloadClient, QGA_PORT,  # noqa: E402
                     WORKLOAD_PORT, _read_line)

SP_PORT = "org.qemu.guest_agent.1"  # stillpoint-agent's port; qemu-ga keeps the standard one
DISK_SIZE = "320M"


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# -- measuring point ---------------------------------------------------------------------------

class LineProxy:
    """A unix-socket proxy in front of a QEMU chardev/monitor socket that timestamps every line in
    both directions: ("up" = host to QEMU, "down" = QEMU to host). One client at a time, as QEMU."""

    def __init__(self, listen_path, upstream_path):
        self.path, self.upstream = listen_path, upstream_path
        self.events = []  # (monotonic time, "up"|"down", first bytes of the line)
        self.lock = threading.Lock()
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(listen_path):
            os.unlink(listen_path)
        self.srv.bind(listen_path)
        self.srv.listen(4)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.srv.accept()
            except OSError:
                return
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                up.connect(self.upstream)
            except OSError:
                client.close()
                continue
            done = threading.Event()
            threading.Thread(target=self._pump, args=(client, up, "up", done), daemon=True).start()
            self._pump(up, client, "down", done)
            done.wait(5)
            client.close()
            up.close()

    def _pump(self, src, dst, direction, done):
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                t = time.monotonic()
                buf += data
                # Recorded before forwarding: whoever reads the answer finds it logged.
                while b"\n" in buf:
                    line, _, buf = buf.partition(b"\n")
                    with self.lock:
                        self.events.append((t, direction, line[:400]))
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if direction == "up":
            done.set()

    def mark(self):
        with self.lock:
            return len(self.events)

    def since(self, mark):
        with self.lock:
            return list(self.events[mark:])

    def close(self):
        self.srv.close()


def _first(events, start, pred):
    for i in range(start, len(events)):
        if pred(events[i]):
            return i
    return None


def agent_window(events):
    """(freeze sent, freeze answered, thaw sent, thaw answered) from an agent channel's lines."""
    def is_reply(e):
        return e[1] == "down" and (b'"return"' in e[2] or b'"error"' in e[2])
    fs = _first(events, 0, lambda e: e[1] == "up" and (b'"guest-fsfreeze-freeze' in e[2] or
                                                       b'"stillpoint-freeze"' in e[2]))
    if fs is None:
        return None
    fr = _first(events, fs + 1, is_reply)
    ts = _first(events, fr + 1, lambda e: e[1] == "up" and b"thaw" in e[2])
    tr = _first(events, ts + 1, is_reply) if ts is not None else None
    if None in (fr, ts, tr):
        return None
    return events[fs][0], events[fr][0], events[ts][0], events[tr][0]


def qmp_transaction(events):
    xs = _first(events, 0, lambda e: e[1] == "up" and b'"transaction"' in e[2])
    if xs is None:
        return None
    xr = _first(events, xs + 1, lambda e: e[1] == "down" and b'"event"' not in e[2])
    return (events[xs][0], events[xr][0]) if xr is not None else None


def window_record(agent_events, qmp_events):
    w = agent_window(agent_events)
    x = qmp_transaction(qmp_events)
    if w is None or x is None:
        raise GuestError("the proxies saw no complete freeze/transaction/thaw")
    fs, fr, ts, tr = w
    xs, xr = x
    ms = lambda a, b: round((b - a) * 1000, 2)
    return {"window_ms": ms(fs, tr), "freeze_ms": ms(fs, fr), "prep_ms": ms(fr, xs),
            "transaction_ms": ms(xs, xr), "to_thaw_ms": ms(xr, ts), "thaw_ms": ms(ts, tr)}


# -- QMP with events (B's sequence waits for blockdev-create jobs) ------------------------------

class Qmp:
    def __init__(self, path, timeout=30.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf, self.events, self.timeout = b"", [], timeout
        self._msg()
        self.execute("qmp_capabilities")

    def _msg(self):
        line, self.buf = _read_line(self.sock, self.buf, time.monotonic() + self.timeout)
        return json.loads(line)

    def execute(self, command, arguments=None):
        msg = {"execute": command}
        if arguments is not None:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._msg()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise GuestError(f"QMP {command}: {reply['error'].get('desc')}")
            return reply.get("return")

    def wait_job(self, job_id, status="concluded"):
        def seen():
            return any(e["event"] == "JOB_STATUS_CHANGE" and e["data"]["id"] == job_id and
                       e["data"]["status"] == status for e in self.events)
        while not seen():
            self.events.append(self._msg())

    def close(self):
        self.sock.close()


# -- the guest ---------------------------------------------------------------------------------

class BenchGuest(Guest):
    """The test guest with qemu-ga on the standard port, stillpoint-agent on a second one (both
    started by sp-bench-guest), and a second QMP monitor for B (libvirt holds its own)."""

    def __init__(self, guest_dir, run_dir, n_disks, memory=512):
        disks = [Disk(f"d{i}", "ext4", DISK_SIZE) for i in range(n_disks)]
        super().__init__(guest_dir, run_dir, agent="none", disks=disks, workload=["bench"],
                         memory=memory, lifetime=1800, fresh=True,
                         append="sp.ports=" + ",".join([QGA_PORT, WORKLOAD_PORT, SP_PORT]))
        sock_dir = os.path.dirname(self.qga_path)
        self.sp_path = os.path.join(sock_dir, "qga-sp.sock")
        self.qmpb_path = os.path.join(sock_dir, "qmp-b.sock")

    def qemu_command(self):
        return super().qemu_command() + [
            "-chardev", f"socket,id=qga1,path={self.sp_path},server=on,wait=off",
            "-device", f"virtserialport,bus=vser0.0,chardev=qga1,name={SP_PORT}",
            "-chardev", f"socket,id=mon1,path={self.qmpb_path},server=on,wait=off",
            "-mon", "chardev=mon1,mode=control"]

    def wait_ready(self, timeout=90.0):
        """Ready = sp-bench-guest answers on its port (the agents are started afterwards)."""
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.workload_path):
            self._check_alive("booting")
            time.sleep(0.05)
        client = WorkloadClient(self.workload_path)
        client.sock.sendall(b"mark\n")
        while True:
            self._check_alive("booting")
            if time.monotonic() > deadline:
                raise GuestError(f"sp-bench-guest did not answer in {timeout:.0f} s\n"
                                 f"{self.console_tail()}")
            try:
                line, client.buf = _read_line(client.sock, client.buf, time.monotonic() + 0.5)
                json.loads(line)
                break
            except TimeoutError:
                continue
            except OSError:  # QEMU went away: say why
                self._check_alive("booting")
                raise
        self._workload_conn = client
        self.boot_to_ping = time.monotonic() - self.t_launch
        return self.boot_to_ping

    def helper(self, line, timeout=60.0):
        reply = self.workload(line, timeout)
        if "error" in reply and reply["error"]:
            raise GuestError(f"sp-bench-guest '{line}': {reply['error']}")
        return reply

    def spawn_agents(self):
        out = {}
        for name, port, path in (("qemu-ga", QGA_PORT, self.qga_path),
                                 ("stillpoint", SP_PORT, self.sp_path)):
            out[name] = self.helper(f"spawn {name} /dev/virtio-ports/{port}")
            wait_sync(path)
        return out


def wait_sync(path, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = QgaClient(path)
        except OSError:  # QEMU still holds the previous client
            time.sleep(0.05)
            continue
        try:
            if c.sync(timeout=2.0):
                return
        finally:
            c.close()
    raise GuestError(f"no agent answers on {path}")


# -- one checkpoint each way -------------------------------------------------------------------

class Vm:
    """One booted guest, its proxies, and the stillpoint CLI's registration (A) of it."""

    def __init__(self, guest, name, store, cli, work):
        self.g, self.name, self.store, self.cli, self.work = guest, name, store, cli, work
        self.sock_dir = tempfile.mkdtemp(prefix="spb-")
        self.px_sp = LineProxy(os.path.join(self.sock_dir, "sp"), guest.sp_path)
        self.px_qmp_a = LineProxy(os.path.join(self.sock_dir, "qa"), guest.qmp_path)
        self.px_qga = LineProxy(os.path.join(self.sock_dir, "ga"), guest.qga_path)
        self.px_qmp_b = LineProxy(os.path.join(self.sock_dir, "qb"), guest.qmpb_path)
        self.overlays = os.path.join(work, "overlays")
        os.makedirs(self.overlays, exist_ok=True)
        self.sp("vm", "add", name, "--qmp", self.px_qmp_a.path, "--agent", self.px_sp.path,
                "--overlay-dir", self.overlays)
        self.qga = None  # B's agent connection, kept open as libvirt keeps it
        self.qmp = None
        self.b_count = 0

    def sp(self, *args):
        r = subprocess.run([self.cli, "--json", "--store", self.store] + list(args),
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise GuestError(f"stillpoint {' '.join(args)}: {r.stderr.strip()}")
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        return json.loads(lines[-1]) if lines else r.stdout

    def checkpoint_a(self):
        ma, mq = self.px_sp.mark(), self.px_qmp_a.mark()
        t0 = time.monotonic()
        out = self.sp("checkpoint", "create", self.name)
        t1 = time.monotonic()
        events = self.px_sp.since(ma)
        rec = window_record(events, self.px_qmp_a.since(mq))
        fs, _, _, tr = agent_window(events)
        # The agent's own account: held-ms = FIFREEZE done -> FITHAW, without the pre-freeze syncfs.
        held = None
        for t, d, line in events:
            if d == "down" and b'"held-ms"' in line:
                try:
                    held = json.loads(line.strip(b"\xff"))["return"]["held-ms"]
                except (ValueError, KeyError, TypeError):
                    pass
        # Outside the window: exec -> freeze sent (lock, journal, discovery, overlays), and
        # thaw answered -> exit (record, journal).
        rec.update(e2e_ms=round((t1 - t0) * 1000, 2), before_ms=round((fs - t0) * 1000, 2),
                   after_ms=round((t1 - tr) * 1000, 2), held_ms=held,
                   consistency=out.get("consistency"))
        return rec

    def checkpoint_b(self):
        """libvirt's order for an external disk-only snapshot with --quiesce (qemuSnapshot.c):
        guest-fsfreeze-freeze; per disk create the file, blockdev-add it, blockdev-create the
        qcow2 (a job), blockdev-add the format node; one transaction of blockdev-snapshot;
        guest-fsfreeze-thaw. Everything between freeze and thaw is inside the window."""
        if self.qga is None:
            self.qga = QgaClient(self.px_qga.path)
            if not self.qga.sync(timeout=10):
                raise GuestError("qemu-ga does not answer guest-sync-delimited")
            self.qmp = Qmp(self.px_qmp_b.path)
        self.b_count += 1
        # What libvirt knows before it starts: the active layers (from its own state).
        tops = [(i, b["inserted"]["node-name"], b["inserted"]["file"],
                 b["inserted"]["image"]["virtual-size"])
                for i, b in enumerate(b for b in self.qmp.execute("query-block") if b.get("inserted"))]
        ma, mq = self.px_qga.mark(), self.px_qmp_b.mark()
        t0 = time.monotonic()
        self.qga.execute("guest-fsfreeze-freeze")
        try:
            actions = []
            for i, node, image, size in tops:
                tag = f"b{self.b_count}-{i}"
                path = os.path.join(self.overlays, f"{tag}.qcow2")
                open(path, "wb").close()
                self.qmp.execute("blockdev-add", {"driver": "file", "node-name": f"f-{tag}",
                                                  "filename": path})
                self.qmp.execute("blockdev-create", {"job-id": f"j-{tag}", "options": {
                    "driver": "qcow2", "file": f"f-{tag}", "size": size,
                    "backing-file": image, "backing-fmt": "qcow2"}})
                self.qmp.wait_job(f"j-{tag}")
                self.qmp.execute("job-dismiss", {"id": f"j-{tag}"})
                self.qmp.execute("blockdev-add", {"driver": "qcow2", "node-name": f"o-{tag}",
                                                  "file": f"f-{tag}", "backing": None})
                actions.append({"type": "blockdev-snapshot",
                                "data": {"node": node, "overlay": f"o-{tag}"}})
            self.qmp.execute("transaction", {"actions": actions})
        finally:
            self.qga.execute("guest-fsfreeze-thaw")
        e2e = time.monotonic() - t0
        rec = window_record(self.px_qga.since(ma), self.px_qmp_b.since(mq))
        rec.update(e2e_ms=round(e2e * 1000, 2), consistency="application")
        return rec

    def close(self):
        for c in (self.qga, self.qmp):
            if c:
                c.close()
        for p in (self.px_sp, self.px_qmp_a, self.px_qga, self.px_qmp_b):
            p.close()
        shutil.rmtree(self.sock_dir, ignore_errors=True)


def agent_cpu(g):
    p = g.helper("proc")
    return {k: v["cpu_ticks"] / p["hz"] * 1000 for k, v in p.items() if isinstance(v, dict)}


def measured(vm, side, settle, gap=0.0):
    """One checkpoint on side A or B with the in-guest stall and the agent's CPU around it."""
    g = vm.g
    dirty = g.helper("meminfo")["dirty_kb"]
    cpu0 = agent_cpu(g)
    mark = g.helper("mark")["now_ns"]
    rec = vm.checkpoint_a() if side == "A" else vm.checkpoint_b()
    t_end = time.monotonic()
    time.sleep(settle)  # the write in flight during the window finishes
    st = g.helper(f"stall {mark}")
    cpu1 = agent_cpu(g)
    # The same pause after every checkpoint: the buffered writer dirties the same amount again.
    time.sleep(max(0.0, t_end + gap - time.monotonic()))
    agent = "stillpoint" if side == "A" else "qemu-ga"
    rec.update(side=side, stall_ms=round(st["max_us"] / 1000, 2), writes=st["writes"],
               dirty_kb=dirty, agent_cpu_ms=round(cpu1[agent] - cpu0[agent], 1))
    return rec


def load_line(load, n_disks, mbps):
    dirs = " ".join(f"/mnt/d{i}" for i in range(n_disks))
    return {"idle": "load idle", "fsync": f"load fsync {dirs}",
            "buffered": f"load buffered {mbps} {dirs}"}[load]


def run_window(cfg, tools, n_disks, results):
    work = os.path.join(cfg.work, f"window-{n_disks}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    log(f"booting the guest with {n_disks} disk(s), both agents")
    g = BenchGuest(tools["guest"], work, n_disks)
    g.start(boot_timeout=120)
    log(f"booted in {g.boot_to_ping:.1f} s")
    vm = None
    try:
        spawn = g.spawn_agents()
        results["footprint"].setdefault("spawn", []).append(spawn)
        idle = g.helper("proc")
        results["footprint"].setdefault("idle", []).append(idle)
        vm = Vm(g, f"bench{n_disks}", os.path.join(work, "store.db"), tools["cli"], work)
        for load in cfg.loads:
            g.helper(load_line(load, n_disks, cfg.mbps))
            results.setdefault("loadavg_samples", []).append(os.getloadavg()[0])
            time.sleep(cfg.warmup if load != "idle" else 0.5)
            # The first checkpoint finds what later ones find: one gap's worth of dirty pages.
            g.helper("sync")
            base_mark = g.helper("mark")["now_ns"]
            time.sleep(cfg.gap)
            baseline = g.helper(f"stall {base_mark}")["max_us"] / 1000 if load != "idle" else None
            recs = []
            for i in range(cfg.reps):
                for side in (("A", "B") if i % 2 == 0 else ("B", "A")):
                    rec = measured(vm, side, cfg.settle, cfg.gap)
                    rec.update(load=load, disks=n_disks)
                    recs.append(rec)
                    log(f"{n_disks} fs, {load:8s} {side}: window {rec['window_ms']:8.1f} ms, "
                        f"stall {rec['stall_ms']:8.1f} ms, e2e {rec['e2e_ms']:8.1f} ms, "
                        f"dirty {rec['dirty_kb']} kB; freeze {rec['freeze_ms']}, prep {rec['prep_ms']}, "
                        f"txn {rec['transaction_ms']}, to-thaw {rec['to_thaw_ms']}, thaw {rec['thaw_ms']}")
            results["window"].append({"load": load, "disks": n_disks, "baseline_stall_ms": baseline,
                                      "checkpoints": recs})
        if cfg.diag and n_disks == 1:
            results["diag"] = run_diag(cfg, vm, n_disks)
        g.helper("load idle")
        results["footprint"].setdefault("after", []).append(g.helper("proc"))
        vm.close()  # B's agent connection too: QEMU serves one client per port
        vm = None
        if n_disks == 1:
            results["footprint"]["idle_cpu"] = idle_cpu(g, cfg.idle_cpu_s)
            results["footprint"]["startup"] = startup(g, cfg.startup_reps)
    finally:
        if vm:
            vm.close()
        g.stop()


def run_diag(cfg, vm, n_disks):
    """Where an agent's freeze time goes, without any snapshot: freeze then thaw at once, over the
    same channels, for stillpoint-agent's extension (exactly the line the CLI sent), the same
    agent's standard command, and qemu-ga; plus one bare syncfs in the guest."""
    g = vm.g
    cli_freeze, cli_commands = None, []
    for t, d, line in vm.px_sp.since(0):
        if d == "up" and b'"stillpoint-freeze"' in line:
            cli_freeze = json.loads(line.strip(b"\xff"))
        if d == "up":
            try:
                cli_commands.append(json.loads(line.strip(b"\xff"))["execute"])
            except (ValueError, KeyError):
                pass
    sp = QgaClient(vm.px_sp.path)
    if not sp.sync(timeout=10):
        raise GuestError("stillpoint-agent does not answer guest-sync-delimited")
    variants = [("stillpoint-agent, stillpoint-freeze as the CLI sends it", sp,
                 cli_freeze["execute"], cli_freeze.get("arguments"), "stillpoint-thaw"),
                ("stillpoint-agent, guest-fsfreeze-freeze", sp, "guest-fsfreeze-freeze", None,
                 "guest-fsfreeze-thaw"),
                ("qemu-ga, guest-fsfreeze-freeze", vm.qga, "guest-fsfreeze-freeze", None,
                 "guest-fsfreeze-thaw")]
    # The agent commands of one `checkpoint create` (they all count in its CPU per checkpoint).
    per_cp = len(cli_commands) // max(1, sum(c == "stillpoint-freeze" for c in cli_commands))
    out = {"cli_freeze": cli_freeze, "cli_commands": cli_commands[-per_cp:], "runs": [],
           "syncfs_idle_ms": []}
    try:
        for load in ("buffered", "idle"):  # the window loop left the buffered writer running
            g.helper(load_line(load, n_disks, cfg.mbps))
            if load == "idle":
                g.helper("sync")  # the buffered writer's pages must not land in the first freeze
                for _ in range(3):
                    out["syncfs_idle_ms"].append(g.helper("syncfs /mnt/d0")["us"] / 1000)
            for rep in range(cfg.diag_reps):
                for k in range(len(variants)):
                    name, client, freeze, args, thaw = variants[(k + rep) % len(variants)]
                    time.sleep(cfg.gap)
                    dirty = g.helper("meminfo")["dirty_kb"]
                    agent = "qemu-ga" if client is vm.qga else "stillpoint"
                    cpu0 = agent_cpu(g)[agent]
                    mark = g.helper("mark")["now_ns"]
                    t0 = time.monotonic()
                    client.execute(freeze, args)
                    t1 = time.monotonic()
                    client.execute(thaw)
                    t2 = time.monotonic()
                    time.sleep(cfg.settle)
                    stall = g.helper(f"stall {mark}")["max_us"] / 1000
                    cpu = agent_cpu(g)[agent] - cpu0
                    out["runs"].append({"load": load, "variant": name, "freeze_ms": round((t1 - t0) * 1000, 2),
                                        "thaw_ms": round((t2 - t1) * 1000, 2), "stall_ms": stall,
                                        "dirty_kb": dirty, "cpu_ms": round(cpu, 1)})
                    log(f"diag {load:8s} {name}: freeze {(t1 - t0) * 1000:.1f} ms, thaw "
                        f"{(t2 - t1) * 1000:.1f} ms, stall {stall:.1f} ms, agent CPU {cpu:.0f} ms")
    finally:
        sp.close()
    return out


def idle_cpu(g, seconds):
    """Each agent's CPU per second doing nothing, with no host on its port and with one."""
    out = {}
    for state in ("no host", "host connected"):
        clients = []
        if state == "host connected":
            for path in (g.qga_path, g.sp_path):
                c = QgaClient(path)
                c.sync(timeout=10)
                clients.append(c)
        c0 = agent_cpu(g)
        time.sleep(seconds)
        c1 = agent_cpu(g)
        for c in clients:
            c.close()
        out[state] = {k: round((c1[k] - c0[k]) / seconds, 1) for k in c0}
    log(f"idle CPU, ms per s: {out}")
    return out


def startup(g, reps):
    """exec -> the agent holds its virtio-serial port open, measured in the guest, both agents."""
    out = {"qemu-ga": [], "stillpoint": []}
    for _ in range(reps):
        for name, port, path in (("qemu-ga", QGA_PORT, g.qga_path),
                                 ("stillpoint", SP_PORT, g.sp_path)):
            g.helper(f"stop {name}")
            r = g.helper(f"spawn {name} /dev/virtio-ports/{port}")
            out[name].append(r["open_us"] / 1000)
            wait_sync(path)
    return out


# -- scale: N VMs at once ----------------------------------------------------------------------

def run_scale(cfg, tools, results):
    for n in cfg.scale:
        work = os.path.join(cfg.work, f"scale-{n}")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        log(f"scale: booting {n} VM(s)")
        guests, vms = [], []
        try:
            for i in range(n):
                g = BenchGuest(tools["guest"], os.path.join(work, f"vm{i}"), 1, memory=384)
                g.launch()
                guests.append(g)
            for g in guests:
                g.wait_ready(180)
                g.spawn_agents()
                g.helper("load fsync /mnt/d0")
            store = os.path.join(work, "store.db")
            vms = [Vm(g, f"vm{i}", store, tools["cli"], g.run_dir) for i, g in enumerate(guests)]
            rounds = []
            for r in range(cfg.scale_reps):
                out = [None] * n
                def one(i):
                    out[i] = measured(vms[i], "A", 0.3)
                t0 = time.monotonic()
                threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                wall = time.monotonic() - t0 - 0.3
                if any(o is None for o in out):
                    raise GuestError(f"scale {n}: a concurrent checkpoint failed")
                rounds.append({"wall_ms": round(wall * 1000, 1), "checkpoints": out})
                log(f"scale {n}: all created in {wall * 1000:.0f} ms, windows "
                    + ", ".join(f"{o['window_ms']:.0f}" for o in out) + " ms")
                time.sleep(cfg.settle)
            results["scale"].append({"vms": n, "rounds": rounds})
            if n == cfg.scale[0] and "merge" in cfg.only_parts:
                for g in guests[1:]:
                    g.helper("load idle")  # the others stay quiet while vm0 merges
                run_delete(cfg, vms[0], results)
        finally:
            for vm in vms:
                vm.close()
            for g in guests:
                g.stop()


# -- merge: checkpoint delete and qemu-img commit vs data written -------------------------------

def run_delete(cfg, vm, results):
    """Live merge of the current checkpoint (the active layer: block-commit, ready, complete)
    after MIB MiB were written into the VM's overlay since the checkpoint was made."""
    vm.g.helper("load idle")
    for mib in cfg.merge_mib:
        cp = vm.sp("checkpoint", "create", vm.name)
        fill = vm.g.helper(f"fill /mnt/d0 {mib}")
        t0 = time.monotonic()
        vm.sp("checkpoint", "delete", vm.name, f"#{cp['id']}")
        dt = time.monotonic() - t0
        results["delete"].append({"mib": mib, "delete_ms": round(dt * 1000, 1),
                                  "mib_per_s": round(mib / dt, 1),
                                  "fill_ms": round(fill["us"] / 1000, 1)})
        log(f"delete: live merge of a checkpoint with {mib} MiB written since took {dt * 1000:.0f} ms")


def run_merge(cfg, results):
    work = os.path.join(cfg.work, "merge")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    for mib in cfg.merge_mib:
        base, top = os.path.join(work, "base.qcow2"), os.path.join(work, "top.qcow2")
        for p in (base, top):
            if os.path.exists(p):
                os.unlink(p)
        q = lambda *c: subprocess.run(c, check=True, stdout=subprocess.DEVNULL)
        q("qemu-img", "create", "-q", "-f", "qcow2", base, "2G")
        q("qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
        q("qemu-io", "-c", f"write -P 0x22 64M {mib}M", top)
        subprocess.run(["sync"])
        t0 = time.monotonic()
        q("qemu-img", "commit", "-q", top)
        dt = time.monotonic() - t0
        results["merge"].append({"mib": mib, "commit_ms": round(dt * 1000, 1),
                                 "mib_per_s": round(mib / dt, 1)})
        log(f"merge: qemu-img commit of {mib} MiB took {dt * 1000:.0f} ms")
    shutil.rmtree(work, ignore_errors=True)


# -- the machine, sizes ------------------------------------------------------------------------

def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                          text=True).stdout.splitlines()[0]
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(),
            "kernel": platform.release(), "qemu": qemu, "accel": "tcg",
            "mem_mb": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20,
            "loadavg_start": open("/proc/loadavg").read().split()[:3]}


def binary_sizes(tools):
    out = {}
    for name, path in (("stillpoint", tools["agent"]), ("qemu-ga", tools["qga"])):
        libs = set()
        for line in subprocess.run(["ldd", path], capture_output=True, text=True).stdout.splitlines():
            if "=> /" in line:
                libs.add(os.path.realpath(line.split("=> ")[1].split(" (")[0]))
        out[name] = {"path": path, "bytes": os.path.getsize(path),
                     "libs": sorted(os.path.basename(l) for l in libs),
                     "libs_bytes": sum(os.path.getsize(l) for l in libs)}
    return out


def main(argv):
    p = argparse.ArgumentParser(prog="bench.py")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--work", required=True)
    p.add_argument("--guest", required=True)
    p.add_argument("--src", default=TOP, help="source tree measured (its tests/guest/spguest.py)")
    p.add_argument("--commit", default="", help="the commit measured")
    p.add_argument("--cli", required=True)
    p.add_argument("--agent", required=True)
    p.add_argument("--qga", required=True)
    p.add_argument("--out", required=True, help="results JSON")
    p.add_argument("--only", default="window,scale,merge")
    a = p.parse_args(argv)
    a.loads = ["idle", "fsync", "buffered"]
    if a.quick:
        a.reps, a.settle, a.gap, a.warmup, a.mbps = 2, 0.3, 0.8, 0.5, 12
        a.disk_counts, a.scale, a.scale_reps, a.merge_mib, a.startup_reps = [1, 4], [2], 1, [48], 1
        a.diag, a.diag_reps, a.idle_cpu_s = True, 1, 2.0
    else:
        a.reps, a.settle, a.gap, a.warmup, a.mbps = 6, 0.5, 3.0, 4.0, 12
        a.disk_counts, a.scale, a.scale_reps, a.merge_mib, a.startup_reps = \
            [1, 4], [1, 2, 4], 3, [16, 64, 160], 5
        a.diag, a.diag_reps, a.idle_cpu_s = True, 4, 5.0
    tools = {"guest": a.guest, "cli": a.cli, "agent": a.agent, "qga": a.qga}
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "quick": a.quick, "commit": a.commit, "machine": machine(), "binaries": binary_sizes(tools),
               "params": {"reps": a.reps, "settle_s": a.settle, "gap_s": a.gap, "warmup_s": a.warmup,
                          "buffered_mib_s": a.mbps, "disk_size": DISK_SIZE},
               "window": [], "footprint": {}, "scale": [], "merge": [], "delete": []}
    t0 = time.monotonic()
    only = a.only_parts = a.only.split(",")
    if "window" in only:
        for n in a.disk_counts:
            run_window(a, tools, n, results)
    if "scale" in only:
        run_scale(a, tools, results)
    if "merge" in only:
        run_merge(a, results)
    results["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    results["duration_s"] = round(time.monotonic() - t0, 1)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    log(f"done in {results['duration_s']} s: {a.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except GuestError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
