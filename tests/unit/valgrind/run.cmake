# cmake -P script behind the unit/valgrind test (valgrind.cmake): configure and build the
# non-sanitized valgrind tree (only the unit test programs), then run their tests under valgrind.
# Run it by hand the same way to reproduce a report; the tree is kept, so a rerun is incremental.
foreach(var SOURCE_DIR TREE GENERATOR C_COMPILER TEST_HOOKS TARGETS TESTS JOBS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "valgrind/run.cmake: -D${var}=... is missing")
  endif()
endforeach()

function(run what)
  string(TIMESTAMP start "%s")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  string(TIMESTAMP end "%s")
  math(EXPR seconds "${end} - ${start}")
  message(STATUS "unit/valgrind: ${what}: ${seconds} s")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "unit/valgrind: ${what} failed (${rc})")
  endif()
endfunction()

# The environment the suite runs with is for ASan builds; nothing here is built with it.
unset(ENV{ASAN_OPTIONS})
unset(ENV{UBSAN_OPTIONS})
run(configure ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${TREE} -G ${GENERATOR}
    -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_BUILD_TYPE=Debug
    # valgrind 3.19 cannot read all of clang's DWARF 5
    -DCMAKE_C_FLAGS=-gdwarf-4
    -DSP_SANITIZE=OFF -DSP_FUZZ=OFF -DSP_TEST_HOOKS=${TEST_HOOKS} -DSP_WERROR=ON -DSP_VALGRIND_TREE=ON -DSP_WINDOWS_BUILD_DIR=)
run(build ${CMAKE_COMMAND} --build ${TREE} -j ${JOBS} --target ${TARGETS})
run("unit tests under valgrind" ${CMAKE_CTEST_COMMAND} --test-dir ${TREE} -R "${TESTS}"
    -j ${JOBS} --output-on-failure --timeout 600)
