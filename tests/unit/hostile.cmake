# Hostile peers (tests/unit/test-hostile-*.c, cmocka): the host's QMP and agent clients against a
# peer that stalls, floods, sends bad bytes or hangs up; the Linux agent's transport against
# clients that do the same. ctest names unit/hostile/*.
pkg_check_modules(SP_HOSTILE_CMOCKA REQUIRED IMPORTED_TARGET cmocka)

add_executable(test-hostile-host ${CMAKE_CURRENT_LIST_DIR}/test-hostile-host.c
               ${CMAKE_CURRENT_LIST_DIR}/hostile-peer.c)
target_link_libraries(test-hostile-host PRIVATE stillpoint-host PkgConfig::SP_HOSTILE_CMOCKA)
sp_test(NAME hostile/host-clients COMMAND test-hostile-host)
# Memory is measured as the process's RSS: ASan's quarantine of freed memory (256 MiB) would hide
# any bound, so it is kept small here (use-after-free is still caught in the recent past).
set(sp_hostile_env "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=8")
# They flood from one thread while another serves: give them the cores they measure with.
sp_test_properties(hostile/host-clients PROPERTIES TIMEOUT 120 PROCESSORS 2
                     ENVIRONMENT ${sp_hostile_env})

add_executable(test-hostile-agent ${CMAKE_CURRENT_LIST_DIR}/test-hostile-agent.c
               ${CMAKE_CURRENT_LIST_DIR}/hostile-peer.c)
target_link_libraries(test-hostile-agent PRIVATE stillpoint-agent-linux PkgConfig::SP_HOSTILE_CMOCKA)
sp_test(NAME hostile/agent-transport COMMAND test-hostile-agent)
sp_test_properties(hostile/agent-transport PROPERTIES TIMEOUT 120 PROCESSORS 2
                     ENVIRONMENT ${sp_hostile_env})
