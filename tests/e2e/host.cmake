# End-to-end tests of the host coordinator (stillpoint CLI).
#  e2e/host/qemu/*  real QEMU (paused q35, real qcow2 images, QMP) + sp-fake-agent: the sequencing,
#               the journal and recovery, without booting a guest.
#  e2e/host/guest/* the real test guest (tests/guest) with stillpoint-agent or stock qemu-ga.
add_executable(sp-fake-agent ${CMAKE_CURRENT_LIST_DIR}/sp-fake-agent.c)
target_link_libraries(sp-fake-agent PRIVATE stillpoint-protocol)

set(SP_HOST_QEMU_CASES two-disks transaction-failure no-agent agent-timeout qga lock
    crash-recovery restarted sigterm qmp-gone hook hook-disks overlay-dir restart-on-image
    hostile-text fake-backend image-dir)
foreach(case IN LISTS SP_HOST_QEMU_CASES)
  sp_test(NAME host/qemu/${case}
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/host-qemu.sh ${case})
  sp_test_properties(host/qemu/${case} PROPERTIES
    LABELS e2e
    TIMEOUT 180
    RESOURCE_LOCK vm
    SKIP_RETURN_CODE 77
    ENVIRONMENT "SP_STILLPOINT=$<TARGET_FILE:stillpoint>;SP_FAKE_AGENT=$<TARGET_FILE:sp-fake-agent>")
endforeach()

# e2e/host/ops/*: delete (merge, live and offline), delete --subtree, rename, export; data checked.
set(SP_HOST_OPS_CASES delete-live delete-offline delete-while-writing delete-kill9 subtree rename
    export apply standard branch-delete deadlines legacy-formats image-swap)
foreach(case IN LISTS SP_HOST_OPS_CASES)
  sp_test(NAME host/ops/${case} COMMAND ${CMAKE_CURRENT_LIST_DIR}/host-ops.sh ${case})
  sp_test_properties(host/ops/${case} PROPERTIES
    LABELS e2e
    TIMEOUT 300
    RESOURCE_LOCK vm
    SKIP_RETURN_CODE 77
    ENVIRONMENT "SP_STILLPOINT=$<TARGET_FILE:stillpoint>")
endforeach()

# e2e/host/guest/*: the real test guest (tests/guest/guest.cmake builds it as a fixture).
foreach(run stillpoint/consistent stillpoint/excluded stillpoint/failures stillpoint/kill9 stillpoint/ops
            stillpoint/standard stillpoint/restart qemu-ga/qga)
  string(REGEX REPLACE "/.*" "" agent ${run})
  string(REGEX REPLACE ".*/" "" case ${run})
  sp_test(NAME host/guest/${run}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/host_guest.py
            --guest ${SP_GUEST_DIR} --run-dir ${CMAKE_CURRENT_BINARY_DIR}/host-guest-runs/${agent}-${case}
            --stillpoint $<TARGET_FILE:stillpoint> --workload-bin $<TARGET_FILE:sp-workload>
            --agent ${agent} ${case})
  sp_test_properties(host/guest/${run} PROPERTIES
    LABELS "guest;e2e" RESOURCE_LOCK vm FIXTURES_REQUIRED sp-guest-image TIMEOUT 600)
endforeach()

# e2e/host/cli/bash-completion: the completion script against the real CLI and store.
sp_test(NAME host/cli/bash-completion COMMAND ${CMAKE_CURRENT_LIST_DIR}/bash-completion.sh)
sp_test_properties(host/cli/bash-completion PROPERTIES
  LABELS e2e TIMEOUT 60
  ENVIRONMENT "SP_STILLPOINT=$<TARGET_FILE:stillpoint>;SP_COMPLETION=${PROJECT_SOURCE_DIR}/host/data/stillpoint.bash-completion")

# e2e/host/guest/hostile-format (issue 15 item 1): the guest writes a qcow2 header naming a host file
# onto its own raw disk; export, a backup session, delete (live and offline) and apply never
# read the host file.
sp_test(NAME host/guest/hostile-format
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/hostile_format_guest.py
          --guest ${SP_GUEST_DIR} --run-dir ${CMAKE_CURRENT_BINARY_DIR}/host-guest-runs/hostile-format
          --stillpoint $<TARGET_FILE:stillpoint> --workload-bin $<TARGET_FILE:sp-workload>)
sp_test_properties(host/guest/hostile-format PROPERTIES
  LABELS "guest;e2e" RESOURCE_LOCK vm FIXTURES_REQUIRED sp-guest-image TIMEOUT 600)

# e2e/host/names: names and values that reach hooks and generated units (no QEMU needed).
sp_test(NAME host/names COMMAND ${CMAKE_CURRENT_LIST_DIR}/host-names.sh)
sp_test_properties(host/names PROPERTIES LABELS e2e TIMEOUT 60
  ENVIRONMENT "SP_STILLPOINT=$<TARGET_FILE:stillpoint>")
