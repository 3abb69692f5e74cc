# Unit tests of the Linux agent (cmocka, fakes for the system calls): ctest names unit/agent/*.
pkg_check_modules(SP_AGENT_CMOCKA REQUIRED IMPORTED_TARGET cmocka)
foreach(name mountinfo planner freezer lease state commands config blockdev log hooks)
  add_executable(test-agent-${name} ${CMAKE_CURRENT_LIST_DIR}/test-${name}.c)
  target_link_libraries(test-agent-${name} PRIVATE stillpoint-agent-linux PkgConfig::SP_AGENT_CMOCKA)
  target_compile_definitions(test-agent-${name} PRIVATE
    SP_FIXTURES_DIR="${CMAKE_CURRENT_LIST_DIR}/fixtures"
    SP_AGENT_DATA_DIR="${PROJECT_SOURCE_DIR}/agent-linux/data")
  sp_test(NAME agent/${name} COMMAND test-agent-${name})
endforeach()
# unit/agent/hooks swaps scripts between the check and the run through test-hooks.h (SP_TEST_HOOKS)
# and judges root ownership: root only.
sp_test_properties(agent/hooks PROPERTIES SKIP_RETURN_CODE 77 LABELS "agent;root")
