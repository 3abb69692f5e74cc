/* stillpoint's Cockpit page: stillpointd's org.stillpoint.Coordinator1 through cockpit.js.
 * There is no server of our own: the Cockpit bridge calls stillpointd as the logged-in user,
 * so stillpointd's roles decide, as they do for the CLI. */
"use strict";

const BUS_NAME = "org.stillpoint.Coordinator1";
const PATH = "/org/stillpoint/Coordinator1";
/* In Cockpit's administrative access mode the calls go as root (whom stillpointd allows
 * everything, as on the bus); in limited access as the user, whose role decides. */
const client = cockpit.dbus(BUS_NAME, { bus: "system", superuser: "try" });

const state = { vms: [], vm: null, doc: null, selected: null, may: {}, running: null };

function $(id) {
    return document.getElementById(id);
}

function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
        if (k === "text")
            e.textContent = v;
        else
            e.setAttribute(k, v);
    });
    children.forEach(c => e.append(c));
    return e;
}

/* ---- D-Bus: typed replies back into the CLI's documents ---- */

/* A variant as the bridge gives it ({t, v}) into plain JSON: a{sv} objects, av arrays, and the
 * empty ay that stands for null (D-Bus has no null). */
function fromVariant(variant) {
    if (variant.t === "ay")
        return null;
    if (variant.t === "av")
        return variant.v.map(fromVariant);
    if (variant.t === "a{sv}")
        return fromDict(variant.v);
    return variant.v;
}

function fromDict(dict) {
    const out = {};
    Object.keys(dict).forEach(k => { out[k] = fromVariant(dict[k]) });
    return out;
}

function str(s) {
    return { t: "s", v: s };
}

/* stillpointd serves a user at most 2 calls at once: the page's short calls go one at a time,
 * so that they and one long operation never exceed it. */
let queue = Promise.resolve();

function raw(method, signature, args) {
    const next = queue.then(() => client.call(PATH, BUS_NAME, method, args, { type: signature }));
    queue = next.catch(() => null);
    return next;
}

/* One method call; the reply's first value as JSON (its D-Bus type given by `reply`). */
function call(method, signature, args, reply) {
    return raw(method, signature, args).then(values => {
        const first = values[0];
        if (reply === "av")
            return first.map(fromVariant);
        if (reply === "a{sv}")
            return fromDict(first);
        if (reply === "v")
            return fromVariant(first);
        return first;
    });
}

/* As the CLI prints an error (stillpoint: MESSAGE, the remote error's name stripped). */
function cliError(error) {
    return "stillpoint: " + (error.message || String(error));
}

function showError(error) {
    const box = $("sp-error");
    box.textContent = error ? cliError(error) : "";
    box.hidden = !error;
}

/* ---- the VM list ---- */

function lastCheckpoint(doc) {
    const cps = doc ? doc.checkpoints : [];
    return cps.reduce((last, cp) => (!last || cp.id > last.id ? cp : last), null);
}

/* A VM's row: its disks and last checkpoint need two more calls; they are made one after the
 * other (stillpointd serves a user at most 2 calls at once). */
function vmSummary(vm) {
    return call("GetVmDisks", "s", [vm.name], "av")
            .catch(() => null)
            .then(disks => call("ListCheckpoints", "s", [vm.name], "a{sv}")
                    .catch(() => null)
                    .then(doc => ({ vm, disks, last: lastCheckpoint(doc) })));
}

/* The disks QEMU (or libvirt) reports now; of a VM that is not running, those it registered
 * or its last checkpoint has. */
function diskNames(summary) {
    const disks = summary.disks || summary.vm.disks || (summary.last ? summary.last.disks : []);
    return disks.map(d => d.disk).join(", ") || "none";
}

function consistencyText(cp) {
    if (!cp)
        return "none";
    return cp.consistency + (cp.reason ? " (" + cp.reason + ")" : "") + ", " + cp.created;
}

function vmRow(summary) {
    const open = el("button", { type: "button", class: "pf-v5-c-button pf-m-link sp-vm-open",
                                "data-vm": summary.vm.name, text: summary.vm.name });
    open.addEventListener("click", () => selectVm(summary.vm.name));
    return el("tr", {},
              el("td", { "data-label": "VM" }, open),
              el("td", { "data-label": "Driver", text: summary.vm.driver }),
              el("td", { "data-label": "Disks",
                         text: diskNames(summary) }),
              el("td", { "data-label": "Last checkpoint", class: "sp-last",
                         text: consistencyText(summary.last) }));
}

function sequentially(items, fn) {
    return items.reduce((p, item) => p.then(done => fn(item).then(r => done.concat([r]))),
                        Promise.resolve([]));
}

function loadVms() {
    return call("ListVms", "", [], "av").then(vms => {
        state.vms = vms;
        return sequentially(vms, vmSummary);
    }).then(rows => {
        $("sp-vms").tBodies[0].replaceChildren(...rows.map(vmRow));
    });
}

/* ---- the checkpoint tree ---- */

function childrenOf(cps) {
    const kids = new Map();
    cps.forEach(cp => {
        const key = cp.parent === null ? 0 : cp.parent;
        kids.set(key, (kids.get(key) || []).concat([cp]));
    });
    return kids;
}

function humanBytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    for (; n >= 1024 && i < units.length - 1; i++)
        n /= 1024;
    return (i ? n.toFixed(1) : n) + " " + units[i];
}

function nodeLabel(cp) {
    const button = el("button", { type: "button", class: "sp-node", "data-id": String(cp.id),
                                  "aria-pressed": String(state.selected === cp.id) },
                      el("span", { class: "sp-name", text: cp.name }),
                      el("span", { class: "sp-type", text: cp.type }),
                      el("span", { class: "sp-consistency sp-" + cp.consistency,
                                   text: cp.consistency + (cp.reason ? ": " + cp.reason : "") }),
                      el("span", { class: "sp-time", text: cp.created }),
                      el("span", { class: "sp-size", text: humanBytes(cp["overlay-bytes"]) }));
    button.addEventListener("click", () => selectCheckpoint(cp.id));
    return button;
}

/* Hyper-V draws "Now" as a child of the checkpoint the VM runs from. */
function nowItem() {
    return el("li", { class: "sp-now" },
              el("span", { class: "sp-now-label", text: "▶ Now" }));
}

function treeItem(cp, kids) {
    const sub = el("ul", {});
    (kids.get(cp.id) || []).forEach(child => sub.append(treeItem(child, kids)));
    if (cp.current)
        sub.append(nowItem());
    const li = el("li", {}, nodeLabel(cp));
    if (sub.childElementCount)
        li.append(sub);
    return li;
}

function renderTree() {
    const cps = state.doc.checkpoints;
    const kids = childrenOf(cps);
    const roots = (kids.get(0) || []).map(cp => treeItem(cp, kids));
    if (state.doc.current === null)
        roots.push(nowItem());
    $("sp-tree").replaceChildren(...roots);
}

/* Up and Down move between the tree's checkpoints in the order they are drawn (Tab does too). */
function treeKey(event) {
    const nodes = [...document.querySelectorAll("#sp-tree .sp-node")];
    const at = nodes.indexOf(document.activeElement);
    const step = { ArrowDown: 1, ArrowUp: -1 }[event.key];
    if (at < 0 || !step || !nodes[at + step])
        return;
    event.preventDefault();
    nodes[at + step].focus();
}

/* ---- what the caller may do: asked of stillpointd itself ---- */

/* stillpointd authorizes every call before it looks at its arguments and answers a refusal
 * with NotAuthorized and the reason. A call that names no checkpoint ("#0") or an invalid
 * name asks exactly that and changes nothing: any other answer means the role allows it. */
function probes(vm) {
    return {
        create: ["CreateCheckpoint", "sa{sv}", [vm, { name: str("") }]],
        apply: ["ApplyCheckpoint", "ssa{sv}", [vm, "#0", {}]],
        rename: ["RenameCheckpoint", "sss", [vm, "#0", ""]],
        delete: ["DeleteCheckpoint", "ssb", [vm, "#0", false]],
        export: ["ExportCheckpoint", "ssss", [vm, "#0", "/nonexistent", "qcow2"]],
    };
}

function probe([method, signature, args]) {
    return raw(method, signature, args)
            .then(() => ({ ok: true }),
                  e => (e.name === BUS_NAME + ".Error.NotAuthorized"
                      ? { ok: false, reason: e.message } : { ok: true }));
}

function loadPermissions(vm) {
    const table = probes(vm);
    const actions = Object.keys(table);
    return sequentially(actions, a => probe(table[a])).then(answers => {
        state.may = {};
        actions.forEach((a, i) => { state.may[a] = answers[i] });
    });
}

/* A button the role does not allow stays visible, disabled, with the reason beside it. */
function gate(action, buttons, why, extra) {
    const may = state.may[action] || { ok: false, reason: "checking ..." };
    const reason = !may.ok ? may.reason : state.running ? "an operation is running" : extra || "";
    buttons.forEach(b => { b.disabled = !!reason });
    $(why).textContent = reason;
}

function renderGates() {
    gate("create", [$("sp-create-go")], "sp-create-why");
    gate("apply", [$("sp-apply-go")], "sp-apply-why");
    gate("rename", [$("sp-rename-go")], "sp-rename-why");
    gate("delete", [$("sp-delete-go"), $("sp-delete-subtree-go")], "sp-delete-why");
    gate("export", [$("sp-export-go")], "sp-export-why",
         $("sp-export-dir").value ? "" : "give a directory you own");
}

/* ---- the selected checkpoint ---- */

function selectedCheckpoint() {
    return state.doc ? state.doc.checkpoints.find(cp => cp.id === state.selected) : undefined;
}

function detailRows(cp) {
    const rows = [["Type", cp.type], ["Consistency", cp.consistency],
        ["Reason", cp.reason || "—"], ["Created", cp.created],
        ["Made by", cp["made-by"] || "—"],
        ["Overlay", humanBytes(cp["overlay-bytes"])],
        ["Disks", cp.disks.map(d => d.disk).join(", ")]];
    return rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]);
}

function renderActions() {
    const cp = selectedCheckpoint();
    $("sp-actions").hidden = !cp;
    if (!cp)
        return;
    $("sp-actions-title").textContent = "Checkpoint “" + cp.name + "”";
    $("sp-details").replaceChildren(...detailRows(cp));
    renderGates();
}

function selectCheckpoint(id) {
    state.selected = id;
    renderTree();
    renderActions();
    const node = document.querySelector('.sp-node[data-id="' + id + '"]');
    if (node)
        node.focus();
}

/* ---- backup sessions ---- */

function renderBackup(session) {
    const box = $("sp-backup");
    if (!session) {
        box.replaceChildren(el("p", { text: "No backup session." }));
        return;
    }
    /* The NBD endpoints exist while the session is open; a closed one is only remembered. */
    const open = session.state === "open";
    const disks = (open ? session.disks || [] : [])
            .map(d => el("li", { class: "sp-nbd", text: d.disk + ": " + d["nbd-uri"] }));
    box.replaceChildren(el("p", { class: "sp-backup-state",
                                  text: "Session " + session.state + ", " + session.consistency +
                                        (session.incremental ? ", incremental" : "") }),
                        el("ul", {}, ...disks));
}

/* ---- schedules (ListSchedules: read; creating and removing stays with the CLI) ---- */

function scheduleLine(entry, systemd) {
    let text = entry.on_calendar + (entry.keep !== undefined ? ", keep " + entry.keep : "");
    if (systemd)
        text += ", timer " + (entry.enabled || "?") + ", next " + (entry.next || "-") +
                ", last " + (entry.last || "-") + (entry.result ? " (" + entry.result + ")" : "");
    return el("li", { class: "sp-schedule", text: text });
}

function renderSchedules(doc) {
    const box = $("sp-schedules");
    const entries = doc.schedules || [];
    box.replaceChildren(entries.length
        ? el("ul", {}, ...entries.map(e => scheduleLine(e, doc.systemd)))
        : el("p", { text: "No schedule." }));
}

function loadSchedules(vm) {
    return call("ListSchedules", "s", [vm], "a{sv}").then(renderSchedules).catch(error => {
        $("sp-schedules").replaceChildren(el("p", { text: cliError(error) }));
    });
}

/* ---- one VM ---- */

function loadVm() {
    const vm = state.vm;
    return call("ListCheckpoints", "s", [vm], "a{sv}").then(doc => {
        if (vm !== state.vm)
            return;
        state.doc = doc;
        renderTree();
        renderActions();
        return call("GetBackupStatus", "s", [vm], "v").then(renderBackup)
                .then(() => loadSchedules(vm));
    });
}

function selectVm(name) {
    state.vm = name;
    state.selected = null;
    state.may = {};
    $("sp-vm").hidden = false;
    $("sp-vm-title").textContent = name;
    renderGates();
    return loadVm().then(() => loadPermissions(name)).then(renderGates).catch(showError);
}

/* ---- long operations, with their Progress ---- */

function progressShow(title) {
    $("sp-progress").hidden = false;
    $("sp-progress").scrollIntoView({ block: "nearest" });
    $("sp-progress-title").textContent = title;
    $("sp-progress-log").replaceChildren();
    progressSet(0, "starting");
}

function progressSet(percent, text) {
    const bar = $("sp-progress-bar");
    bar.setAttribute("aria-valuenow", String(Math.round(percent)));
    bar.firstElementChild.style.width = percent + "%";
    $("sp-progress-text").textContent = text;
}

/* Progress is unicast to the caller (the bridge), for the VM the operation works on; a
 * percentage is about the disk its message names. */
function onProgress(path, iface, signal, [vm, operation, message, percent]) {
    if (!state.running || vm !== state.running.vm)
        return;
    const line = message + (percent >= 0 ? " " + percent.toFixed(0) + " %" : "");
    $("sp-progress-log").append(el("li", { text: line }));
    const bar = Number($("sp-progress-bar").getAttribute("aria-valuenow"));
    progressSet(percent >= 0 ? percent : Math.max(bar, 5), line);
}

function finished(ok, error) {
    state.running = null;
    if (ok)
        progressSet(100, "done");
    else
        $("sp-progress-text").textContent = cliError(error);
    $("sp-progress").dataset.state = ok ? "done" : "failed";
    showError(ok ? null : error);
    renderGates();
    return loadVm();
}

function run(title, method, signature, args) {
    state.running = { vm: state.vm };
    showError(null);
    progressShow(title);
    $("sp-progress").dataset.state = "running";
    renderGates();
    return client.call(PATH, BUS_NAME, method, args, { type: signature })
            .then(() => finished(true), e => finished(false, e))
            .catch(showError);
}

function ref(cp) {
    return "#" + cp.id;
}

function doCreate(event) {
    event.preventDefault();
    const opts = {};
    if ($("sp-create-name").value)
        opts.name = str($("sp-create-name").value);
    if ($("sp-create-type").value)
        opts.type = str($("sp-create-type").value);
    run("Creating a checkpoint of " + state.vm, "CreateCheckpoint", "sa{sv}", [state.vm, opts])
            .then(() => {
                if ($("sp-progress").dataset.state === "done")
                    $("sp-create-name").value = "";
            });
}

function doApply() {
    const cp = selectedCheckpoint();
    const opts = {};
    if ($("sp-apply-save").checked)
        opts["save-current"] = str($("sp-apply-save-name").value);
    if ($("sp-apply-force").checked)
        opts.force = { t: "b", v: true };
    run("Applying “" + cp.name + "”", "ApplyCheckpoint", "ssa{sv}", [state.vm, ref(cp), opts]);
}

function doRename() {
    const cp = selectedCheckpoint();
    run("Renaming “" + cp.name + "”", "RenameCheckpoint", "sss",
        [state.vm, ref(cp), $("sp-rename-name").value]);
}

function doDelete(subtree) {
    const cp = selectedCheckpoint();
    state.selected = null;
    run((subtree ? "Deleting the subtree of “" : "Deleting “") + cp.name + "”",
        "DeleteCheckpoint", "ssb", [state.vm, ref(cp), subtree]);
}

function doExport() {
    const cp = selectedCheckpoint();
    run("Exporting “" + cp.name + "”", "ExportCheckpoint", "ssss",
        [state.vm, ref(cp), $("sp-export-dir").value, $("sp-export-format").value]);
}

/* ---- live view: Watch, then re-read what a signal names ---- */

function onChanged(path, iface, signal, [vm]) {
    if (signal === "CheckpointsChanged" && vm === state.vm && !state.running)
        loadVm().catch(showError);
    loadVms().catch(showError);
}

function subscribe() {
    client.subscribe({ path: PATH, interface: BUS_NAME, member: "Progress" }, onProgress);
    ["VmAdded", "VmRemoved", "CheckpointsChanged"].forEach(member =>
        client.subscribe({ path: PATH, interface: BUS_NAME, member }, onChanged));
}

function wire() {
    $("sp-create").addEventListener("submit", doCreate);
    $("sp-apply-go").addEventListener("click", doApply);
    $("sp-rename-go").addEventListener("click", doRename);
    $("sp-delete-go").addEventListener("click", () => doDelete(false));
    $("sp-delete-subtree-go").addEventListener("click", () => doDelete(true));
    $("sp-export-go").addEventListener("click", doExport);
    $("sp-export-dir").addEventListener("input", renderGates);
    $("sp-tree").addEventListener("keydown", treeKey);
}

function init() {
    wire();
    subscribe();
    call("Watch", "", [], null)
            .then(loadVms)
            .then(() => { document.body.dataset.ready = "true" })
            .catch(error => {
                showError(error);
                document.body.dataset.ready = "true";
            });
}

init();
