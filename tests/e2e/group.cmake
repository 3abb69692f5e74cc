# e2e/group/*: consistency groups — two real paused QEMUs and two sp-fake-agents (tests/e2e/group.sh):
# concurrent freezes, one instant across VMs, and a member that cannot freeze leaves none behind.
foreach(case IN ITEMS together one-fails)
  sp_test(NAME group/${case} COMMAND ${CMAKE_CURRENT_LIST_DIR}/group.sh ${case})
  sp_test_properties(group/${case} PROPERTIES
    LABELS e2e
    TIMEOUT 300
    RESOURCE_LOCK vm
    SKIP_RETURN_CODE 77
    ENVIRONMENT "SP_STILLPOINT=$<TARGET_FILE:stillpoint>;SP_FAKE_AGENT=$<TARGET_FILE:sp-fake-agent>")
endforeach()

# e2e/group/guests: the group with two real test guests (stillpoint-agent, sp-workload writing): the
# write stalls that hold the two freezes overlap by more than two write intervals (two guests
# frozen back to back do not), each frozen image is clean and ends at its stall, and a member whose
# freeze hook fails leaves both thawed with no checkpoint and no overlay (tests/e2e/group_guest.py).
sp_test(NAME group/guests
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/group_guest.py
          --guest ${SP_GUEST_DIR} --run-dir ${CMAKE_CURRENT_BINARY_DIR}/group-guests-run
          --stillpoint $<TARGET_FILE:stillpoint> --workload-bin $<TARGET_FILE:sp-workload>)
sp_test_properties(group/guests PROPERTIES
  LABELS "guest;e2e" RESOURCE_LOCK vm FIXTURES_REQUIRED sp-guest-image TIMEOUT 600)
