# faults/*: fault injection against a real paused QEMU and sp-fake-agent (tests/faults/faults.sh):
# the CLI killed mid-merge and at the first step of export/apply/backup, the agent stopped or
# killed while frozen, QEMU stopped or killed mid-operation, a full overlay directory, the
# channel dropped, coordinators racing. Each case checks thaw, store/files/chain, data, error.
set(SP_FAULT_CASES kill9-mid-merge kill9-planned agent-stopped agent-killed-frozen qemu-stopped
    qemu-killed-mid-commit enospc race channel-drop)
foreach(case IN LISTS SP_FAULT_CASES)
  sp_test(NAME ${case} COMMAND ${CMAKE_CURRENT_LIST_DIR}/faults.sh ${case})
  sp_test_properties(${case} PROPERTIES
    LABELS "e2e;faults"
    TIMEOUT 240
    RESOURCE_LOCK vm
    SKIP_RETURN_CODE 77
    ENVIRONMENT "SP_STILLPOINT=$<TARGET_FILE:stillpoint>;SP_FAKE_AGENT=$<TARGET_FILE:sp-fake-agent>")
endforeach()

# faults/guest-lease: the real test guest with stillpoint-agent and the workload; the CLI is
# stopped (SIGSTOP) inside the frozen window and the agent's lease must thaw the guest by itself.
sp_test(NAME guest-lease
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/lease_guest.py
          --guest ${SP_GUEST_DIR} --run-dir ${CMAKE_CURRENT_BINARY_DIR}/faults-guest-lease
          --stillpoint $<TARGET_FILE:stillpoint> --workload-bin $<TARGET_FILE:sp-workload>)
sp_test_properties(guest-lease PROPERTIES
  LABELS "guest;e2e;faults" RESOURCE_LOCK vm FIXTURES_REQUIRED sp-guest-image TIMEOUT 300)
