#!/usr/bin/python3
"""spdistro: boots the Debian 12 guest of the distro/* tests (tests/distro/build-distro) under
QEMU TCG, the way tests/guest/spguest.py boots the test guest, whose Debian kernel and initramfs
it uses: the initramfs loads the modules, mounts the disk with serial "root" and hands over to
systemd (sp.root=root). udev starts stillpoint-agent when the guest agent port appears.

  from spdistro import DistroGuest
  with DistroGuest(guest_dir, distro_dir, run_dir) as g:     # a fresh layer over the image
      g.sh("systemctl is-active stillpoint-agent")           # (status, stdout, stderr)
      g.qga("guest-ping"); g.qmp("query-block")

Commands run in the guest through the agent's port: guest-exec, which stillpoint-agent forwards
to the stock qemu-ga beside it (the image's agent.conf allows it: allow-exec=true).
QEMU names: the root disk is format node "disk-root" on "file-root", device "vd-root"
(virtio-blk-pci, serial=root); the agent port is device "qga-port" on chardev "qga0", the
workload port (org.stillpoint.workload.0) device "workload-port" on chardev "wl0"."""
import base64
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guest"))
from spguest import QGA_PORT, WORKLOAD_PORT, Guest, GuestError, _read_env  # noqa: E402,F401


class DistroGuest(Guest):
    def __init__(self, guest_dir, distro_dir, run_dir, root_image=None, memory=768, **kw):
        super().__init__(guest_dir, run_dir, agent="none", memory=memory, **kw)
        env = _read_env(os.path.join(distro_dir, "distro.env"))
        self.base_image = env["IMAGE"]
        # root_image: boot this image itself (e.g. a checkpoint's export); else a fresh layer
        # over the built image, created at launch.
        self.root_image = root_image or os.path.join(self.run_dir, "root.qcow2")
        self.own_layer = root_image is None

    def _kernel_cmdline(self):
        return ("console=ttyS0 panic=-1 loglevel=4 cryptomgr.notests mitigations=off "
                "sp.root=root systemd.show_status=auto")

    def qemu_command(self):
        return [self.qemu, "-accel", "tcg", "-m", str(self.memory), "-smp", "1",
                "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-name", "stillpoint-distro-guest",
                "-kernel", self.kernel,
                "-initrd", os.path.join(self.guest_dir, "initrd.img"),
                "-append", self._kernel_cmdline(),
                "-pidfile", os.path.join(self.run_dir, "qemu.pid"),
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                "-serial", f"file:{self.console}",
                "-device", "virtio-serial-pci,id=vser0",
                "-chardev", f"socket,id=qga0,path={self.qga_path},server=on,wait=off",
                "-device", f"virtserialport,bus=vser0.0,chardev=qga0,name={QGA_PORT},id=qga-port",
                "-chardev", f"socket,id=wl0,path={self.workload_path},server=on,wait=off",
                "-device", f"virtserialport,bus=vser0.0,chardev=wl0,name={WORKLOAD_PORT},"
                           "id=workload-port",
                "-blockdev", f"driver=file,filename={self.root_image},node-name=file-root",
                "-blockdev", "driver=qcow2,file=file-root,node-name=disk-root",
                "-device", "virtio-blk-pci,drive=disk-root,serial=root,id=vd-root"]

    def launch(self):
        if self.own_layer:
            if os.path.exists(self.root_image):
                os.unlink(self.root_image)
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
                            "-b", self.base_image, self.root_image], check=True)
        super().launch()

    def start(self, boot_timeout=180.0):
        super().start(boot_timeout)

    def sh(self, command, timeout=60.0, check=False):
        """Runs `sh -c COMMAND` in the guest (guest-exec through the agent); returns (status,
        stdout, stderr). check: raise GuestError unless it exits 0."""
        pid = self.qga("guest-exec", {"path": "/bin/sh", "arg": ["-c", command],
                                      "capture-output": True})["pid"]
        deadline = time.monotonic() + timeout
        while True:
            st = self.qga("guest-exec-status", {"pid": pid})
            if st.get("exited"):
                break
            if time.monotonic() > deadline:
                raise GuestError(f"guest command did not finish within {timeout:.0f} s: {command}")
            time.sleep(0.2)
        out = base64.b64decode(st.get("out-data", "")).decode(errors="replace")
        err = base64.b64decode(st.get("err-data", "")).decode(errors="replace")
        status = st.get("exitcode", -st.get("signal", 1))
        if check and status != 0:
            raise GuestError(f"guest command failed ({status}): {command}\n{out}{err}")
        return status, out, err

    def wait_for(self, command, what, timeout=60.0):
        """Polls a guest command until it exits 0; returns its stdout."""
        deadline = time.monotonic() + timeout
        while True:
            status, out, err = self.sh(command)
            if status == 0:
                return out
            if time.monotonic() > deadline:
                raise GuestError(f"{what}: still not after {timeout:.0f} s ({command}: {out}{err})")
            time.sleep(1)
