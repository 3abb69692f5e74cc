# group/*: consistency groups — two real paused QEMUs and two sp-fake-agents (tests/e2e/group.sh):
# concurrent freezes, one instant across VMs, and a member that cannot freeze leaves none behind.
foreach(case IN ITEMS together one-fails)
  add_test(NAME group/${case} COMMAND ${CMAKE_CURRENT_LIST_DIR}/group.sh ${case})
  set_tests_properties(group/${case} PROPERTIES
    LABELS e2e
    TIMEOUT 300
    RESOURCE_LOCK vm
    SKIP_RETURN_CODE 77
    ENVIRONMENT "SP_STILLPOINT=$<TARGET_FILE:stillpoint>;SP_FAKE_AGENT=$<TARGET_FILE:sp-fake-agent>")
endforeach()
