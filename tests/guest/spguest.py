#!/usr/bin/python3
"""spguest: boots the stillpoint test guest (tests/guest/build-guest) under QEMU TCG, waits until
its agent answers, talks to it, and always shuts it down. Python 3 standard library only.

Command line, for debugging by hand and for other test suites (tests/e2e):
  spguest.py boot  BOOT-OPTIONS        boot, wait for guest-ping, print info (JSON), stay in the
                                       foreground until Ctrl-C or SIGTERM, then shut the VM down
  spguest.py start BOOT-OPTIONS        boot, wait for guest-ping, print info (JSON) and return; a
                                       detached supervisor keeps QEMU and kills it after --lifetime
  spguest.py stop --dir DIR            shut down what `start` started (QMP quit, then SIGTERM/SIGKILL)
  spguest.py qga --dir DIR JSON        send one command ('{"execute": ...}' or a bare command name)
                                       to the agent after guest-sync-delimited; print the reply
  spguest.py workload --dir DIR LINE   send one line to sp-workload's control port, print the answer
  spguest.py check-image IMAGE --file PATH [--workload BIN] [--expect N] [--record-size B]
                                       check sp-workload's record file PATH inside an ext4 image
                                       (qcow2 or raw; the journal is replayed on a scratch copy)
BOOT-OPTIONS:
  --guest DIR        build-guest's output (vmlinuz, initrd.img, guest.env); default $SP_GUEST_DIR
  --dir DIR          run directory (created): sockets, console.log, disk images, info.json
  --agent NAME       qemu-ga (default) | stillpoint | none
  --agent-arg ARG    an extra argument for the agent (repeatable)
  --disk SERIAL[:FS[:SIZE]]   a data disk DIR/SERIAL.qcow2 (created with filesystem FS = ext4
                     (default), xfs or none, SIZE like 64M, unless it exists), attached with that
                     serial and mounted in the guest at /mnt/SERIAL (repeatable)
  --fresh            recreate existing disk images
  --workload ARGS    start `sp-workload write ARGS` in the guest; ARGS comma separated, e.g.
                     --interval-ms,50,/mnt/data0/records
  --memory MB (512)  --boot-timeout S (60)  --lifetime S (boot: none, start: 1800)
  --append ARGS      extra kernel command line   --console-stdio  serial console on the terminal
  --vsock CID        add a vhost-vsock-pci device with that guest CID (needs /dev/vhost-vsock)
Files in DIR: qmp.sock qga.sock workload.sock (or under /tmp when DIR's path is too long for a
  socket; info.json has the real paths), console.log, qemu.pid, supervisor.pid, info.json.
QEMU names: data disk SERIAL is format node "disk-SERIAL" on protocol node "file-SERIAL", attached
  to device "vd-SERIAL" (virtio-blk-pci, serial=SERIAL); the agent's port is
  org.qemu.guest_agent.0, the workload's org.stillpoint.workload.0. Exit status: 0 ok, 1 failure.
info.json: {"pid", "qmp", "qga", "workload", "console", "boot_to_ping_s",
            "disks": {SERIAL: {"image", "node", "file_node", "device", "fs", "mountpoint"}}}

Python only: Disk(SERIAL, nbd=(HOST, PORT, EXPORT)) is an NBD server's export instead of a qcow2
  image (raw, QEMU's own NBD client); Guest(..., forwards=[(HOST_PORT, GUEST_PORT)]) adds a
  user-network card (restrict=on: nothing in or out but these TCP forwards from 127.0.0.1) and
  sp.ip=10.0.2.15/24 for the guest's init (a build-guest --storage guest).
Python (tests/guest/test_guest.py):
  from spguest import Guest, Disk
  with Guest(guest_dir, run_dir, agent="qemu-ga", disks=[Disk("data0")], workload=[...]) as g:
      g.qga("guest-ping"); g.workload("report"); g.qmp("query-block")
  g.qga() keeps one agent connection open (stillpoint-agent thaws when the channel that froze
  hangs up, so `spguest.py qga` calls, one connection each, cannot hold a freeze); call
  g.qga_disconnect() before another client uses the port: QEMU serves one client at a time.
A Guest is shut down on leaving the block, at interpreter exit, on SIGTERM/SIGINT, after its
lifetime, and (PR_SET_PDEATHSIG) when the process that started QEMU dies.
"""
import argparse
import atexit
import ctypes
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
from sptest import file_tail  # noqa: E402

QGA_PORT = "org.qemu.guest_agent.0"
WORKLOAD_PORT = "org.stillpoint.workload.0"
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes
GUEST_IP = "10.0.2.15"  # QEMU's user network gives the guest this address


class GuestError(Exception):
    pass


class QgaError(GuestError):
    """The agent answered with an error: .cls is its "class", .desc its "desc", .code the
    stable "code" of a stillpoint- command's error (None from qemu-ga)."""

    def __init__(self, command, error):
        self.cls = error.get("class", "")
        self.desc = error.get("desc", "")
        self.code = error.get("code")
        super().__init__(f"{command}: {self.cls}: {self.desc}")


def _read_line(sock, buf, deadline):
    """Returns (line, rest of buffer); raises TimeoutError after deadline (time.monotonic())."""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no answer") from None
        if not chunk:
            raise ConnectionError("peer closed the connection")
        buf += chunk
    line, _, rest = buf.partition(b"\n")
    return line, rest


class QgaClient:
    """One connection to the guest agent's virtio-serial port (the QEMU guest agent protocol)."""

    _next_id = int(time.time()) % 1000000 * 1000

    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def close(self):
        self.sock.close()

    def sync(self, timeout):
        """guest-sync-delimited: discards whatever is queued before the 0xFF the agent sends in
        front of its answer. True once the agent answered with our id, False on timeout."""
        QgaClient._next_id += 1
        sync_id = QgaClient._next_id
        self.sock.sendall(b"\xff" + json.dumps(
            {"execute": "guest-sync-delimited", "arguments": {"id": sync_id}}).encode() + b"\n")
        deadline = time.monotonic() + timeout
        while True:
            try:
                line, self.buf = _read_line(self.sock, self.buf, deadline)
            except TimeoutError:
                return False
            line = line.rpartition(b"\xff")[2].strip()
            try:
                if json.loads(line).get("return") == sync_id:
                    return True
            except ValueError:
                pass  # a stale partial answer from before the resync

    def execute(self, command, arguments=None, timeout=60.0):
        msg = {"execute": command}
        if arguments is not None:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        deadline = time.monotonic() + timeout
        while True:
            line, self.buf = _read_line(self.sock, self.buf, deadline)
            line = line.strip(b"\xff \r\t")
            if not line:
                continue
            reply = json.loads(line)
            if "error" in reply:
                raise QgaError(command, reply["error"])
            if "return" in reply:
                return reply["return"]


class QmpClient:
    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self._reply(timeout)  # the greeting
        self.execute("qmp_capabilities")

    def close(self):
        self.sock.close()

    def _reply(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            line, self.buf = _read_line(self.sock, self.buf, deadline)
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def execute(self, command, arguments=None, timeout=30.0):
        msg = {"execute": command}
        if arguments is not None:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        reply = self._reply(timeout)
        if "error" in reply:
            raise GuestError(f"QMP {command}: {reply['error'].get('desc')}")
        return reply.get("return")


class Disk:
    """A qcow2 data disk with a serial, mounted in the guest at /mnt/SERIAL. fmt="raw": a raw
    image file instead, opened by QEMU as raw (the guest owns every byte of it)."""

    def __init__(self, serial, fs="ext4", size=None, nbd=None, fmt="qcow2"):
        if not serial or len(serial) > 12 or not serial.replace("-", "").replace("_", "").isalnum():
            raise GuestError(f"disk serial '{serial}': use 1-12 letters, digits, - or _")
        if fs not in ("ext4", "xfs", "none"):
            raise GuestError(f"disk {serial}: filesystem '{fs}' is not one of ext4, xfs, none")
        self.serial, self.fs = serial, fs
        if fmt not in ("qcow2", "raw"):
            raise GuestError(f"disk {serial}: format '{fmt}' is not one of qcow2, raw")
        self.fmt = fmt
        # nbd=(HOST, PORT, EXPORT): the disk is an NBD server's export (made elsewhere, e.g. by a
        # storage VM), opened raw by QEMU's own NBD client; nothing is created here.
        self.nbd = nbd
        # mkfs.xfs refuses filesystems below 300 MiB; images are sparse, so size costs nothing.
        self.size = size or ("320M" if fs == "xfs" else "64M")

    @classmethod
    def parse(cls, spec):
        parts = spec.split(":")
        return cls(parts[0], parts[1] if len(parts) > 1 else "ext4", parts[2] if len(parts) > 2 else None)

    def create(self, image):
        raw = image + ".raw"
        run = lambda *cmd: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        try:
            run("truncate", "-s", self.size, raw)
            if self.fs == "ext4":
                # Initialise everything now: ext4lazyinit writing in the guest would disturb the
                # latencies the tests measure.
                run("mkfs.ext4", "-q", "-F", "-L", self.serial, "-E",
                    "lazy_itable_init=0,lazy_journal_init=0", raw)
            elif self.fs == "xfs":
                run("mkfs.xfs", "-q", "-f", "-L", self.serial, raw)
            if self.fmt == "raw":
                os.rename(raw, image)
            else:
                run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, image)
        finally:
            if os.path.exists(raw):
                os.unlink(raw)


def _set_pdeathsig():
    """In QEMU's child before exec: die with the process that started QEMU."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            env[key] = value.strip('"')
    return env


class Guest:
    def __init__(self, guest_dir, run_dir, agent="qemu-ga", disks=(), workload=None, agent_args=(),
                 memory=512, append="", lifetime=None, fresh=False, console_stdio=False,
                 qemu="qemu-system-x86_64", vsock_cid=None, forwards=()):
        self.guest_dir = os.path.abspath(guest_dir or os.environ.get("SP_GUEST_DIR", ""))
        self.run_dir = os.path.abspath(run_dir)
        self.agent, self.agent_args = agent, list(agent_args)
        self.disks, self.workload_args = list(disks), list(workload or [])
        self.memory, self.append, self.lifetime = memory, append, lifetime
        self.fresh, self.console_stdio, self.qemu = fresh, console_stdio, qemu
        self.vsock_cid = vsock_cid
        # (HOST_PORT, GUEST_PORT) pairs: a user-network card (the guest at GUEST_IP, no other
        # way in or out) with these TCP forwards from 127.0.0.1 on the host.
        self.forwards = list(forwards)
        self.proc = None
        self.boot_to_ping = None
        self._sock_dir = None
        self._timer = None
        self._lock = threading.Lock()
        for name in ("vmlinuz", "initrd.img", "guest.env"):
            if not os.path.exists(os.path.join(self.guest_dir, name)):
                raise GuestError(f"{self.guest_dir}/{name} is missing: run tests/guest/build-guest "
                                 "(or set SP_GUEST_DIR / --guest to its --out directory)")
        env = _read_env(os.path.join(self.guest_dir, "guest.env"))
        self.kernel = os.path.join(self.guest_dir, env.get("KERNEL", "vmlinuz"))
        if agent != "none" and agent not in env.get("AGENTS", "").split():
            raise GuestError(f"the guest in {self.guest_dir} has no agent '{agent}' "
                             f"(it has: {env.get('AGENTS')}); rebuild it with build-guest --agent")
        if self.workload_args and env.get("WORKLOAD") != "yes":
            raise GuestError(f"the guest in {self.guest_dir} has no sp-workload: build-guest --workload")
        os.makedirs(self.run_dir, exist_ok=True)
        self.console = os.path.join(self.run_dir, "console.log")
        sock_dir = self.run_dir
        if len(os.path.join(sock_dir, "workload.sock")) > SOCKET_PATH_MAX:
            sock_dir = self._sock_dir = tempfile.mkdtemp(prefix="spguest-")
        self.qmp_path = os.path.join(sock_dir, "qmp.sock")
        self.qga_path = os.path.join(sock_dir, "qga.sock")
        self.workload_path = os.path.join(sock_dir, "workload.sock")
        self._workload_conn = None
        self._qga_conn = None

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def image(self, serial):
        fmt = next((d.fmt for d in self.disks if d.serial == serial), "qcow2")
        return os.path.join(self.run_dir, f"{serial}.{fmt}")

    def _kernel_cmdline(self):
        ports = [QGA_PORT] + ([WORKLOAD_PORT] if self.workload_args else [])
        # A test VM: skip the crypto self-tests and the speculation mitigations, which cost
        # seconds of boot under TCG.
        args = ["console=ttyS0", "panic=-1", "loglevel=4", "cryptomgr.notests", "mitigations=off",
                f"sp.agent={self.agent}",
                "sp.ports=" + ",".join(ports)]
        if self.disks:
            args.append("sp.disks=" + ",".join(d.serial for d in self.disks))
        if self.agent_args:
            args.append("sp.agent_args=" + ",".join(self.agent_args))
        if self.forwards:
            args.append(f"sp.ip={GUEST_IP}/24")
        if self.workload_args:
            for a in self.workload_args:
                if any(c in a for c in ", \"\t\n"):
                    raise GuestError(f"workload argument '{a}' may not hold a comma, quote or space")
            args.append("sp.workload=" + ",".join(self.workload_args))
        return " ".join(args + ([self.append] if self.append else []))

    def qemu_command(self):
        cmd = [self.qemu, "-accel", "tcg", "-m", str(self.memory), "-smp", "1",
               "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
               "-name", "stillpoint-test-guest",
               "-kernel", self.kernel,
               "-initrd", os.path.join(self.guest_dir, "initrd.img"),
               "-append", self._kernel_cmdline(),
               "-pidfile", os.path.join(self.run_dir, "qemu.pid"),
               "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
               "-device", "virtio-serial-pci,id=vser0",
               "-chardev", f"socket,id=qga0,path={self.qga_path},server=on,wait=off",
               "-device", f"virtserialport,bus=vser0.0,chardev=qga0,name={QGA_PORT}",
               "-chardev", f"socket,id=wl0,path={self.workload_path},server=on,wait=off",
               "-device", f"virtserialport,bus=vser0.0,chardev=wl0,name={WORKLOAD_PORT}"]
        if self.vsock_cid:
            cmd += ["-device", f"vhost-vsock-pci,guest-cid={self.vsock_cid}"]
        cmd += ["-serial", "mon:stdio"] if self.console_stdio else ["-serial", f"file:{self.console}"]
        if self.forwards:
            fwd = ",".join(f"hostfwd=tcp:127.0.0.1:{h}-{GUEST_IP}:{g}" for h, g in self.forwards)
            cmd += ["-nic", f"user,model=virtio-net-pci,restrict=on,{fwd}"]
        for d in self.disks:
            if d.nbd:
                host, port, export = d.nbd
                cmd += ["-blockdev", f"driver=nbd,server.type=inet,server.host={host},"
                                     f"server.port={port},export={export},node-name=file-{d.serial}",
                        "-blockdev", f"driver=raw,file=file-{d.serial},node-name=disk-{d.serial}"]
            else:
                cmd += ["-blockdev", f"driver=file,filename={self.image(d.serial)},node-name=file-{d.serial}",
                        "-blockdev", f"driver={d.fmt},file=file-{d.serial},node-name=disk-{d.serial}"]
            cmd += ["-device", f"virtio-blk-pci,drive=disk-{d.serial},serial={d.serial},id=vd-{d.serial}"]
        return cmd

    def launch(self):
        """Creates the disks and starts QEMU; does not wait for the guest."""
        for d in self.disks:
            path = self.image(d.serial)
            if d.nbd:
                continue
            if self.fresh or not os.path.exists(path):
                if os.path.exists(path):
                    os.unlink(path)
                d.create(path)
        for path in (self.qmp_path, self.qga_path, self.workload_path, self.console):
            if os.path.exists(path):
                os.unlink(path)
        atexit.register(self.stop)
        self.t_launch = time.monotonic()
        self.proc = subprocess.Popen(self.qemu_command(), start_new_session=True,
                                     preexec_fn=_set_pdeathsig,
                                     stdin=None if self.console_stdio else subprocess.DEVNULL,
                                     stdout=None if self.console_stdio else subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.run_dir, "qemu.log"), "w"))
        if self.lifetime:
            self._timer = threading.Timer(self.lifetime, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self):
        sys.stderr.write(f"spguest: VM lifetime of {self.lifetime} s is over, killing QEMU\n")
        self.kill()

    def console_tail(self, lines=40):
        return file_tail(self.console, lines)

    def _check_alive(self, what):
        if self.proc and self.proc.poll() is not None:
            try:
                with open(os.path.join(self.run_dir, "qemu.log")) as f:
                    qemu_log = f.read()[-2000:]
            except OSError:
                qemu_log = ""
            raise GuestError(f"QEMU exited with status {self.proc.returncode} while {what}\n"
                             f"qemu.log:\n{qemu_log}\nconsole.log (end):\n{self.console_tail()}")

    def wait_ready(self, timeout=60.0):
        """Waits until the agent answers guest-ping; returns the seconds since launch."""
        try:
            # Keep the connection that saw the ping: no hang-up and reconnect right after boot.
            self._qga_conn = wait_for_agent(self.qga_path, time.monotonic() + timeout,
                                            lambda: self._check_alive("booting"))
        except TimeoutError:
            raise GuestError(f"the agent did not answer guest-ping within {timeout:.0f} s\n"
                             f"console.log (end):\n{self.console_tail()}") from None
        self.boot_to_ping = time.monotonic() - self.t_launch
        return self.boot_to_ping

    def start(self, boot_timeout=60.0):
        try:
            self.launch()
            self.wait_ready(boot_timeout)
        except BaseException:
            self.stop()
            raise

    def kill(self):
        with self._lock:
            if self.proc and self.proc.poll() is None:
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(self.proc.pid, sig)
                    except ProcessLookupError:
                        break
                    try:
                        self.proc.wait(timeout=5)
                        break
                    except subprocess.TimeoutExpired:
                        continue

    def stop(self):
        """QMP quit (QEMU flushes and closes the images), then SIGTERM, then SIGKILL."""
        if self._timer:
            self._timer.cancel()
        if self._workload_conn:
            self._workload_conn.close()
            self._workload_conn = None
        self.qga_disconnect()
        if self.proc and self.proc.poll() is None:
            try:
                q = QmpClient(self.qmp_path, timeout=5)
                q.execute("quit", timeout=5)
                q.close()
                self.proc.wait(timeout=10)
            except (OSError, GuestError, ValueError, subprocess.TimeoutExpired):
                pass
        self.kill()
        if self._sock_dir:
            shutil.rmtree(self._sock_dir, ignore_errors=True)
            self._sock_dir = None
        try:
            os.unlink(os.path.join(self.run_dir, "qemu.pid"))
        except OSError:
            pass

    # -- talking to the guest --------------------------------------------------------------------

    def qga(self, command, arguments=None, timeout=60.0):
        """One agent command; returns its "return" or raises QgaError. The connection stays open
        between commands: stillpoint-agent thaws when the channel that froze hangs up."""
        self._check_alive(f"running {command}")
        for attempt in (1, 2):
            if self._qga_conn:
                break
            client = QgaClient(self.qga_path)
            if client.sync(timeout=10):
                self._qga_conn = client
                break
            client.close()
            sys.stderr.write(f"spguest: no answer to guest-sync-delimited before {command} "
                             f"(connection {attempt} of 2)\n")
        else:
            raise GuestError(f"the agent did not answer guest-sync-delimited before {command}\n"
                             f"console.log (end):\n{self.console_tail()}")
        try:
            return self._qga_conn.execute(command, arguments, timeout)
        except (OSError, ValueError, TimeoutError):
            self.qga_disconnect()  # the stream may hold a late answer: resync on the next command
            raise

    def qga_disconnect(self):
        """Hangs up the agent channel, e.g. to let another client (the stillpoint CLI) use it:
        QEMU serves one client at a time."""
        if self._qga_conn:
            self._qga_conn.close()
            self._qga_conn = None

    def qmp(self, command, arguments=None, timeout=30.0):
        client = QmpClient(self.qmp_path)
        try:
            return client.execute(command, arguments, timeout)
        finally:
            client.close()

    def workload(self, line, timeout=90.0):
        """One sp-workload control command (report, wait N [MS], latencies, stop, check)."""
        self._check_alive(f"sending '{line}' to the workload")
        if not self._workload_conn:
            self._workload_conn = WorkloadClient(self.workload_path)
        return self._workload_conn.command(line, timeout)

    def info(self):
        return {"pid": self.proc.pid if self.proc else None, "qmp": self.qmp_path,
                "qga": self.qga_path, "workload": self.workload_path, "console": self.console,
                "boot_to_ping_s": round(self.boot_to_ping, 2) if self.boot_to_ping else None,
                "disks": {d.serial: {"image": self.image(d.serial), "node": f"disk-{d.serial}",
                                     "file_node": f"file-{d.serial}", "device": f"vd-{d.serial}",
                                     "fs": d.fs, "mountpoint": f"/mnt/{d.serial}"}
                          for d in self.disks}}


def wait_for_agent(qga_path, deadline, check_alive):
    """Returns a QgaClient once the agent at qga_path answered guest-ping on it; raises
    TimeoutError at deadline. check_alive() raises when the VM died, so a crash is reported at
    once, not at the deadline."""
    while True:
        check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError("no guest-ping")
        try:
            client = QgaClient(qga_path)
        except (FileNotFoundError, ConnectionRefusedError):
            # QEMU creates the socket a moment after it starts; nothing to wait on but time.
            time.sleep(0.05)
            continue
        try:
            # Each try sends a fresh sync id; what the guest missed while booting stays queued
            # and is skipped by the id check.
            while time.monotonic() < deadline:
                check_alive()
                if client.sync(timeout=1.0):
                    client.execute("guest-ping", timeout=10)
                    return client
        except (ConnectionError, OSError, TimeoutError):
            pass
        client.close()


class WorkloadClient:
    """sp-workload's control port: one line in, one JSON line out."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""

    def close(self):
        self.sock.close()

    def command(self, line, timeout=90.0):
        self.sock.sendall(line.encode() + b"\n")
        answer, self.buf = _read_line(self.sock, self.buf, time.monotonic() + timeout)
        return json.loads(answer)


def test_arguments(doc):
    """The command line every guest test script (tests/e2e, tests/faults) starts from."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    for name in ("--guest", "--run-dir", "--stillpoint", "--workload-bin"):
        p.add_argument(name, required=True)
    return p


def check_image(image, path, workload_bin, expect=None, record_size=None):
    """Checks sp-workload's record file PATH inside an ext4 image without mounting it: converts
    the image to a scratch raw file, replays the journal with e2fsck (what a mount would do),
    extracts the file with debugfs and runs `sp-workload check`. Returns its JSON."""
    with tempfile.TemporaryDirectory(prefix="spguest-check-") as tmp:
        raw, out = os.path.join(tmp, "disk.raw"), os.path.join(tmp, "records")
        # -U: also readable while a QEMU still holds the image (then it is crash-consistent).
        subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", image, raw], check=True)
        fsck = subprocess.run(["e2fsck", "-fy", raw], capture_output=True, text=True)
        if fsck.returncode >= 4:
            raise GuestError(f"e2fsck {image}: status {fsck.returncode}\n{fsck.stdout}{fsck.stderr}")
        dump = subprocess.run(["debugfs", "-R", f"dump -p {path} {out}", raw],
                              capture_output=True, text=True)
        if not os.path.exists(out):
            raise GuestError(f"debugfs could not extract {path} from {image}: {dump.stderr.strip()}")
        cmd = [workload_bin, "check"] + (["--expect", str(expect)] if expect else []) \
            + (["--record-size", str(record_size)] if record_size else []) + [out]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode not in (0, 1):
            raise GuestError(f"sp-workload check failed: {result.stderr.strip()}")
        report = json.loads(result.stdout)
        report["file"] = path
        report["fsck_status"] = fsck.returncode
        return report


# -- command line --------------------------------------------------------------------------------

def _boot_options(p):
    p.add_argument("--guest", default=os.environ.get("SP_GUEST_DIR"))
    p.add_argument("--dir", required=True)
    p.add_argument("--agent", default="qemu-ga", choices=["qemu-ga", "stillpoint", "none"])
    p.add_argument("--agent-arg", action="append", default=[])
    p.add_argument("--disk", action="append", default=[])
    p.add_argument("--fresh", action="store_true")
    p.add_argument("--workload")
    p.add_argument("--memory", type=int, default=512)
    p.add_argument("--boot-timeout", type=float, default=60.0)
    p.add_argument("--lifetime", type=float)
    p.add_argument("--append", default="")
    p.add_argument("--console-stdio", action="store_true")
    p.add_argument("--vsock", type=int)


def _guest_from_args(a, lifetime):
    return Guest(a.guest, a.dir, agent=a.agent, disks=[Disk.parse(s) for s in a.disk],
                 workload=a.workload.split(",") if a.workload else None, agent_args=a.agent_arg,
                 memory=a.memory, append=a.append, lifetime=lifetime, fresh=a.fresh,
                 console_stdio=a.console_stdio, vsock_cid=a.vsock)


def _write_info(guest, extra=None):
    info = guest.info()
    info.update(extra or {})
    tmp = os.path.join(guest.run_dir, "info.json.tmp")
    with open(tmp, "w") as f:
        json.dump(info, f, indent=1)
    os.replace(tmp, os.path.join(guest.run_dir, "info.json"))
    return info


def _on_signal_exit(signum, frame):
    sys.exit(128 + signum)  # runs atexit handlers, which stop the VM


def cmd_boot(a):
    signal.signal(signal.SIGTERM, _on_signal_exit)
    guest = _guest_from_args(a, a.lifetime)
    guest.start(a.boot_timeout)
    print(json.dumps(_write_info(guest), indent=1), flush=True)
    try:
        guest.proc.wait()
    except KeyboardInterrupt:
        pass
    guest.stop()
    return 0


def cmd_supervise(a):
    """The detached parent of a `start`ed QEMU: QEMU dies with it (PDEATHSIG), it stops QEMU on
    SIGTERM, and it kills QEMU when the lifetime is over."""
    signal.signal(signal.SIGTERM, _on_signal_exit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    guest = _guest_from_args(a, a.lifetime or 1800)
    with open(os.path.join(guest.run_dir, "supervisor.pid"), "w") as f:
        f.write(f"{os.getpid()}\n")
    guest.launch()
    _write_info(guest, {"supervisor": os.getpid()})
    guest.proc.wait()
    guest.stop()
    return 0


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def cmd_start(a):
    run_dir = os.path.abspath(a.dir)
    os.makedirs(run_dir, exist_ok=True)
    for name in ("info.json", "supervisor.pid"):
        if os.path.exists(os.path.join(run_dir, name)):
            old = _read_pid(os.path.join(run_dir, "supervisor.pid"))
            if old and _pid_alive(old):
                raise GuestError(f"a guest already runs in {run_dir} (supervisor {old}): "
                                 f"spguest.py stop --dir {run_dir}")
            os.unlink(os.path.join(run_dir, name))
    argv = [sys.executable, os.path.abspath(__file__), "_supervise"] + sys.argv[2:]
    t0 = time.monotonic()
    with open(os.path.join(run_dir, "supervisor.log"), "w") as log:
        sup = subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL,
                               stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + a.boot_timeout
        while not os.path.exists(os.path.join(run_dir, "info.json")):
            if sup.poll() is not None or time.monotonic() > deadline:
                with open(os.path.join(run_dir, "supervisor.log")) as f:
                    raise GuestError(f"the supervisor did not start QEMU:\n{f.read()[-2000:]}")
            time.sleep(0.05)
        with open(os.path.join(run_dir, "info.json")) as f:
            info = json.load(f)
        def check_alive():
            if sup.poll() is not None:
                with open(os.path.join(run_dir, "supervisor.log")) as f:
                    raise GuestError(f"the VM stopped while booting:\n{f.read()[-2000:]}")
        try:
            wait_for_agent(info["qga"], deadline, check_alive).close()  # the port is the caller's
        except TimeoutError:
            raise GuestError(f"the agent did not answer guest-ping within {a.boot_timeout:.0f} s; "
                             f"see {info['console']}") from None
        info["supervisor"] = sup.pid
        info["boot_to_ping_s"] = round(time.monotonic() - t0, 2)
        tmp = os.path.join(run_dir, "info.json.tmp")
        with open(tmp, "w") as f:
            json.dump(info, f, indent=1)
        os.replace(tmp, os.path.join(run_dir, "info.json"))
    except BaseException:
        _stop_supervised(run_dir, sup.pid)
        raise
    print(json.dumps(info, indent=1), flush=True)
    return 0


def _stop_supervised(run_dir, sup_pid):
    if sup_pid and _pid_alive(sup_pid):
        os.kill(sup_pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _pid_alive(sup_pid) and time.monotonic() < deadline:
            try:
                os.waitpid(sup_pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
        if _pid_alive(sup_pid):
            os.kill(sup_pid, signal.SIGKILL)  # QEMU follows through PR_SET_PDEATHSIG
    qemu_pid = _read_pid(os.path.join(run_dir, "qemu.pid"))
    if qemu_pid and _pid_alive(qemu_pid):
        os.kill(qemu_pid, signal.SIGKILL)
    for name in ("supervisor.pid", "qemu.pid"):
        try:
            os.unlink(os.path.join(run_dir, name))
        except OSError:
            pass


def cmd_stop(a):
    run_dir = os.path.abspath(a.dir)
    _stop_supervised(run_dir, _read_pid(os.path.join(run_dir, "supervisor.pid")))
    return 0


def _info(run_dir):
    try:
        with open(os.path.join(run_dir, "info.json")) as f:
            return json.load(f)
    except OSError:
        raise GuestError(f"no guest in {run_dir} (no info.json): start one with spguest.py start")


def cmd_qga(a):
    info = _info(a.dir)
    msg = json.loads(a.json) if a.json.lstrip().startswith("{") else {"execute": a.json}
    client = QgaClient(info["qga"])
    try:
        if not client.sync(timeout=10):
            raise GuestError("the agent did not answer guest-sync-delimited")
        try:
            print(json.dumps(client.execute(msg["execute"], msg.get("arguments"), a.timeout)))
        except QgaError as e:
            print(json.dumps({"error": {"class": e.cls, "desc": e.desc}}))
            return 1
    finally:
        client.close()
    return 0


def cmd_workload(a):
    client = WorkloadClient(_info(a.dir)["workload"])
    try:
        print(json.dumps(client.command(a.line, a.timeout)))
    finally:
        client.close()
    return 0


def cmd_check_image(a):
    report = check_image(a.image, a.file, a.workload, a.expect, a.record_size)
    print(json.dumps(report))
    return 0 if report.get("ok") else 1


def main(argv):
    p = argparse.ArgumentParser(prog="spguest.py", description="Boot and drive the stillpoint test guest.")
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("boot", "start", "_supervise"):
        _boot_options(sub.add_parser(name))
    sub.add_parser("stop").add_argument("--dir", required=True)
    q = sub.add_parser("qga")
    q.add_argument("--dir", required=True)
    q.add_argument("--timeout", type=float, default=60.0)
    q.add_argument("json")
    w = sub.add_parser("workload")
    w.add_argument("--dir", required=True)
    w.add_argument("--timeout", type=float, default=90.0)
    w.add_argument("line")
    c = sub.add_parser("check-image")
    c.add_argument("image")
    c.add_argument("--file", required=True)
    c.add_argument("--workload", default="sp-workload")
    c.add_argument("--expect", type=int)
    c.add_argument("--record-size", type=int)
    a = p.parse_args(argv)
    handlers = {"boot": cmd_boot, "start": cmd_start, "_supervise": cmd_supervise, "stop": cmd_stop,
                "qga": cmd_qga, "workload": cmd_workload, "check-image": cmd_check_image}
    try:
        return handlers[a.command](a)
    except GuestError as e:
        print(f"spguest: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
