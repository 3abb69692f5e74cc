# Unit tests of the host coordinator (tests/unit/test-host-*.c), cmocka.
pkg_check_modules(SP_CMOCKA REQUIRED IMPORTED_TARGET cmocka)

foreach(name store agent qmp coordinator ops libvirt-xml)
  add_executable(test-host-${name} ${CMAKE_CURRENT_LIST_DIR}/test-host-${name}.c
                 ${CMAKE_CURRENT_LIST_DIR}/host-fake-agent.c)
  target_link_libraries(test-host-${name} PRIVATE stillpoint-host PkgConfig::SP_CMOCKA)
  add_test(NAME host/unit/${name} COMMAND test-host-${name})
  set_tests_properties(host/unit/${name} PROPERTIES TIMEOUT 60)
endforeach()
