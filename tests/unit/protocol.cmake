# Unit tests of libstillpoint-protocol (cmocka): one executable per concept, ctest names protocol/*.
pkg_check_modules(SP_PROTOCOL_CMOCKA REQUIRED IMPORTED_TARGET cmocka)
foreach(name json framer message command)
  if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/test-${name}.c)
    add_executable(test-protocol-${name} ${CMAKE_CURRENT_LIST_DIR}/test-${name}.c)
    target_link_libraries(test-protocol-${name} PRIVATE stillpoint-protocol
                          PkgConfig::SP_PROTOCOL_CMOCKA)
    add_test(NAME protocol/${name} COMMAND test-protocol-${name})
  endif()
endforeach()
