# Unit tests of libstillpoint-protocol (cmocka): one executable per concept, ctest names unit/protocol/*.
pkg_check_modules(SP_PROTOCOL_CMOCKA REQUIRED IMPORTED_TARGET cmocka)
foreach(name json framer message command)
  add_executable(test-protocol-${name} ${CMAKE_CURRENT_LIST_DIR}/test-${name}.c)
  target_link_libraries(test-protocol-${name} PRIVATE stillpoint-protocol
                        PkgConfig::SP_PROTOCOL_CMOCKA)
  sp_test(NAME protocol/${name} COMMAND test-protocol-${name})
endforeach()

# A locale whose decimal point is ',' (built into the build tree, no root needed) proves that
# numbers do not depend on the C locale; without localedef that test skips.
find_program(SP_LOCALEDEF localedef)
set(sp_locale_dir ${CMAKE_CURRENT_BINARY_DIR}/locale)
if(SP_LOCALEDEF AND NOT EXISTS ${sp_locale_dir}/de_DE.UTF-8/LC_NUMERIC)
  file(MAKE_DIRECTORY ${sp_locale_dir})
  execute_process(COMMAND ${SP_LOCALEDEF} -c -i de_DE -f UTF-8 ${sp_locale_dir}/de_DE.UTF-8
                  OUTPUT_QUIET ERROR_QUIET)
endif()
if(EXISTS ${sp_locale_dir}/de_DE.UTF-8/LC_NUMERIC)
  sp_test_properties(protocol/json PROPERTIES ENVIRONMENT LOCPATH=${sp_locale_dir})
endif()

# Allocation failures: the allocator is wrapped with GNU ld's --wrap, so every allocation the
# library makes can be failed in turn.
if(CMAKE_C_COMPILER_ID MATCHES "Clang|GNU" AND NOT APPLE)
  add_executable(test-protocol-alloc ${CMAKE_CURRENT_LIST_DIR}/test-alloc.c)
  target_link_libraries(test-protocol-alloc PRIVATE stillpoint-protocol PkgConfig::SP_PROTOCOL_CMOCKA)
  target_link_options(test-protocol-alloc PRIVATE
                      -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc)
  sp_test(NAME protocol/alloc-failure COMMAND test-protocol-alloc)
endif()
