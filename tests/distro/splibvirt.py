#!/usr/bin/python3
"""splibvirt: the Debian guest of the distro/* tests as a libvirt domain, for distro/libvirt.

A private session libvirtd (its own XDG directories in a temporary directory, started here and
stopped by its pid; as root, it and virsh run as nobody, as tests/e2e/libvirt.sh does) runs a
persistent QEMU TCG domain booting the image the way spdistro.py does (machine pc with ACPI, or
the guest halts instead of powering off; direct kernel boot with the test guest's kernel and
initramfs; root disk with serial "root"), with libvirt's own guest-agent channel
org.qemu.guest_agent.0 and a user-mode network card (libvirt's <interface type='user'>: QEMU's
DHCP server gives the guest 10.0.2.15).

  with LibvirtDomain(guest_dir, distro_dir, run_dir) as d:
      d.virsh("domtime", d.name)                    # stdout; raises LibvirtError on failure
      d.qga("guest-get-host-name")                  # virsh qemu-agent-command
      d.sh("journalctl -u stillpoint-agent")        # guest-exec through the agent, as spdistro
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spdistro import DistroGuest, GuestError  # noqa: E402

NOBODY = 65534
MAC = "52:54:00:53:50:01"


class LibvirtError(GuestError):
    pass


class LibvirtDomain:
    name = "spd"  # short: libvirt puts the channel's socket under a path with it

    def __init__(self, guest_dir, distro_dir, run_dir, memory=768):
        # The kernel, initramfs, command line and image come from spdistro's guest, never booted.
        self.spec = DistroGuest(guest_dir, distro_dir, run_dir)
        if self.spec._sock_dir:  # its sockets' directory, made for a long run_dir: unused here
            shutil.rmtree(self.spec._sock_dir, ignore_errors=True)
        self.memory = memory
        self.tmp = None
        self.daemon = None
        self.defined = False

    # -- the session daemon ----------------------------------------------------------------------

    def _env(self):
        t = self.tmp
        return dict(os.environ, HOME=t, XDG_CONFIG_HOME=f"{t}/config", XDG_CACHE_HOME=f"{t}/cache",
                    XDG_RUNTIME_DIR=f"{t}/run", XDG_DATA_HOME=f"{t}/data")

    def _as(self):
        # Root's libvirtd is the system daemon; an unprivileged user gets a session daemon.
        if os.getuid() == 0:
            return {"user": NOBODY, "group": NOBODY, "extra_groups": []}
        return {}

    def run(self, *argv, timeout=60, check=True):
        r = subprocess.run(list(argv), capture_output=True, text=True, env=self._env(),
                           timeout=timeout, **self._as())
        if check and r.returncode != 0:
            raise LibvirtError(f"{' '.join(argv)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    def virsh(self, *args, timeout=60, check=True, quiet=True):
        """quiet=False: with virsh's messages ("Froze 1 filesystem(s)"), which -q leaves out."""
        return self.run("virsh", *(["-q"] if quiet else []), "-c", "qemu:///session", *args,
                        timeout=timeout, check=check).stdout

    def _start_daemon(self):
        # /tmp: libvirt puts sockets under XDG_CONFIG_HOME and XDG_RUNTIME_DIR (108 bytes).
        self.tmp = tempfile.mkdtemp(prefix="spv-")
        for sub in ("", "config", "cache", "run", "data"):
            os.makedirs(os.path.join(self.tmp, sub), mode=0o700, exist_ok=True)
            if os.getuid() == 0:
                os.chown(os.path.join(self.tmp, sub), NOBODY, NOBODY)
        self.daemon_log = open(os.path.join(self.tmp, "libvirtd.log"), "w")
        self.daemon = subprocess.Popen(["libvirtd", "--timeout", "600"], env=self._env(),
                                       stdout=self.daemon_log, stderr=subprocess.STDOUT,
                                       **self._as())
        deadline = time.monotonic() + 20
        while self.run("virsh", "-c", "qemu:///session", "version", check=False).returncode != 0:
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                raise LibvirtError(f"the session libvirtd did not answer:\n{self.daemon_tail()}")
            time.sleep(0.1)

    def daemon_tail(self, lines=20):
        with open(os.path.join(self.tmp, "libvirtd.log"), errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    # -- the domain ------------------------------------------------------------------------------

    @property
    def console(self):
        return os.path.join(self.tmp, "console.log")

    @property
    def root_image(self):
        return os.path.join(self.tmp, "root.qcow2")

    def domain_xml(self):
        s = self.spec
        return f"""<domain type='qemu'>
  <name>{self.name}</name>
  <memory unit='MiB'>{self.memory}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{s.kernel}</kernel>
    <initrd>{os.path.join(s.guest_dir, "initrd.img")}</initrd>
    <cmdline>{s._kernel_cmdline()}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{self.root_image}'/>
      <target dev='vda' bus='virtio'/>
      <serial>root</serial>
    </disk>
    <interface type='user'>
      <mac address='{MAC}'/>
      <model type='virtio'/>
    </interface>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <serial type='file'><source path='{self.console}'/></serial>
  </devices>
</domain>
"""

    def start(self):
        self._start_daemon()
        # A fresh layer over the built image, owned by the daemon's user, as spdistro's.
        self.run("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
                 "-b", self.spec.base_image, self.root_image)
        xml = os.path.join(self.tmp, "domain.xml")
        with open(xml, "w") as f:
            f.write(self.domain_xml())
        self.virsh("define", xml)
        self.defined = True
        self.virsh("start", self.name)

    def state(self):
        return self.virsh("domstate", self.name).strip()

    def wait_agent(self, timeout=180):
        """Until the agent answers through libvirt's channel and qemu-ga beside it answers a
        forwarded command."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.qga("guest-get-host-name", timeout=10)["host-name"]
            except (LibvirtError, subprocess.TimeoutExpired) as e:
                if time.monotonic() > deadline:
                    raise LibvirtError(f"no agent answered within {timeout} s ({e})\n"
                                       f"{self.console_tail()}")
                if self.state() != "running":
                    raise LibvirtError(f"the domain is {self.state()}\n{self.console_tail()}")
                time.sleep(1)

    def qga(self, command, arguments=None, timeout=60):
        req = {"execute": command}
        if arguments is not None:
            req["arguments"] = arguments
        out = self.virsh("qemu-agent-command", self.name, "--timeout", str(int(timeout)),
                         json.dumps(req), timeout=timeout + 10)
        return json.loads(out)["return"]

    # guest-exec through the agent (forwarded to qemu-ga; the image allows it), as spdistro.
    sh = DistroGuest.sh
    wait_for = DistroGuest.wait_for

    def console_tail(self, lines=30):
        try:
            with open(self.console, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.daemon is not None:
            if self.defined:
                self.virsh("destroy", self.name, check=False)
                self.virsh("undefine", self.name, "--snapshots-metadata", check=False)
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
            self.daemon_log.close()
            self.daemon = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            print(f"# console:\n{self.console_tail()}# libvirtd:\n{self.daemon_tail()}", flush=True)
        self.stop()
