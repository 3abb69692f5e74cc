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

# Allocation failures: the allocator is wrapped with GNU ld's --wrap, so every allocation the
# library makes can be failed in turn.
if(CMAKE_C_COMPILER_ID MATCHES "Clang|GNU" AND NOT APPLE)
  add_executable(test-protocol-alloc ${CMAKE_CURRENT_LIST_DIR}/test-alloc.c)
  target_link_libraries(test-protocol-alloc PRIVATE stillpoint-protocol PkgConfig::SP_PROTOCOL_CMOCKA)
  target_link_options(test-protocol-alloc PRIVATE
                      -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc)
  add_test(NAME protocol/alloc-failure COMMAND test-protocol-alloc)
endif()
