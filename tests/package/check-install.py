#!/usr/bin/python3
"""check-install: `cmake --install` of a build tree into a DESTDIR puts every file where the
system's services look for it, whatever the install prefix (default /usr/local):

  - systemd units, udev rules, polkit actions, D-Bus policies, activation files and interface
    definitions, sysusers.d and tmpfiles.d files: in the directories the services' own
    pkg-config files name (asked here of pkg-config, not of CMake), and nowhere else;
  - programs under the prefix, and the units and the activation file start them from there;
  - the agent's configuration under the prefix's sysconfdir, which is the path the agent reads
    by default (its --help says so).

  check-install.py --build DIR --prefix PREFIX --sysconfdir DIR --agent STILLPOINT-AGENT
"""
import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sptest import Problems  # noqa: E402

problems = Problems()
fail = problems.fail


def pkg_var(module, variable):
    r = subprocess.run(["pkg-config", f"--variable={variable}", module], stdout=subprocess.PIPE,
                       text=True)
    if r.returncode != 0 or not r.stdout.strip():
        raise SystemExit(f"check-install: pkg-config has no {variable} for {module}")
    return r.stdout.strip()


def system_dirs():
    """{kind: the directory its service reads}, from pkg-config."""
    dbus_data = pkg_var("dbus-1", "datadir")
    return {
        "systemd units": pkg_var("systemd", "systemdsystemunitdir"),
        "sysusers.d": pkg_var("systemd", "sysusersdir"),
        "tmpfiles.d": pkg_var("systemd", "tmpfilesdir"),
        "udev rules": pkg_var("udev", "udevdir") + "/rules.d",
        "polkit actions": pkg_var("polkit-gobject-1", "policydir"),
        "D-Bus system policies": dbus_data + "/dbus-1/system.d",
        "D-Bus activation": pkg_var("dbus-1", "system_bus_services_dir"),
        "D-Bus interfaces": pkg_var("dbus-1", "interfaces_dir"),
        "bash completions": pkg_var("bash-completion", "completionsdir"),
    }


# Which kind a file is, by the tail of its directory (wherever it was put).
KINDS = [("systemd units", "/systemd/system"), ("sysusers.d", "/sysusers.d"),
         ("tmpfiles.d", "/tmpfiles.d"), ("udev rules", "/udev/rules.d"),
         ("polkit actions", "/polkit-1/actions"), ("D-Bus system policies", "/dbus-1/system.d"),
         ("D-Bus activation", "/dbus-1/system-services"),
         ("D-Bus interfaces", "/dbus-1/interfaces"),
         ("bash completions", "/bash-completion/completions")]

EXPECTED = {
    "systemd units": ["stillpoint-agent.service", "stillpointd.service",
                      "qemu-guest-agent.service.d/stillpoint-agent.conf"],
    "sysusers.d": ["stillpoint-agent.conf", "stillpoint.conf"],
    "tmpfiles.d": ["stillpoint.conf"],
    "udev rules": ["60-stillpoint-agent.rules"],
    "polkit actions": ["org.stillpoint.policy"],
    "D-Bus system policies": ["org.stillpoint.Agent1.conf", "org.stillpoint.Coordinator1.conf"],
    "D-Bus activation": ["org.stillpoint.Coordinator1.service"],
    "D-Bus interfaces": ["org.stillpoint.Agent1.xml", "org.stillpoint.Coordinator1.xml"],
    "bash completions": ["stillpoint"],
}


def installed_files(root):
    for dirpath, _, files in os.walk(root):
        for name in files:
            yield "/" + os.path.relpath(os.path.join(dirpath, name), root)


def read(root, path):
    with open(root + path) as f:
        return f.read()


def check_services(root, files, dirs):
    for path in files:
        for kind, tail in KINDS:
            if os.path.dirname(path).endswith(tail) and os.path.dirname(path) != dirs[kind]:
                fail(f"{path}: installed where nothing reads {kind} (the system's directory is "
                     f"{dirs[kind]})")
    for kind, names in EXPECTED.items():
        for name in names:
            if os.path.join(dirs[kind], name) not in files:
                fail(f"{kind}: {name} is not installed in {dirs[kind]}")


def check_programs(root, files, prefix, dirs):
    for prog in ("sbin/stillpoint-agent", "bin/stillpoint", "sbin/stillpointd"):
        if f"{prefix}/{prog}" not in files:
            fail(f"{prefix}/{prog} is not installed")
    # Cockpit reads its packages from DATADIR/cockpit of each of XDG_DATA_DIRS.
    for page in ("manifest.json", "index.html", "stillpoint.js", "stillpoint.css"):
        if f"{prefix}/share/cockpit/stillpoint/{page}" not in files:
            fail(f"{prefix}/share/cockpit/stillpoint/{page} (the Cockpit page) is not installed")
    starts = [(dirs["systemd units"] + "/stillpoint-agent.service", "ExecStart=", "stillpoint-agent"),
              (dirs["systemd units"] + "/stillpointd.service", "ExecStart=", "stillpointd"),
              (dirs["D-Bus activation"] + "/org.stillpoint.Coordinator1.service", "Exec=",
               "stillpointd")]
    for path, key, prog in starts:
        if path not in files:
            continue
        lines = [l for l in read(root, path).splitlines() if l.startswith(key)]
        if lines != [f"{key}{prefix}/sbin/{prog}"]:
            fail(f"{path}: {lines} does not start {prefix}/sbin/{prog}")


def check_config(root, files, sysconfdir, agent):
    conf = f"{sysconfdir}/stillpoint/agent.conf"
    if conf not in files:
        fail(f"{conf} is not installed")
    help_text = subprocess.run([agent, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True).stdout
    if f"(default {conf})" not in help_text:
        fail(f"the agent does not read {conf} by default; its --help says:\n{help_text}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--sysconfdir", required=True)
    p.add_argument("--agent", required=True)
    a = p.parse_args()
    dirs = system_dirs()
    with tempfile.TemporaryDirectory(prefix="sp-install-") as root:
        r = subprocess.run(["cmake", "--install", a.build], env=dict(os.environ, DESTDIR=root),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            print(r.stdout)
            fail(f"cmake --install {a.build} failed (exit {r.returncode})")
            return 1
        files = set(installed_files(root))
        check_services(root, files, dirs)
        check_programs(root, files, a.prefix, dirs)
        check_config(root, files, a.sysconfdir, a.agent)
        print(f"{len(files)} files installed (prefix {a.prefix}), service directories: {dirs}")
    return problems.status()


if __name__ == "__main__":
    sys.exit(main())
