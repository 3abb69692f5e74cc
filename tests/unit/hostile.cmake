# Hostile peers (tests/unit/test-hostile-*.c, cmocka): the host's QMP and agent clients against a
# peer that stalls, floods, sends bad bytes or hangs up; the Linux agent's transport against
# clients that do the same. ctest names hostile/*.
pkg_check_modules(SP_HOSTILE_CMOCKA REQUIRED IMPORTED_TARGET cmocka)

add_executable(test-hostile-host ${CMAKE_CURRENT_LIST_DIR}/test-hostile-host.c
               ${CMAKE_CURRENT_LIST_DIR}/hostile-peer.c)
target_link_libraries(test-hostile-host PRIVATE stillpoint-host PkgConfig::SP_HOSTILE_CMOCKA)
add_test(NAME hostile/host-clients COMMAND test-hostile-host)
set_tests_properties(hostile/host-clients PROPERTIES TIMEOUT 120)
