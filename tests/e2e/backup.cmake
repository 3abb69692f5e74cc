# backup/*: backup sessions (begin/end, NBD exports, incremental dirty bitmaps, crash recovery,
# hook pre/post) against a real paused QEMU and sp-fake-agent (tests/e2e/backup.sh).
set(SP_BACKUP_CASES session incremental crash hook)
foreach(case IN LISTS SP_BACKUP_CASES)
  add_test(NAME backup/${case} COMMAND ${CMAKE_CURRENT_LIST_DIR}/backup.sh ${case})
  set_tests_properties(backup/${case} PROPERTIES
    LABELS e2e
    TIMEOUT 300
    RESOURCE_LOCK vm
    SKIP_RETURN_CODE 77
    ENVIRONMENT "SP_STILLPOINT=$<TARGET_FILE:stillpoint>;SP_FAKE_AGENT=$<TARGET_FILE:sp-fake-agent>")
endforeach()
