#!/usr/bin/python3
"""check-debs: checks the Debian packages scripts/package built.

  check-debs.py lintian DEB_DIR    lintian on stillpoint-agent and stillpoint: fails on any error
                                   or warning (reviewed warnings are overridden, with a reason, in
                                   debian/*.lintian-overrides)
  check-debs.py contents DEB_DIR   each package holds what it must (units, rules, policies, the
                                   bus activation file, man pages, sysusers/tmpfiles), the agent's
                                   configuration is a conffile, and no binary has a sanitizer or
                                   a test switch in it
"""
import glob
import os
import subprocess
import sys
import tempfile

PACKAGES = ("stillpoint-agent", "stillpoint")
EXPECTED = {
    "stillpoint-agent": [
        "usr/sbin/stillpoint-agent",
        "usr/libexec/stillpoint/sp-example-writer",
        "lib/systemd/system/stillpoint-agent.service",
        "lib/systemd/system/qemu-guest-agent.service.d/stillpoint-agent.conf",
        "lib/udev/rules.d/60-stillpoint-agent.rules",
        "usr/share/dbus-1/system.d/org.stillpoint.Agent1.conf",
        "usr/share/dbus-1/interfaces/org.stillpoint.Agent1.xml",
        "usr/lib/sysusers.d/stillpoint-agent.conf",
        "usr/share/man/man8/stillpoint-agent.8.gz",
        "etc/stillpoint/agent.conf",
        "etc/stillpoint/fsfreeze-hook.d",
        "usr/share/doc/stillpoint-agent/copyright",
    ],
    "stillpoint": [
        "usr/bin/stillpoint",
        "usr/sbin/stillpointd",
        "lib/systemd/system/stillpointd.service",
        "usr/share/dbus-1/system.d/org.stillpoint.Coordinator1.conf",
        "usr/share/dbus-1/system-services/org.stillpoint.Coordinator1.service",
        "usr/share/dbus-1/interfaces/org.stillpoint.Coordinator1.xml",
        "usr/share/polkit-1/actions/org.stillpoint.policy",
        "usr/share/doc/stillpoint/examples/50-stillpoint-backup.rules",
        "usr/lib/sysusers.d/stillpoint.conf",
        "usr/lib/tmpfiles.d/stillpoint.conf",
        "usr/share/man/man1/stillpoint.1.gz",
        "usr/share/bash-completion/completions/stillpoint",
        "usr/share/man/man8/stillpointd.8.gz",
        "usr/share/cockpit/stillpoint/manifest.json",
        "usr/share/cockpit/stillpoint/index.html",
        "usr/share/cockpit/stillpoint/stillpoint.js",
        "usr/share/cockpit/stillpoint/stillpoint.css",
        "usr/share/doc/stillpoint/copyright",
    ],
}
CONFFILES = {"stillpoint-agent": ["/etc/stillpoint/agent.conf"], "stillpoint": []}
BINARIES = {"stillpoint-agent": ["usr/sbin/stillpoint-agent", "usr/libexec/stillpoint/sp-example-writer"],
            "stillpoint": ["usr/bin/stillpoint", "usr/sbin/stillpointd"]}
SANITIZER_MARKS = (b"__asan_init", b"__ubsan_handle", b"__sanitizer_")
# The suite's switches (SP_TEST_HOOKS builds only): the fault injection variables, and the
# example writer's misbehaviour options and stillpointd's rules-file authority (their names as C
# strings, as GOptionEntry holds them).
TEST_SWITCH_MARKS = (b"STILLPOINT_TEST_", b"\0fail-in\0", b"\0exit-in\0", b"\0delay-in\0",
                     b"\0rules\0")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sptest import Problems  # noqa: E402

problems = Problems()
fail = problems.fail


def deb_of(deb_dir, package):
    debs = glob.glob(os.path.join(deb_dir, f"{package}_*.deb"))
    if len(debs) != 1:
        raise SystemExit(f"check-debs: expected one {package}_*.deb in {deb_dir}, found {debs}: "
                         "run scripts/package (ctest: package/build)")
    return debs[0]


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=500)


def check_lintian(deb_dir):
    debs = [deb_of(deb_dir, p) for p in PACKAGES]
    # Not --show-overrides: with it, lintian 2.116 exits 2 on an overridden tag.
    r = run(["lintian", "--fail-on", "error,warning", "--info"] + debs)
    print(r.stdout)
    if r.returncode != 0:
        fail(f"lintian found errors or warnings (exit {r.returncode}); fix them, or override a "
             "warning that is right in debian/PACKAGE.lintian-overrides with the reason")


def check_contents(deb_dir):
    for package in PACKAGES:
        deb = deb_of(deb_dir, package)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg-deb", "-x", deb, tmp], check=True)
            subprocess.run(["dpkg-deb", "-e", deb, os.path.join(tmp, "DEBIAN")], check=True)
            for path in EXPECTED[package]:
                if not os.path.lexists(os.path.join(tmp, path)):
                    fail(f"{package}: /{path} is missing")
            try:
                with open(os.path.join(tmp, "DEBIAN", "conffiles")) as f:
                    conffiles = f.read().split()
            except FileNotFoundError:
                conffiles = []
            if sorted(conffiles) != sorted(CONFFILES[package]):
                fail(f"{package}: conffiles are {conffiles}, expected {CONFFILES[package]}")
            for path in BINARIES[package]:
                with open(os.path.join(tmp, path), "rb") as f:
                    data = f.read()
                marks = [m.decode() for m in SANITIZER_MARKS if m in data]
                if marks:
                    fail(f"{package}: /{path} is built with a sanitizer ({', '.join(marks)})")
                marks = [m.strip(b"\0").decode() for m in TEST_SWITCH_MARKS if m in data]
                if marks:
                    fail(f"{package}: /{path} holds test switches ({', '.join(marks)}): "
                         "built with SP_TEST_HOOKS?")
        print(f"{package}: {len(EXPECTED[package])} paths and conffiles checked")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("lintian", "contents"):
        sys.stderr.write(__doc__)
        return 2
    (check_lintian if sys.argv[1] == "lintian" else check_contents)(sys.argv[2])
    return problems.status()


if __name__ == "__main__":
    sys.exit(main())
