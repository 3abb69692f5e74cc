# Integration tests of stillpoint-agent: real ext4/xfs on loop devices, the real agent on a unix
# socket (root; skipped otherwise). One ctest test per scenario of agent-freeze.py.
set(SP_AGENT_IT_SCENARIOS
  freeze_all_counts_each_filesystem_once
  writer_blocks_until_thaw
  freeze_list_freezes_only_that_mountpoint
  lease_expiry_thaws_and_thaw_reports_inconsistent
  client_hangup_thaws
  other_client_hangup_does_not_thaw
  only_the_freezing_channel_or_its_token_thaws
  standard_freeze_survives_hangup_until_thaw_on_another_connection
  restart_after_kill_thaws
  failing_hook_aborts_freeze
  hook_timeout_and_unsafe_hook
  hook_runs_around_freeze
  bad_input_gets_errors_and_agent_keeps_serving
  frozen_agent_refuses_other_commands
  filesystem_frozen_by_someone_else_is_reported_not_thawed
  get_fsinfo_lists_test_filesystems
  hook_dir_runs_in_name_order_and_thaws_in_reverse
  standard_freeze_gets_the_configured_default_lease
  sigterm_thaws_before_exit
  log_lines_are_held_while_frozen
  systemd_notify_ready_and_watchdog
  btrfs_subvolumes_are_one_filesystem
  watchdog_is_fed_while_a_hook_runs
  flush_writes_dirty_data_without_freezing
  state_dir_on_a_tmpfs_inside_a_frozen_filesystem)
foreach(scenario IN LISTS SP_AGENT_IT_SCENARIOS)
  sp_test(NAME agent/${scenario}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/agent-freeze.py
                   $<TARGET_FILE:stillpoint-agent> ${scenario})
  sp_test_properties(agent/${scenario} PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 120 LABELS "agent;integration;root")
endforeach()

# Beside a stock qemu-ga (Debian's qemu-guest-agent) on a private unix socket: the standard
# commands the agent forwards to it (#17 item 2).
set(SP_AGENT_FORWARD_SCENARIOS
  standard_commands_are_answered_by_qemu_ga
  exec_file_password_and_keys_stay_off_unless_allowed
  a_stalled_qemu_ga_gets_a_deadline_error
  an_oversized_reply_is_cut_off
  forwarded_commands_are_refused_while_frozen
  without_qemu_ga_the_error_says_what_to_install)
foreach(scenario IN LISTS SP_AGENT_FORWARD_SCENARIOS)
  sp_test(NAME agent/qemu-ga/${scenario}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/agent-forward.py
                   $<TARGET_FILE:stillpoint-agent> ${scenario})
  sp_test_properties(agent/qemu-ga/${scenario} PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 120 LABELS "agent;integration;root")
endforeach()

# The agent on a real virtio-serial port in the test guest (tests/guest): selection by disk
# serial, thaw when the host side of the port hangs up. Boots a VM, so it shares the guest
# tests' image fixture and VM lock.
sp_test(NAME agent/virtio/serial-selection-and-hangup-thaw
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/agent-virtio.py
                 --guest ${CMAKE_CURRENT_BINARY_DIR}/guest
                 --run-dir ${CMAKE_CURRENT_BINARY_DIR}/agent-virtio-run)
sp_test_properties(agent/virtio/serial-selection-and-hangup-thaw PROPERTIES
  LABELS "agent;guest" RESOURCE_LOCK vm FIXTURES_REQUIRED sp-guest-image TIMEOUT 240)

# The command line: --help, and the exit status and message of each way of failing to start.
sp_test(NAME agent/cli/help COMMAND stillpoint-agent --help)
sp_test_properties(agent/cli/help PROPERTIES
  PASS_REGULAR_EXPRESSION "--virtio=PATH.*--unix=PATH.*--vsock=PORT.*--state-dir=DIR")
sp_test(NAME agent/cli/exit-status
         COMMAND /bin/sh -c [=[
set -u
agent=$0; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$agent" --bogus 2>/dev/null; test $? -eq 2 || { echo "unknown option: not 2"; exit 1; }
"$agent" --config "$tmp/none.conf" 2>"$tmp/err"; test $? -eq 2 || { echo "missing config: not 2"; exit 1; }
grep -q "$tmp/none.conf" "$tmp/err" || { echo "missing config not named"; exit 1; }
printf '[freeze]\nexclude-mountpoint=/srv\n' >"$tmp/typo.conf"
"$agent" --config "$tmp/typo.conf" 2>"$tmp/err"; test $? -eq 2 || { echo "typo: not 2"; exit 1; }
grep -q "unknown key 'exclude-mountpoint'" "$tmp/err" || { echo "typo not named"; exit 1; }
"$agent" --virtio "$tmp/no-port" --state-dir "$tmp/state" 2>"$tmp/err"
test $? -eq 1 || { echo "missing port: not 1"; exit 1; }
grep -q "cannot open virtio-serial port $tmp/no-port" "$tmp/err" || { echo "port not named"; cat "$tmp/err"; exit 1; }
echo ok
]=] $<TARGET_FILE:stillpoint-agent>)

# The example writer's fault injection exists in test builds only (SP_TEST_HOOKS).
if(TARGET sp-example-writer-product)
  sp_test(NAME agent/cli/example-writer-has-no-test-switches
           COMMAND /bin/sh -c [=[
set -u
for opt in --fail-in --exit-in --delay-in; do
  "$0" $opt freeze --database /nonexistent/db 2>&1 | grep -q "Unknown option $opt" ||
    { echo "the installed writer accepts $opt"; exit 1; }
  "$1" $opt freeze --delay-ms 1 --help >/dev/null 2>&1 ||
    { echo "the test build lost $opt"; exit 1; }
done
echo ok
]=] $<TARGET_FILE:sp-example-writer-product> $<TARGET_FILE:sp-example-writer>)
endif()

# Application writers: a private system-like dbus-daemon that includes the agent's bus policy,
# the example writer (a SQLite database on a loop-mounted ext4), the real agent (root).
set(SP_AGENT_WRITER_SCENARIOS
  writers_called_in_order_around_the_freeze
  lease_expiry_tells_writers_to_thaw
  writer_deadline_miss_aborts_the_freeze
  writer_failure_goes_on_when_configured
  writer_crash_mid_freeze_aborts_and_is_forgotten
  writer_crash_while_frozen_makes_the_thaw_inconsistent
  unregistration
  bus_policy_allows_only_root_and_the_group
  bus_started_after_the_agent_is_used
  bus_restart_is_survived
  agent_without_a_bus_works_as_before)
foreach(scenario IN LISTS SP_AGENT_WRITER_SCENARIOS)
  sp_test(NAME agent/dbus/${scenario}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/agent-writers.py
                   $<TARGET_FILE:stillpoint-agent> $<TARGET_FILE:sp-example-writer>
                   ${PROJECT_BINARY_DIR}/agent-linux/org.stillpoint.Agent1.conf ${scenario})
  sp_test_properties(agent/dbus/${scenario} PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 120 LABELS "agent;integration;root;dbus")
endforeach()
