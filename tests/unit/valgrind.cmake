# Valgrind (memcheck) over the unit tests and the fuzz corpora's replays, with zero reports.
# Valgrind and ASan do not mix, so the test unit/valgrind configures and builds a separate tree
# without sanitizers in ${CMAKE_BINARY_DIR}/valgrind-tree, with just those test programs, and runs
# their tests there under valgrind --error-exitcode=1 --leak-check=full (valgrind/run.cmake).
# This fragment sorts last in tests/unit/, so every unit test is registered by now; the later
# groups (integration, guest, e2e) are not unit tests and are not included.
find_program(SP_VALGRIND valgrind)
# The main tree is built with clang; the valgrind tree with gcc when there is one, so the unit
# tests also run from a second compiler (an argument-evaluation-order bug showed only with gcc).
find_program(SP_VALGRIND_CC NAMES gcc cc)
if(NOT SP_VALGRIND_CC)
  set(SP_VALGRIND_CC ${CMAKE_C_COMPILER})
endif()

# unit/hostile/* measure deadlines and memory; valgrind's 20-50x slowdown is not what they measure.
# unit/host/man-pages reads the CLI's --help: the CLI is not built in the valgrind tree.
# unit/agent/hooks proves that fexecve runs the file that was checked, not what the path names later;
# valgrind 3.19 emulates execveat(fd) by reopening the fd's path, the very race the test closes.
get_property(sp_valgrind_tests DIRECTORY PROPERTY TESTS)
list(FILTER sp_valgrind_tests EXCLUDE REGEX "^unit/hostile/|^unit/host/man-pages$|^unit/agent/hooks$")
get_property(sp_valgrind_targets DIRECTORY PROPERTY BUILDSYSTEM_TARGETS)
list(FILTER sp_valgrind_targets INCLUDE REGEX "^test-")
list(FILTER sp_valgrind_targets EXCLUDE REGEX "^test-hostile-")

# The fuzz targets' replays of their corpora (tests/fuzz/, registered later) run under valgrind
# too: it sees uninitialised reads, which ASan does not. They are collected when the whole
# directory is done. A deferred call runs as if from tests/CMakeLists.txt: the test it registers
# is named from this fragment's folder, as sp_test() would name it here.
set(sp_valgrind_list_dir ${CMAKE_CURRENT_LIST_DIR})
function(sp_valgrind_finish)
  set(sp_test_list_dir ${sp_valgrind_list_dir})
  get_property(tests DIRECTORY PROPERTY TESTS)
  list(FILTER tests INCLUDE REGEX "fuzz.*-replay$")
  get_property(targets DIRECTORY PROPERTY BUILDSYSTEM_TARGETS)
  list(FILTER targets INCLUDE REGEX "^fuzz-.*-replay$")
  list(APPEND tests ${sp_valgrind_tests})
  list(APPEND targets ${sp_valgrind_targets})
  if(SP_VALGRIND_TREE)
    # Inside the valgrind tree: ctest runs each of these programs through valgrind.
    foreach(target IN LISTS targets)
      set_property(TARGET ${target} PROPERTY CROSSCOMPILING_EMULATOR
                   ${SP_VALGRIND} --error-exitcode=1 --leak-check=full
                   --errors-for-leak-kinds=definite,possible --quiet
                   --suppressions=${PROJECT_SOURCE_DIR}/tests/unit/valgrind/valgrind.supp)
    endforeach()
  elseif(SP_VALGRIND)
    cmake_host_system_information(RESULT jobs QUERY NUMBER_OF_LOGICAL_CORES)
    string(REPLACE ";" "|" regex "${tests}")
    sp_test(NAME valgrind
             COMMAND ${CMAKE_COMMAND}
                     -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
                     -DTREE=${CMAKE_BINARY_DIR}/valgrind-tree
                     -DGENERATOR=${CMAKE_GENERATOR}
                     -DC_COMPILER=${SP_VALGRIND_CC}
                     -DTEST_HOOKS=${SP_TEST_HOOKS}
                     "-DTARGETS=${targets}"
                     "-DTESTS=^(${regex})$"
                     -DJOBS=${jobs}
                     -P ${PROJECT_SOURCE_DIR}/tests/unit/valgrind/run.cmake)
    sp_test_properties(valgrind PROPERTIES TIMEOUT 900)
  endif()
endfunction()
cmake_language(DEFER CALL sp_valgrind_finish)
