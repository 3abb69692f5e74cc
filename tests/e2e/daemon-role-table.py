#!/usr/bin/python3
"""The README's role table is the polkit policy (issue 16): it compares the table in README.md
("`stillpointd` and roles") with what ships and runs, and fails on any disagreement:

  - host/data/org.stillpoint.policy: every action is in the table and every table action is
    in the policy, with the default the table states (administrator, or administrator (kept)
    for auth_admin_keep);
  - host/data/50-stillpoint-backup.rules: the example Backup Operator rule grants exactly the
    actions the table's role column says yes to;
  - host/data/org.stillpoint.Coordinator1.xml and host/daemon/stillpointd.c: every method of
    the interface is in the table once, under the action stillpointd asks for it, and
    stillpointd asks for no method the interface lacks;
  - host/data/stillpointd.8: its POLKIT ACTIONS list the same methods under each action, and
    its METHODS every method of the interface.

Then it proves it can fail: each kind of disagreement, made on a copy of the texts, is found.

Usage: daemon-role-table.py SOURCE_DIR
"""
import re
import sys
import xml.etree.ElementTree as ET

DEFAULTS = {"auth_admin": "administrator", "auth_admin_keep": "administrator (kept)"}


def table_rows(readme):
    """{action: (methods, default, role)} from the table after the roles heading."""
    section = readme.split("### `stillpointd` and roles", 1)[1]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `org.stillpoint.") or len(cells) != 4:
            if rows and not line.startswith("|"):
                break
            continue
        action = cells[0].strip("`")
        methods = re.findall(r"`([A-Z][A-Za-z]+)`", cells[1])
        rows[action] = (methods, cells[2], cells[3])
    return rows


def policy_actions(policy):
    """{action: the default the table should state, or a complaint}."""
    out = {}
    for a in ET.fromstring(policy).iter("action"):
        d = {k.tag: k.text for k in a.find("defaults")}
        if d["allow_any"] != "auth_admin" or d["allow_inactive"] != "auth_admin":
            out[a.get("id")] = "not an administrator's (%s)" % d
        else:
            out[a.get("id")] = DEFAULTS.get(d["allow_active"], d["allow_active"])
    return out


def granted(rules):
    return set(re.findall(r'action\.id == "(org\.stillpoint\.[a-z.]+)"', rules))


def interface_methods(xml):
    return [m.get("name") for m in ET.fromstring(xml).iter("method")]


def daemon_actions(source):
    """{method: action} from stillpointd.c's table."""
    return dict(re.findall(r'\{"([A-Z]\w+)", "(org\.stillpoint\.[a-z.]+)"', source))


def man_actions(man):
    """{action: [methods]} from the POLKIT ACTIONS section of stillpointd.8."""
    section = man.split(".SH POLKIT ACTIONS", 1)[1].split(".SS", 1)[0]
    out, current = {}, None
    for line in section.splitlines():
        m = re.match(r"\.B (org\.stillpoint\.[a-z.]+)$", line)
        if m:
            current = out.setdefault(m.group(1), [])
        elif current is not None and re.match(r"\.BR? [A-Z][A-Za-z]+", line):
            current.append(line.split()[1])
        elif line.startswith(".TP"):
            current = None
    return out


def problems(readme, policy, rules, xml, source, man):
    p = []
    rows = table_rows(readme)
    actions = policy_actions(policy)
    methods = interface_methods(xml)
    asks = daemon_actions(source)
    if not rows:
        return ["no role table found in the README"]
    for a in sorted(set(actions) - set(rows)):
        p.append("action %s of the policy is missing from the table" % a)
    for a in sorted(set(rows) - set(actions)):
        p.append("the table's action %s is not in the policy" % a)
    for a in sorted(set(rows) & set(actions)):
        if rows[a][1] != actions[a]:
            p.append("%s: the table says default %r, the policy %r" % (a, rows[a][1], actions[a]))
    says_yes = {a for a, r in rows.items() if r[2] == "yes"}
    for a in sorted(granted(rules) - says_yes):
        p.append("the example rule grants %s, which the table does not give the role" % a)
    for a in sorted(says_yes - granted(rules)):
        p.append("the table gives the role %s, which the example rule does not grant" % a)
    for a, r in rows.items():
        if r[2] not in ("yes", "no"):
            p.append("%s: the role column says %r (yes or no)" % (a, r[2]))
    in_table = {}
    for a, r in rows.items():
        for m in r[0]:
            if m in in_table:
                p.append("method %s is in the table twice" % m)
            in_table[m] = a
    for m in methods:
        if m not in asks:
            p.append("method %s of the interface: stillpointd asks no action for it" % m)
        elif m not in in_table:
            p.append("method %s (action %s) is not in the table" % (m, asks[m]))
        elif in_table[m] != asks[m]:
            p.append("method %s: the table says %s, stillpointd asks %s" % (m, in_table[m], asks[m]))
    for m in sorted(set(asks) - set(methods)):
        p.append("stillpointd asks an action for %s, which the interface does not have" % m)
    for m in sorted(set(in_table) - set(methods)):
        p.append("the table names %s, which the interface does not have" % m)
    man_table = man_actions(man)
    for a, r in rows.items():
        if sorted(man_table.get(a, [])) != sorted(r[0]):
            p.append("stillpointd.8 lists %s under %s, the table %s" % (man_table.get(a), a, r[0]))
    for a in sorted(set(man_table) - set(rows)):
        p.append("stillpointd.8 has action %s, the table does not" % a)
    documented = set(re.findall(r'^\.B ([A-Z][A-Za-z]+) "\(', man, flags=re.M))
    for m in methods:
        if m not in documented:
            p.append("method %s is not among stillpointd.8's METHODS" % m)
    return p


def mutations(texts):
    """Each kind of disagreement, made on a copy: (what, texts)."""
    readme, policy, rules, xml, source, man = texts
    row = re.search(r"\| `org\.stillpoint\.checkpoint\.delete` \|[^\n]*\n", readme).group(0)
    yield "a policy action missing from the table", (readme.replace(row, ""),) + texts[1:]
    yield "a grant the table does not give", (readme, policy, rules.replace(
        'action.id == "org.stillpoint.read"',
        'action.id == "org.stillpoint.read" || action.id == "org.stillpoint.checkpoint.delete"'),
        xml, source, man)
    yield "a method under another action", (readme, policy, rules, xml, source.replace(
        '{"DeleteCheckpoint", "org.stillpoint.checkpoint.delete"',
        '{"DeleteCheckpoint", "org.stillpoint.checkpoint.rename"'), man)
    yield "a method not in the table", (readme.replace("`RenameCheckpoint`", "rename"),) + texts[1:]
    yield "another default", (readme, policy.replace("auth_admin_keep", "auth_admin"),
                              rules, xml, source, man)
    yield "a method the man page does not list", (readme, policy, rules, xml, source,
                                                  man.replace(".BR RenameCheckpoint", ".BR Nothing"))
    yield "a method the man page does not describe", (readme, policy, rules, xml, source,
                                                      man.replace('.B Watch "(', '.B Wait "('))


def main():
    src = sys.argv[1]
    paths = ["README.md", "host/data/org.stillpoint.policy", "host/data/50-stillpoint-backup.rules",
             "host/data/org.stillpoint.Coordinator1.xml", "host/daemon/stillpointd.c",
             "host/data/stillpointd.8"]
    texts = tuple(open("%s/%s" % (src, p), encoding="utf-8").read() for p in paths)
    found = problems(*texts)
    for f in found:
        print("not ok - " + f)
    if found:
        return 1
    print("ok - the README's role table is the policy, the example rule, the interface, "
          "stillpointd's table and stillpointd.8 (%d actions)" % len(table_rows(texts[0])))
    for what, changed in mutations(texts):
        if not problems(*changed):
            print("not ok - a disagreement goes unnoticed: " + what)
            return 1
        print("ok - noticed: %s (%s)" % (what, problems(*changed)[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
