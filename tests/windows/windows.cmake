# The Windows agent's tests: the mingw-w64 binaries of SP_WINDOWS_BUILD_DIR (a tree with
# SP_TEST_HOOKS: the agent, its provider DLL, and the test programs of this folder, built by its
# CMakeLists.txt there) run under wine (which has no VSS: they use the fake VSS backend); a tree
# built as shipped, without the test hooks; and the protocol conformance test that drives both
# agents.
set(SP_WINE_TESTS_DIR ${CMAKE_CURRENT_LIST_DIR})
set(SP_CONFORMANCE ${CMAKE_CURRENT_LIST_DIR}/../conformance/agent-conformance.py)
set(SP_PYTHON /usr/bin/python3)
# The Windows binaries as they ship (tests/windows/shipped-build.sh builds them).
set(SP_WINDOWS_SHIPPED_DIR ${CMAKE_BINARY_DIR}/windows-shipped)

find_program(SP_WINE wine)
if(SP_WINDOWS_BUILD_DIR AND SP_WINE)
  set(winexe ${SP_WINDOWS_BUILD_DIR}/agent-windows)      # the agent and its provider DLL
  set(wintests ${SP_WINDOWS_BUILD_DIR}/tests/windows)    # the test programs (CMakeLists.txt)
  set(wineprefix ${CMAKE_BINARY_DIR}/wineprefix)
  set(winerun ${SP_WINE_TESTS_DIR}/wine-run.sh ${wineprefix})

  # The prefix and its one persistent wineserver for the whole run (wine-run.sh says why),
  # stopped when the last test that needs it is done.
  sp_test(NAME wineprefix COMMAND ${winerun} 300 --init)
  sp_test_properties(wineprefix PROPERTIES FIXTURES_SETUP wine TIMEOUT 320)
  sp_test(NAME wineserver-stop COMMAND ${winerun} 60 --stop)
  sp_test_properties(wineserver-stop PROPERTIES FIXTURES_CLEANUP wine TIMEOUT 90)

  sp_test(NAME vss-freezer COMMAND ${winerun} 60 ${wintests}/test-vss-freezer.exe)
  sp_test_properties(vss-freezer PROPERTIES FIXTURES_REQUIRED wine TIMEOUT 90)

  # The provider test and the real-backend agent both create the named events of the wine
  # prefix's Global namespace: never at the same time.
  sp_test(NAME vss-provider COMMAND ${winerun} 60 ${wintests}/test-provider.exe
                   Z:${winexe}/stillpoint-vss-provider.dll)
  sp_test_properties(vss-provider PROPERTIES FIXTURES_REQUIRED wine TIMEOUT 90
                       RESOURCE_LOCK stillpoint-vss-events)

  sp_test(NAME transport-serial
           COMMAND ${winerun} 60 ${wintests}/test-transport-serial.exe)
  sp_test_properties(transport-serial PROPERTIES FIXTURES_REQUIRED wine TIMEOUT 90)

  sp_test(NAME state-dir
           COMMAND ${SP_WINE_TESTS_DIR}/state-dir.sh ${SP_WINE_TESTS_DIR}/wine-run.sh ${wineprefix}
                   60 ${wintests}/test-state-dir.exe)
  sp_test_properties(state-dir PROPERTIES FIXTURES_REQUIRED wine TIMEOUT 90)

  sp_test(NAME agent-help COMMAND ${winerun} 30 ${winexe}/stillpoint-agent.exe --help)
  sp_test_properties(agent-help PROPERTIES FIXTURES_REQUIRED wine TIMEOUT 60
                       PASS_REGULAR_EXPRESSION "--install.*--uninstall.*--fake-vss")

  # The shared conformance test, against the agent on its fake VSS (harmless: --freeze).
  sp_test(NAME agent-conformance
           COMMAND ${SP_PYTHON} ${SP_CONFORMANCE} --connect tcp:127.0.0.1:{port} --freeze
                   --timeout 60 --
                   ${winerun} 120 ${winexe}/stillpoint-agent.exe --tcp 127.0.0.1:{port}
                   --fake-vss)
  sp_test_properties(agent-conformance PROPERTIES FIXTURES_REQUIRED wine TIMEOUT 180)

  # VSS outcomes through the protocol: writer failure, the hold limit, a failing VSS call,
  # disk selection; and the real backend, which must refuse to freeze under wine.
  sp_test(NAME agent-vss-scenarios
           COMMAND ${SP_PYTHON} ${SP_WINE_TESTS_DIR}/agent-vss-scenarios.py --timeout 60
                   --backend fake -- ${winerun} 120 ${winexe}/stillpoint-agent.exe
                   --tcp 127.0.0.1:{port})
  sp_test_properties(agent-vss-scenarios PROPERTIES FIXTURES_REQUIRED wine TIMEOUT 300)
  sp_test(NAME agent-real-vss-under-wine
           COMMAND ${SP_PYTHON} ${SP_WINE_TESTS_DIR}/agent-vss-scenarios.py --timeout 60
                   --backend real -- ${winerun} 120 ${winexe}/stillpoint-agent.exe
                   --tcp 127.0.0.1:{port})
  sp_test_properties(agent-real-vss-under-wine PROPERTIES FIXTURES_REQUIRED wine
                       TIMEOUT 120 RESOURCE_LOCK stillpoint-vss-events)

  # The agent as shipped (built without SP_TEST_HOOKS): --fake-vss is an unknown option, and
  # STILLPOINT_VSS=fake / STILLPOINT_FAKE_VSS leave it on the real VSS.
  sp_test(NAME shipped-agent-no-fake
           COMMAND ${SP_PYTHON} ${SP_WINE_TESTS_DIR}/agent-vss-scenarios.py --timeout 60
                   --backend shipped -- ${winerun} 120
                   ${SP_WINDOWS_SHIPPED_DIR}/agent-windows/stillpoint-agent.exe
                   --tcp 127.0.0.1:{port})
  sp_test_properties(shipped-agent-no-fake PROPERTIES
                       FIXTURES_REQUIRED "wine;windows-shipped" TIMEOUT 120
                       RESOURCE_LOCK stillpoint-vss-events)
endif()

if(SP_WINDOWS_BUILD_DIR)
  # A mingw-w64 tree of this source as it ships: without SP_TEST_HOOKS.
  sp_test(NAME shipped-build
           COMMAND ${SP_WINE_TESTS_DIR}/shipped-build.sh ${CMAKE_COMMAND} ${CMAKE_SOURCE_DIR}
                   ${SP_WINDOWS_SHIPPED_DIR})
  sp_test_properties(shipped-build PROPERTIES FIXTURES_SETUP windows-shipped
                       TIMEOUT 600)
  # Not even the fake's name is in the shipped binaries.
  sp_test(NAME shipped-binaries-no-fake
           COMMAND sh -c "! grep -a -l -e fake-vss -e STILLPOINT_FAKE_VSS -e STILLPOINT_VSS \"$@\""
                   sh ${SP_WINDOWS_SHIPPED_DIR}/agent-windows/stillpoint-agent.exe
                   ${SP_WINDOWS_SHIPPED_DIR}/agent-windows/stillpoint-vss-provider.dll)
  sp_test_properties(shipped-binaries-no-fake PROPERTIES
                       FIXTURES_REQUIRED windows-shipped TIMEOUT 30)
  # The installer layout of what ships (no wine needed).
  sp_test(NAME install-layout
           COMMAND ${SP_WINE_TESTS_DIR}/check-install.sh ${CMAKE_COMMAND} ${SP_WINDOWS_SHIPPED_DIR}
                   ${CMAKE_CURRENT_BINARY_DIR}/windows-install)
  sp_test_properties(install-layout PROPERTIES FIXTURES_REQUIRED windows-shipped)
endif()

if(SP_WINDOWS_BUILD_DIR AND NOT SP_WINE)
  message(FATAL_ERROR "SP_WINDOWS_BUILD_DIR is set but wine is not found: the Windows agent's "
                      "tests would not run (scripts/deps installs wine)")
endif()
