#!/usr/bin/python3
"""The Cockpit page (cockpit/) in a real browser, against a real stillpointd.

Usage: cockpit.py DAEMON_ROLES STILLPOINTD STILLPOINT FAKE_AGENT BUS_POLICY PACKAGE SHOTS page
(root; 77 = skip)

The private system-like bus, the paused QEMU with a qcow2 disk and sp-fake-agent as its agent,
and stillpointd with the rules-file authority are those of tests/e2e/daemon-roles.py (imported,
not copied). cockpit-ws listens on localhost and each user logs in through Cockpit's login page
with a password: cockpit-session and PAM (/etc/pam.d/cockpit) start cockpit-bridge as that user.
cockpit-ws runs in a mount namespace of its own where the test's copies of /etc/passwd and
/etc/shadow give the users a shell, a home and a password, and its copy of /etc/environment
(read by pam_env for the session) names the test bus as the system bus and puts the page where
the bridge finds packages (XDG_DATA_DIRS); the system's files are not touched. The users:
  the backup operator: nobody, group nogroup (read, create, export);
  an administrator:    daemon, group daemon (every checkpoint action);
  a reader:            bin, group bin (read only).
Headless Chromium (chromedriver, python3-selenium) drives the page; screenshots go to SHOTS.
"""
import importlib.util
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import (NoSuchElementException, StaleElementReferenceException,
                                        TimeoutException)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guest"))
from sptest import check, file_tail, need_root, need_tools, ok, scenario_main  # noqa: E402
from spguest import QmpClient  # noqa: E402  (the suite's QMP client)

WAIT_S = 60
OPERATOR = {"user": "nobody", "group": "nogroup", "extra_groups": []}
ADMIN = {"user": "daemon", "group": "daemon", "extra_groups": []}
READER = {"user": "bin", "group": "bin", "extra_groups": []}
# A new password each run: the test users are real accounts (daemon, bin, nobody) inside
# cockpit-ws's namespace, reachable on 127.0.0.1 by any local user while the test runs.
PASSWORD = secrets.token_urlsafe(24)
RULES = """[actions]
org.stillpoint.read=group:nogroup;user:daemon;user:bin
org.stillpoint.checkpoint.create=group:nogroup;user:daemon
org.stillpoint.checkpoint.export=group:nogroup;user:daemon
org.stillpoint.checkpoint.apply=user:daemon
org.stillpoint.checkpoint.delete=user:daemon
org.stillpoint.checkpoint.rename=user:daemon
"""


def load_roles(path):
    """tests/e2e/daemon-roles.py, whose Env starts the bus, the VM and stillpointd."""
    spec = importlib.util.spec_from_file_location("daemon_roles", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- Cockpit ----

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_package(env, package):
    """The page where the bridge finds packages (XDG_DATA_DIRS), readable by the test users."""
    share = env.path("share")
    shutil.copytree(package, os.path.join(share, "cockpit", "stillpoint"))
    for root, dirs, files in os.walk(share):
        for name in dirs + files:
            os.chmod(os.path.join(root, name), 0o755)
    os.chmod(share, 0o755)
    return share


def etc_copy(env, name, change):
    """The test's copy of /etc/NAME, each line through change(fields): its path."""
    lines = []
    with open("/etc/" + name) as f:
        for line in f.read().splitlines():
            fields = line.split(":")
            lines.append(":".join(change(fields)))
    path = env.path(name)
    # Created with its final mode: the copy of shadow holds every account's hash.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644 if name == "passwd" else 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def test_users(env):
    """passwd and shadow with a shell, a home and PASSWORD for each test user."""
    users = {who["user"]: who for who in (OPERATOR, ADMIN, READER)}
    hashed = subprocess.run(["openssl", "passwd", "-6", PASSWORD], check=True, text=True,
                            stdout=subprocess.PIPE).stdout.strip()
    for who in users.values():
        home = env.path("home-" + who["user"])
        os.makedirs(home)
        shutil.chown(home, who["user"], who["group"])

    def passwd(f):
        return f[:5] + [env.path("home-" + f[0]), "/bin/sh"] if f[0] in users else f

    def shadow(f):
        return [f[0], hashed] + f[2:] if f[0] in users else f
    return etc_copy(env, "passwd", passwd), etc_copy(env, "shadow", shadow)


def start_cockpit(env, share):
    """cockpit-ws (as root, as its socket unit would start it) in a mount namespace with the test
    users and the session environment: the port."""
    passwd, shadow = test_users(env)
    environment = env.path("environment")
    with open(environment, "w") as f:
        f.write("DBUS_SYSTEM_BUS_ADDRESS=%s\nXDG_DATA_DIRS=%s:/usr/share\n"
                % (env.address, share))
    port = free_port()
    binds = "".join("mount --bind %s /etc/%s && " % (path, os.path.basename(path))
                    for path in (passwd, shadow, environment))
    with open(env.path("cockpit-ws.log"), "wb") as log:
        env.spawn(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   binds + "exec /usr/lib/cockpit/cockpit-ws --no-tls --port %d "
                   "--address 127.0.0.1" % port], stdout=log, stderr=log)
    deadline = time.monotonic() + WAIT_S
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        if time.monotonic() > deadline:
            check(False, "cockpit-ws never listened on %d" % port)
        time.sleep(0.1)
    return port


# ---- the browser ----

def browser(env):
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1800", "--user-data-dir=" + env.path("chromium")):
        opts.add_argument(arg)
    opts.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def wait(driver, what, cond, timeout=WAIT_S):
    """Until cond(); the page re-draws the tree when stillpointd says it changed, so an element
    found may be gone a moment later: that is asked again."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05,
                             ignored_exceptions=(NoSuchElementException,
                                                 StaleElementReferenceException)).until(
            lambda d: cond())
    except TimeoutException:
        check(False, "timed out waiting: %s\n%s" % (what, page_text(driver)))


def page_text(driver):
    try:
        return driver.find_element(By.TAG_NAME, "body").text
    except Exception:
        return ""


def by_id(driver, id_):
    return driver.find_element(By.ID, id_)


def login_form(driver, port, user, password):
    driver.delete_all_cookies()
    driver.get("http://127.0.0.1:%d/" % port)
    wait(driver, "Cockpit's login page", lambda: by_id(driver, "login-user-input").is_displayed())
    by_id(driver, "login-user-input").send_keys(user)
    by_id(driver, "login-password-input").send_keys(password)
    by_id(driver, "login-button").click()


def session_status(driver):
    """The HTTP status of a file that only a logged-in session is served."""
    return driver.execute_async_script(
        "const done = arguments[0];"
        "fetch('/cockpit/@localhost/base1/manifest.json')"
        "    .then(r => done(r.status), () => done(0));")


def login(driver, port, who):
    """Cockpit's login page, as who with PASSWORD: PAM checks it, the session is theirs."""
    login_form(driver, port, who["user"], PASSWORD)
    wait(driver, "logged in as " + who["user"], lambda: session_status(driver) == 200)


def wrong_password(driver, port):
    login_form(driver, port, OPERATOR["user"], "not-" + PASSWORD)
    wait(driver, "the login refused", lambda: by_id(driver, "login-error-message").is_displayed())
    ok(session_status(driver) != 200,
          "a wrong password is refused (%s)" % by_id(driver, "login-error-message").text)


def open_page(driver, port, who):
    login(driver, port, who)
    driver.get("http://127.0.0.1:%d/cockpit/@localhost/stillpoint/index.html" % port)
    wait(driver, "the page has listed the VMs",
         lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    ok(not page_text(driver).startswith("stillpoint:") and by_id(driver, "sp-error").text == "",
          "the page loaded without an error (%s)" % by_id(driver, "sp-error").text)


def open_vm(driver, vm):
    driver.find_element(By.CSS_SELECTOR, '.sp-vm-open[data-vm="%s"]' % vm).click()
    wait(driver, "the role was asked",
         lambda: by_id(driver, "sp-create-why").text != "checking ...")


def node(driver, name):
    """The tree's button for the checkpoint named name, or None."""
    for b in driver.find_elements(By.CSS_SELECTOR, "#sp-tree .sp-node"):
        if b.find_element(By.CLASS_NAME, "sp-name").text == name:
            return b
    return None


def names(driver):
    """The tree's checkpoints, read at one instant (the page may re-draw it at any time)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#sp-tree .sp-name')].map(e => e.textContent);")


def select(driver, name):
    wait(driver, "a click on " + name, lambda: node(driver, name).click() or True)
    wait(driver, "the checkpoint's actions shown",
         lambda: by_id(driver, "sp-actions").is_displayed())


def watch_progress(driver):
    """Until the operation ends: the values the bar showed, its end state and its log."""
    values = []
    while by_id(driver, "sp-progress").get_attribute("data-state") == "running":
        values.append(int(by_id(driver, "sp-progress-bar").get_attribute("aria-valuenow")))
        time.sleep(0.05)
    values.append(int(by_id(driver, "sp-progress-bar").get_attribute("aria-valuenow")))
    log = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#sp-progress-log li")]
    return values, by_id(driver, "sp-progress").get_attribute("data-state"), log


def finished_ok(driver, what):
    """The operation ended well, its Progress seen on the way: the bar's values."""
    values, end, log = watch_progress(driver)
    ok(end == "done" and values[-1] == 100,
          "%s: the progress bar reached 100 %% (values %s, %s)"
          % (what, sorted(set(values)), by_id(driver, "sp-progress-text").text))
    ok(len(log) > 0, "%s: stillpointd's Progress reached the page live: %s" % (what, log))
    return values, log


def now_parent(driver):
    """The name of the checkpoint the tree draws "Now" under."""
    return driver.execute_script(
        "const now = document.querySelector('#sp-tree .sp-now');"
        "const item = now && now.parentElement.closest('li');"
        "return item ? item.querySelector('.sp-name').textContent : null;")


def shot(driver, shots, name):
    """The whole page: the window is made as tall as the page first."""
    width = driver.get_window_size()["width"]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, height + 150)
    driver.save_screenshot(os.path.join(shots, name))
    print("screenshot: " + os.path.join(shots, name))


# ---- the two users ----

def operator_creates(driver, port):
    wrong_password(driver, port)
    open_page(driver, port, OPERATOR)
    row = driver.find_element(By.CSS_SELECTOR, "#sp-vms tbody tr").text
    ok("vm1" in row and "qemu" in row and "vda" in row and "none" in row,
          "the VM list shows vm1, its driver and disks, no checkpoint yet (%s)" % row)
    open_vm(driver, "vm1")
    wait(driver, "the VM's schedule", lambda: "hourly" in by_id(driver, "sp-schedules").text)
    text = by_id(driver, "sp-schedules").text
    ok(text == "hourly, keep 3", "the page lists the schedule root made (ListSchedules): %r" % text)
    # Keyboard only: type the name, choose the type, Enter submits.
    name = by_id(driver, "sp-create-name")
    name.send_keys("nightly")
    Select(by_id(driver, "sp-create-type")).select_by_value("production")
    name.send_keys(Keys.ENTER)
    _, log = finished_ok(driver, "the operator's create")
    ok(any("froze" in line or "freez" in line.lower() for line in log),
          "the progress log has the freeze (%s)" % log)
    wait(driver, "the new checkpoint in the tree", lambda: node(driver, "nightly") is not None)
    text = node(driver, "nightly").text
    ok("production" in text and "application" in text,
          "the node shows its type and consistency (%s)" % text)
    ok(now_parent(driver) == "nightly", "the tree draws Now under the new checkpoint")
    ok(names(driver) == ["nightly"],
          "the role's questions made no checkpoint (%s)" % names(driver))
    wait(driver, "the VM list shows the last checkpoint's consistency",
         lambda: "application" in driver.find_element(By.CSS_SELECTOR, "#sp-vms .sp-last").text)


def operator_refused(driver, shots):
    select(driver, "nightly")
    for button, why, action in (("sp-delete-go", "sp-delete-why", "delete"),
                                ("sp-apply-go", "sp-apply-why", "apply"),
                                ("sp-rename-go", "sp-rename-why", "rename")):
        b, reason = by_id(driver, button), by_id(driver, why).text
        ok(b.is_displayed() and not b.is_enabled() and "not authorized to %s" % action in reason
              and "org.stillpoint.checkpoint." + action in reason,
              "the operator sees %s disabled, with the reason: %s" % (action, reason))
    ok(by_id(driver, "sp-delete-subtree-go").get_attribute("disabled") is not None,
          "... and delete subtree too")
    ok(by_id(driver, "sp-create-go").is_enabled(), "the operator may create")
    shot(driver, shots, "tree-operator.png")


def operator_exports(env, driver):
    """The operator may export, into a directory of theirs: the copy is there, given to them."""
    out = env.path("export")
    os.makedirs(out)
    shutil.chown(out, OPERATOR["user"], OPERATOR["group"])
    ok(not by_id(driver, "sp-export-go").is_enabled(), "export waits for a directory")
    by_id(driver, "sp-export-dir").send_keys(out)
    by_id(driver, "sp-export-go").click()
    finished_ok(driver, "the operator's export")
    copies = [os.path.join(d, f) for d, _, files in os.walk(out)
              for f in files if f.endswith(".qcow2")]
    ok(len(copies) == 1 and os.stat(copies[0]).st_uid == 65534,
          "the export wrote the disk's copy, owned by the operator (%s)" % copies)


def operator_sees_backup(env, driver, shots):
    """A backup session root begins reaches the page by Watch: its NBD endpoints, then its end."""
    env.ok(None, "BeginBackup", "vm1", "{}")
    wait(driver, "the session's NBD endpoint", lambda: "nbd" in by_id(driver, "sp-backup").text)
    text = by_id(driver, "sp-backup").text
    ok("Session open" in text and "vda: nbd+unix://" in text,
          "the page shows the open backup session and its NBD endpoint (%s)" % text)
    shot(driver, shots, "backup.png")
    env.ok(None, "EndBackup", "vm1", "{}")
    wait(driver, "the session closed", lambda: "Session closed" in by_id(driver, "sp-backup").text)
    ok(not driver.find_elements(By.CLASS_NAME, "sp-nbd"), "a closed session shows no endpoint")


def narrow_window(driver, shots):
    driver.set_window_size(390, 1400)
    time.sleep(0.3)
    wide = driver.execute_script("return document.documentElement.scrollWidth > window.innerWidth")
    ok(not wide, "at 390 px wide the page needs no horizontal scrolling")
    shot(driver, shots, "narrow.png")
    driver.set_window_size(1280, 1800)


def write_disk(env, mib):
    """mib MiB through QEMU's block layer into the VM's present (HMP qemu-io): data for the next
    checkpoint's overlay, so that deleting the checkpoint before it has something to merge."""
    qmp = QmpClient(env.path("qmp.sock"))
    try:
        # qemu-io prints on QEMU's stdout, not into the reply: the delete's progress below is
        # what shows the data was there to merge.
        qmp.execute("human-monitor-command", {"command-line":
                    'qemu-io -d /machine/peripheral/vda/virtio-backend "write -P 0x5a 0 %dM"'
                    % mib}, 60)
    finally:
        qmp.close()


def admin_deletes(env, driver, port, shots):
    write_disk(env, 28)
    open_page(driver, port, ADMIN)
    open_vm(driver, "vm1")
    ok(names(driver) == ["nightly"] and by_id(driver, "sp-delete-why").text == "",
          "the administrator's questions changed nothing, and all is allowed (%s)" % names(driver))
    by_id(driver, "sp-create-name").send_keys("second")
    by_id(driver, "sp-create-go").click()
    finished_ok(driver, "the admin's create")
    wait(driver, "second in the tree", lambda: node(driver, "second") is not None)
    select(driver, "nightly")
    ok(by_id(driver, "sp-delete-go").is_enabled(), "the administrator may delete")
    by_id(driver, "sp-delete-go").click()
    bar = by_id(driver, "sp-progress-bar")
    wait(driver, "the merge under way", lambda: 5 <= int(bar.get_attribute("aria-valuenow")) < 50)
    shot(driver, shots, "delete-running.png")
    state = by_id(driver, "sp-progress").get_attribute("data-state")
    values, _ = finished_ok(driver, "the admin's delete")
    ok(state == "running" and any(0 < v < 100 for v in values),
          "the screenshot is of a running delete (%s), and the bar followed the merge (%s)"
          % (state, values))
    wait(driver, "nightly gone from the tree", lambda: node(driver, "nightly") is None)
    ok("second" in names(driver) and now_parent(driver) == "second",
          "the tree keeps second, the VM's present under it")


def admin_applies(driver, shots):
    select(driver, "second")
    ok(by_id(driver, "sp-apply-save").is_selected(), "apply offers a checkpoint first")
    by_id(driver, "sp-apply-force").click()
    by_id(driver, "sp-apply-go").click()
    finished_ok(driver, "the admin's apply")
    wait(driver, "the saved present in the tree", lambda: node(driver, "before apply") is not None)
    ok(now_parent(driver) == "second", "after apply the VM's present is under second again")
    shot(driver, shots, "tree-admin.png")


def admin_renames(env, driver):
    """A rename the store refuses: the page says what the CLI says, word for word."""
    select(driver, "before apply")
    by_id(driver, "sp-rename-name").send_keys("second")
    by_id(driver, "sp-rename-go").click()
    wait(driver, "the rename's end",
         lambda: by_id(driver, "sp-progress").get_attribute("data-state") != "running")
    shown = by_id(driver, "sp-error").text
    cli = env.cli_run(None, "--daemon", "checkpoint", "rename", "vm1", "before apply", "second")
    ok(cli.returncode != 0 and shown == cli.stderr.strip(),
          "a refused rename shows the error as the CLI prints it (%r, the CLI: %r)"
          % (shown, cli.stderr.strip()))
    by_id(driver, "sp-rename-name").clear()
    by_id(driver, "sp-rename-name").send_keys("saved present")
    by_id(driver, "sp-rename-go").click()
    wait(driver, "the renamed node", lambda: "saved present" in names(driver))


def tab_to(driver, selector, limit=40):
    """Tab until the focused element matches selector: the keyboard alone reaches it."""
    for _ in range(limit):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        if driver.execute_script("return document.activeElement.matches(arguments[0])", selector):
            return driver.switch_to.active_element
    check(False, "%s not reached with Tab in %d steps" % (selector, limit))


def reader_sees(driver, port):
    """A read-only user sees the tree, and every action disabled with its reason."""
    open_page(driver, port, READER)
    open_vm(driver, "vm1")
    ok(names(driver) == ["second", "saved present"],
          "the reader sees the tree (%s)" % names(driver))
    reason = by_id(driver, "sp-create-why").text
    ok(not by_id(driver, "sp-create-go").is_enabled() and
          "not authorized to create checkpoints" in reason,
          "the reader sees create disabled, with the reason: %s" % reason)
    tab_to(driver, '.sp-node[data-id]').send_keys(Keys.ARROW_DOWN)
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    wait(driver, "a checkpoint chosen with the keyboard",
         lambda: by_id(driver, "sp-actions-title").text == "Checkpoint “saved present”")
    for button in ("sp-apply-go", "sp-rename-go", "sp-delete-go", "sp-export-go"):
        ok(not by_id(driver, button).is_enabled(), "the reader sees %s disabled" % button)


def scenario(setup):
    env, shots = setup.env, setup.shots
    env.start_bus()
    env.start_vm()
    with open(env.path("rules.conf"), "w") as f:
        f.write(RULES)
    # A live merge at 4 MiB/s (a test switch): the delete runs long enough (7 s) to be seen
    # running and photographed under load.
    env.env["STILLPOINT_TEST_COMMIT_SPEED"] = str(4 << 20)
    env.start_daemon("--rules", env.path("rules.conf"), "--unit-dir", env.path("units"))
    env.ok(None, "AddVm", "vm1", "{'qmp-socket': <'%s'>, 'agent-socket': <'%s'>}"
           % (env.path("qmp.sock"), env.path("agent.sock")))
    env.ok(None, "CreateSchedule", "vm1", "{'on_calendar': <'hourly'>, 'keep': <uint32 3>}")
    share = install_package(env, setup.package)
    port = start_cockpit(env, share)
    driver = browser(env)
    try:
        operator_creates(driver, port)
        operator_refused(driver, shots)
        operator_exports(env, driver)
        operator_sees_backup(env, driver, shots)
        narrow_window(driver, shots)
        admin_deletes(env, driver, port, shots)
        admin_applies(driver, shots)
        admin_renames(env, driver)
        reader_sees(driver, port)
    finally:
        driver.quit()


class Setup:
    """What the scenario runs with: daemon-roles.py's Env, the page's folder, where shots go."""

    def __init__(self, daemon_roles, stillpointd, cli, fake_agent, policy, package, shots):
        self.env = load_roles(daemon_roles).Env(stillpointd, cli, fake_agent, policy)
        self.package, self.shots = package, shots
        os.makedirs(shots, exist_ok=True)

    def cleanup(self):
        self.env.cleanup()

    def dump_log(self):
        for log in ("daemon.log", "cockpit-ws.log"):
            sys.stderr.write(file_tail(self.env.path(log), 200))


def prepare():
    need_root("stillpointd runs as root; cockpit-ws logs the users in through PAM")
    need_tools("dbus-daemon", "gdbus", "qemu-system-x86_64", "qemu-img", "unshare", "openssl",
               "chromium", "chromedriver", "/usr/lib/cockpit/cockpit-ws", "cockpit-bridge")


if __name__ == "__main__":
    sys.exit(scenario_main({"page": scenario}, "DAEMON_ROLES STILLPOINTD STILLPOINT FAKE_AGENT "
                           "BUS_POLICY PACKAGE SHOTS", Setup, prepare))
