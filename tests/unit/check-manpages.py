#!/usr/bin/env python3
"""Checks the host's man pages against the programs they describe.

1. Every page renders without a single groff warning (groff -man -ww -z), and without one from
   man(1) when it is installed.
2. stillpoint.1 documents every subcommand and every long option the built `stillpoint` accepts.
   The subcommands are read from `stillpoint --help`, each one's options from
   `stillpoint GROUP COMMAND --help`, so a command or option added later without its
   documentation fails here. Options every subcommand takes (--store, --json, -q, ...) must be in
   the OPTIONS section, the others in the subcommand's own section (.SS "GROUP COMMAND ...").
   A subcommand section for a command the CLI no longer lists fails too.
3. stillpointd.8 documents every option `stillpointd --help` prints, every method and signal of
   the D-Bus interface and every polkit action.

Exit status 0: pass, 1: fail, 77: skipped (no groff).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sptest import Problems  # noqa: E402

problems = Problems(stream=sys.stderr)
fail = problems.fail


def run(argv, env=None):
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


def base_env():
    env = dict(os.environ)
    env["LC_ALL"] = "C.UTF-8"
    env.pop("MANPAGER", None)
    env.pop("PAGER", None)
    return env


def lint(page):
    """Renders the page the way man does and fails on any warning."""
    env = base_env()
    r = run(["groff", "-man", "-Tutf8", "-ww", "-z", page], env)
    if r.returncode != 0 or r.stderr.strip():
        fail(f"{page}: groff -man -Tutf8 -ww -z: exit {r.returncode}\n{r.stderr}")
    if shutil.which("man"):
        env["MANWIDTH"] = "80"
        r = run(["man", "--warnings", "-E", "UTF-8", "-l", page], env)
        if r.returncode != 0 or r.stderr.strip():
            fail(f"{page}: man --warnings -l: exit {r.returncode}\n{r.stderr}")


def render(page):
    """Plain text with lines as long as needed: no wrapping, so no hyphenation either."""
    r = run(["groff", "-man", "-Tascii", "-P-cbou", "-rLL=4000n", page], base_env())
    if r.returncode != 0:
        fail(f"{page}: groff -Tascii: exit {r.returncode}\n{r.stderr}")
    return r.stdout.splitlines()


def section(lines, title):
    """The lines of a .SH section (a heading at column 0)."""
    out, inside = [], False
    for line in lines:
        if re.match(r"^\S", line):
            inside = line.strip() == title
            continue
        if inside:
            out.append(line)
    return out


def subsections(lines):
    """{heading: lines} of every .SS section (heading indented 3 columns, as an.tmac does)."""
    out, current = {}, None
    for line in lines:
        if re.match(r"^ {0,3}\S", line):
            m = re.match(r"^ {3}(\S.*)$", line)
            current = m.group(1).strip() if m else None
            if current is not None:
                out.setdefault(current, [])
            continue
        if current is not None:
            out[current].append(line)
    return out


def mentions(lines, option):
    pattern = re.compile(r"(?<![\w-])" + re.escape(option) + r"(?![\w-])")
    return any(pattern.search(line) for line in lines)


def help_options(text):
    """Options of a GOption --help: [(short or None, long)]."""
    opts = []
    for line in text.splitlines():
        m = re.match(r"^\s+(?:(-\w), )?(--[A-Za-z0-9][\w-]*)", line)
        if m:
            opts.append((m.group(1), m.group(2)))
    return opts


def cli_commands(top_help):
    """(group, command) pairs from the Commands: part of `stillpoint --help`."""
    commands, inside = [], False
    for line in top_help.splitlines():
        if line.strip() == "Commands:":
            inside = True
            continue
        if inside and not line.strip():
            break
        if not inside or not re.match(r"^  \S", line):   # continuation lines are indented more
            continue
        for part in line.strip().split(" | "):
            words = part.split()
            if len(words) >= 2 and all(re.fullmatch(r"[a-z][a-z-]*", w) for w in words[:2]):
                if tuple(words[:2]) not in commands:
                    commands.append(tuple(words[:2]))
    return commands


def check_cli(binary, page):
    env = base_env()
    env["STILLPOINT_STORE"] = os.path.join(tempfile.mkdtemp(prefix="sp-man-"), "store.db")
    lines = render(page)
    options_section = section(lines, "OPTIONS")
    if not options_section:
        fail(f"{page}: no OPTIONS section")
    subs = subsections(lines)

    r = run([binary, "--help"], env)
    if r.returncode != 0:
        fail(f"stillpoint --help: exit {r.returncode}\n{r.stderr}")
        return
    top = r.stdout
    commands = cli_commands(top)
    if len(commands) < 10:
        fail(f"could not read the commands from stillpoint --help (found {commands})")
        return
    # The global options of the usage line (--store, --daemon, --json) belong in OPTIONS; every
    # option the overview names must be somewhere in the page.
    usage = top.splitlines()[0]
    for opt in sorted(set(re.findall(r"--[a-z][\w-]*", usage))):
        if not mentions(options_section, opt):
            fail(f"{page}: global option {opt} (stillpoint --help) is not in OPTIONS")
    for opt in sorted(set(re.findall(r"(?<![\w-])--[a-z][\w-]*", top))):
        if not mentions(lines, opt):
            fail(f"{page}: {opt} (stillpoint --help) is not documented")

    per_command = {}
    for group, name in commands:
        r = run([binary, group, name, "--help"], env)
        if r.returncode != 0 or "Usage:" not in r.stdout:
            fail(f"stillpoint {group} {name} --help: exit {r.returncode}\n{r.stdout}{r.stderr}")
            continue
        per_command[(group, name)] = help_options(r.stdout)
    if not per_command:
        return
    # What every subcommand takes is a global option.
    common = set.intersection(*(set(o) for o in per_command.values()))
    for short, long in sorted(common, key=lambda o: o[1]):
        for opt in filter(None, (short, long)):
            if not mentions(options_section, opt):
                fail(f"{page}: global option {opt} is not in OPTIONS")

    documented = {}
    for heading, body in subs.items():
        words = heading.split()
        if len(words) >= 2:
            documented.setdefault((words[0], words[1]), body)
    for (group, name), opts in per_command.items():
        body = documented.get((group, name))
        if body is None:
            fail(f"{page}: no section (.SS \"{group} {name} ...\") for `stillpoint {group} {name}`")
            continue
        for short, long in opts:
            if (short, long) in common:
                continue
            if not mentions(body, long):
                fail(f"{page}: `stillpoint {group} {name}` accepts {long}, not documented in its "
                     f"section")
    groups = {g for g, _ in commands}
    for group, name in documented:
        if group in groups and (group, name) not in per_command:
            fail(f"{page}: documents `stillpoint {group} {name}`, which stillpoint --help does "
                 f"not list")
    print(f"stillpoint.1: {len(per_command)} subcommands, "
          f"{sum(len(o) for o in per_command.values())} options checked")


def check_daemon(binary, page, interface, policy):
    lines = render(page)
    options_section = section(lines, "OPTIONS")
    r = run([binary, "--help"], base_env())
    if r.returncode != 0:
        fail(f"stillpointd --help: exit {r.returncode}\n{r.stderr}")
        return
    opts = help_options(r.stdout)
    if not opts:
        fail("could not read the options from stillpointd --help")
    for short, long in opts:
        for opt in filter(None, (short, long)):
            if not mentions(options_section, opt):
                fail(f"{page}: option {opt} (stillpointd --help) is not in OPTIONS")
    names = []   # (name, the file that defines it)
    if interface:
        for iface in ET.parse(interface).getroot().iter("interface"):
            names.append((iface.get("name"), interface))
            names += [(m.get("name"), interface) for m in iface if m.tag in ("method", "signal")]
    if policy:
        names += [(a.get("id"), policy) for a in ET.parse(policy).getroot().iter("action")]
    for name, origin in names:
        if not mentions(lines, name):
            fail(f"{page}: {name} ({os.path.basename(origin)}) is not documented")
    print(f"stillpointd.8: {len(opts)} options, {len(names)} interface/method/action names checked")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stillpoint", required=True, help="the built stillpoint")
    ap.add_argument("--stillpointd", required=True, help="the built stillpointd")
    ap.add_argument("--cli-page", required=True, help="stillpoint.1")
    ap.add_argument("--daemon-page", required=True, help="stillpointd.8")
    ap.add_argument("--interface", help="org.stillpoint.Coordinator1.xml")
    ap.add_argument("--policy", help="org.stillpoint.policy")
    ap.add_argument("--lint", action="append", default=[], help="another page to lint only")
    args = ap.parse_args()

    if not shutil.which("groff"):
        print("SKIP: groff is not installed (scripts/deps installs groff-base)", file=sys.stderr)
        return 77
    for page in [args.cli_page, args.daemon_page] + args.lint:
        lint(page)
    check_cli(args.stillpoint, args.cli_page)
    check_daemon(args.stillpointd, args.daemon_page, args.interface, args.policy)
    if problems.found:
        print(f"{len(problems.found)} problem(s)", file=sys.stderr)
        return 1
    print("man pages: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
