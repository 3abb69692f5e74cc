# Unit tests of the host coordinator (tests/unit/test-host-*.c), cmocka.
pkg_check_modules(SP_CMOCKA REQUIRED IMPORTED_TARGET cmocka)

foreach(name store agent qmp coordinator ops libvirt-xml verdict)
  add_executable(test-host-${name} ${CMAKE_CURRENT_LIST_DIR}/test-host-${name}.c
                 ${CMAKE_CURRENT_LIST_DIR}/host-fake-agent.c)
  target_link_libraries(test-host-${name} PRIVATE stillpoint-host PkgConfig::SP_CMOCKA)
  sp_test(NAME host/${name} COMMAND test-host-${name})
  sp_test_properties(host/${name} PROPERTIES TIMEOUT 60)
endforeach()

pkg_check_modules(SP_TEST_HOOKS_GLIB REQUIRED IMPORTED_TARGET glib-2.0)
# The test switches (host/lib/test-hooks.c) built both ways: as in this tree, and without
# SP_TEST_HOOKS, as a shipped binary is built (the -U comes after the tree's -D).
set(sp_test_hooks_src ${CMAKE_CURRENT_LIST_DIR}/../../host/lib/test-hooks.c)
foreach(variant on off)
  add_executable(test-host-test-hooks-${variant} ${CMAKE_CURRENT_LIST_DIR}/test-host-test-hooks.c
                 ${sp_test_hooks_src})
  target_include_directories(test-host-test-hooks-${variant} PRIVATE
                             ${CMAKE_CURRENT_LIST_DIR}/../../host/lib)
  target_compile_definitions(test-host-test-hooks-${variant} PRIVATE _GNU_SOURCE)
  target_link_libraries(test-host-test-hooks-${variant} PRIVATE PkgConfig::SP_TEST_HOOKS_GLIB
                        PkgConfig::SP_CMOCKA)
  sp_test(NAME host/test-hooks-${variant} COMMAND test-host-test-hooks-${variant})
endforeach()
target_compile_options(test-host-test-hooks-off PRIVATE -USP_TEST_HOOKS)
# Nothing outside test-hooks.c reads a test switch.
sp_test(NAME host/test-hooks-only-there
         COMMAND sh -c "! grep -rnE 'STILLPOINT_(TEST_|AGENT_FREEZE_TIMEOUT|HOOK_TIMEOUT)' --include=*.c --include=*.h . | grep -v '^./lib/test-hooks\\.[ch]:'"
         WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/../../host)

# Issue 15: the qemu-img command lines (host/lib/qemu-img.c, internal) and their deadline, with
# the real qemu-img on a raw image holding a hostile qcow2 header.
add_executable(test-host-qemu-img ${CMAKE_CURRENT_LIST_DIR}/test-host-qemu-img.c)
target_include_directories(test-host-qemu-img PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../../host/lib)
target_link_libraries(test-host-qemu-img PRIVATE stillpoint-host PkgConfig::SP_CMOCKA)
sp_test(NAME host/qemu-img COMMAND test-host-qemu-img)
sp_test_properties(host/qemu-img PROPERTIES TIMEOUT 60)

# Issue 15 item 3: safe image directories, exclusive creation and image identity
# (host/lib/image-path.c, internal; the store's identity records), on real directories.
add_executable(test-host-image-path ${CMAKE_CURRENT_LIST_DIR}/test-host-image-path.c)
target_include_directories(test-host-image-path PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../../host/lib)
target_link_libraries(test-host-image-path PRIVATE stillpoint-host PkgConfig::SP_CMOCKA)
sp_test(NAME host/image-path COMMAND test-host-image-path)
sp_test_properties(host/image-path PROPERTIES TIMEOUT 60)
