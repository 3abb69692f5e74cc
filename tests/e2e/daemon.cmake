# stillpointd and its polkit roles on a private system-like bus, with a paused QEMU and
# sp-fake-agent (root; skipped otherwise). Both authorities: the rules file and polkit (the real
# client library against python-dbusmock's polkitd).
foreach(scenario rules_file polkit activation authorize_first per_vm bus_identity)
  sp_test(NAME daemon/roles/${scenario}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/daemon-roles.py
                   $<TARGET_FILE:stillpointd> $<TARGET_FILE:stillpoint> $<TARGET_FILE:sp-fake-agent>
                   ${PROJECT_SOURCE_DIR}/host/data/org.stillpoint.Coordinator1.conf ${scenario})
  sp_test_properties(daemon/roles/${scenario} PROPERTIES
    LABELS "e2e;dbus" TIMEOUT 400 RESOURCE_LOCK vm SKIP_RETURN_CODE 77)
endforeach()

# The typed replies: documents as D-Bus values and back (host/lib/document-variant.c).
pkg_check_modules(SP_DAEMON_TEST_CMOCKA REQUIRED IMPORTED_TARGET cmocka)
add_executable(test-daemon-document-variant ${CMAKE_CURRENT_LIST_DIR}/daemon-document-variant.c)
target_link_libraries(test-daemon-document-variant PRIVATE stillpoint-host
                      PkgConfig::SP_DAEMON_TEST_CMOCKA)
sp_test(NAME daemon/document-variant COMMAND test-daemon-document-variant)
sp_test_properties(daemon/document-variant PROPERTIES TIMEOUT 60)

# The README's role table is the polkit policy, the example rule, the interface and
# stillpointd's method table (issue 16): any disagreement fails.
sp_test(NAME daemon/role-table
        COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/daemon-role-table.py ${PROJECT_SOURCE_DIR})
sp_test_properties(daemon/role-table PROPERTIES TIMEOUT 60)
