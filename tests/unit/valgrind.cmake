# Valgrind (memcheck) over the unit tests, with zero reports. Valgrind and ASan do not mix, so the
# test valgrind/unit configures and builds a separate tree without sanitizers in
# ${CMAKE_BINARY_DIR}/valgrind-tree, with just the unit test programs, and runs their tests there
# under valgrind --error-exitcode=1 --leak-check=full (tests/unit/valgrind/run.cmake).
# This fragment sorts last in tests/unit/, so every unit test is registered by now; the later
# groups (integration, guest, e2e, fuzz) are not unit tests and are not included.
find_program(SP_VALGRIND valgrind)

# hostile/* measure deadlines and memory; valgrind's 20-50x slowdown is not what they measure.
get_property(sp_valgrind_tests DIRECTORY PROPERTY TESTS)
list(FILTER sp_valgrind_tests EXCLUDE REGEX "^hostile/")
get_property(sp_valgrind_targets DIRECTORY PROPERTY BUILDSYSTEM_TARGETS)
list(FILTER sp_valgrind_targets INCLUDE REGEX "^test-")
list(FILTER sp_valgrind_targets EXCLUDE REGEX "^test-hostile-")

if(SP_VALGRIND_TREE)
  # Inside the valgrind tree: ctest runs each unit test program through valgrind.
  foreach(target IN LISTS sp_valgrind_targets)
    set_property(TARGET ${target} PROPERTY CROSSCOMPILING_EMULATOR
                 ${SP_VALGRIND} --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible
                 --track-fds=no --quiet
                 --suppressions=${CMAKE_CURRENT_LIST_DIR}/valgrind/valgrind.supp)
  endforeach()
elseif(SP_VALGRIND)
  cmake_host_system_information(RESULT sp_valgrind_jobs QUERY NUMBER_OF_LOGICAL_CORES)
  string(REPLACE ";" "|" sp_valgrind_regex "${sp_valgrind_tests}")
  add_test(NAME valgrind/unit
           COMMAND ${CMAKE_COMMAND}
                   -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
                   -DTREE=${CMAKE_BINARY_DIR}/valgrind-tree
                   -DGENERATOR=${CMAKE_GENERATOR}
                   -DC_COMPILER=${CMAKE_C_COMPILER}
                   "-DTARGETS=${sp_valgrind_targets}"
                   "-DTESTS=^(${sp_valgrind_regex})$"
                   -DJOBS=${sp_valgrind_jobs}
                   -P ${CMAKE_CURRENT_LIST_DIR}/valgrind/run.cmake)
  set_tests_properties(valgrind/unit PROPERTIES TIMEOUT 900 RUN_SERIAL FALSE)
endif()
