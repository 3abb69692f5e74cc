# e2e/backup/*: backup sessions (begin/end, NBD exports, incremental dirty bitmaps, crash recovery,
# hook pre/post) against a real paused QEMU and sp-fake-agent (tests/e2e/backup.sh).
set(SP_BACKUP_CASES session incremental crash hook retention)
foreach(case IN LISTS SP_BACKUP_CASES)
  sp_test(NAME backup/${case} COMMAND ${CMAKE_CURRENT_LIST_DIR}/backup.sh ${case})
  sp_test_properties(backup/${case} PROPERTIES
    LABELS e2e
    TIMEOUT 300
    RESOURCE_LOCK vm
    SKIP_RETURN_CODE 77
    ENVIRONMENT "SP_STILLPOINT=$<TARGET_FILE:stillpoint>;SP_FAKE_AGENT=$<TARGET_FILE:sp-fake-agent>")
endforeach()

# e2e/backup/guest: the real test guest with stillpoint-agent and the workload writing; the backup is
# read over NBD and checked with e2fsck and sp-workload check; an incremental restored onto the
# full copy equals the new full copy.
sp_test(NAME backup/guest
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/backup_guest.py
          --guest ${SP_GUEST_DIR} --run-dir ${CMAKE_CURRENT_BINARY_DIR}/backup-guest-run
          --stillpoint $<TARGET_FILE:stillpoint> --workload-bin $<TARGET_FILE:sp-workload>)
sp_test_properties(backup/guest PROPERTIES
  LABELS "guest;e2e" RESOURCE_LOCK vm FIXTURES_REQUIRED sp-guest-image TIMEOUT 600)
