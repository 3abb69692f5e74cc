# faults/*: fault injection against a real paused QEMU and sp-fake-agent (tests/faults/faults.sh):
# the CLI killed mid-merge and at the first step of export/apply/backup, the agent stopped or
# killed while frozen, QEMU stopped or killed mid-operation, a full overlay directory, the
# channel dropped, coordinators racing. Each case checks thaw, store/files/chain, data, error.
set(SP_FAULT_CASES kill9-mid-merge kill9-planned agent-stopped agent-killed-frozen qemu-stopped
    qemu-killed-mid-commit enospc race channel-drop)
foreach(case IN LISTS SP_FAULT_CASES)
  add_test(NAME faults/${case} COMMAND ${CMAKE_CURRENT_LIST_DIR}/faults.sh ${case})
  set_tests_properties(faults/${case} PROPERTIES
    LABELS "e2e;faults"
    TIMEOUT 240
    RESOURCE_LOCK vm
    SKIP_RETURN_CODE 77
    ENVIRONMENT "SP_STILLPOINT=$<TARGET_FILE:stillpoint>;SP_FAKE_AGENT=$<TARGET_FILE:sp-fake-agent>")
endforeach()
