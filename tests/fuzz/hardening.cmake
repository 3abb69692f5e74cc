# Fuzzing of what a hostile peer controls: the Linux agent's command dispatch (real command table
# and backend, faked system calls), and the host's QMP and guest agent clients' handling of
# replies and events. Each target NAME has
#   fuzz-NAME-replay  any compiler: replays the committed corpus tests/fuzz/corpus/NAME (test
#                     fuzz/NAME-replay), or any input given on its command line;
#   fuzz-NAME         clang + libFuzzer (SP_FUZZ=ON): fuzzes for SP_FUZZ_SECONDS from that corpus
#                     (test fuzz/NAME); new inputs go to the build tree, never to the source tree.
# The libraries' sources are compiled into the libFuzzer binaries so that coverage reaches them;
# the libraries are linked too, for their include directories, definitions and dependencies
# (nothing is taken from their archives, every symbol is already defined).
if(NOT DEFINED SP_FUZZ_SECONDS)
  set(SP_FUZZ_SECONDS 20)  # protocol.cmake declares the cache variable; it comes later
endif()

function(sp_hardening_sources ret)
  set(sources)
  foreach(lib IN LISTS ARGN)
    get_target_property(lib_sources ${lib} SOURCES)
    get_target_property(lib_dir ${lib} SOURCE_DIR)
    list(TRANSFORM lib_sources PREPEND ${lib_dir}/)
    list(APPEND sources ${lib_sources})
  endforeach()
  set(${ret} ${sources} PARENT_SCOPE)
endfunction()

# sp_hardening_fuzz(NAME LIBS lib... [EXTRA source...] [MAX_LEN n] [DICT file])
function(sp_hardening_fuzz name)
  cmake_parse_arguments(arg "" "MAX_LEN;DICT" "LIBS;EXTRA" ${ARGN})
  set(source ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/fuzz-${name}.c)
  list(TRANSFORM arg_EXTRA PREPEND ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/)
  list(APPEND source ${arg_EXTRA})
  set(corpus ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/corpus/${name})

  add_executable(fuzz-${name}-replay ${source} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/fuzz-replay.c)
  target_compile_definitions(fuzz-${name}-replay PRIVATE SP_FUZZ_REPLAY)
  target_link_libraries(fuzz-${name}-replay PRIVATE ${arg_LIBS})
  sp_test_files(seeds ${corpus}/*)
  sp_test(NAME ${name}-replay COMMAND fuzz-${name}-replay ${seeds})
  sp_test_properties(${name}-replay PROPERTIES TIMEOUT 120)

  # Inputs that still break a property the target only checks with SP_FUZZ_STRICT=1: each test
  # passes while the replay reports the broken property, and fails once the bug is fixed (then
  # move the input into the corpus and make the check unconditional).
  file(GLOB known_bugs CONFIGURE_DEPENDS ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/known-bugs/${name}-*)
  foreach(input IN LISTS known_bugs)
    get_filename_component(bug ${input} NAME)
    sp_test(NAME known-bug/${bug}
             COMMAND sh -c "\"$0\" \"$1\" 2>&1 | grep 'property failed'"
                     $<TARGET_FILE:fuzz-${name}-replay> ${input})
    sp_test_properties(known-bug/${bug} PROPERTIES TIMEOUT 60
                         ENVIRONMENT "SP_FUZZ_STRICT=1;ASAN_OPTIONS=abort_on_error=1")
  endforeach()

  if(SP_FUZZ AND CMAKE_C_COMPILER_ID STREQUAL "Clang")
    sp_hardening_sources(lib_sources ${arg_LIBS} stillpoint-protocol)
    add_executable(fuzz-${name} ${source} ${lib_sources})
    target_link_libraries(fuzz-${name} PRIVATE ${arg_LIBS})
    target_compile_options(fuzz-${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(fuzz-${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    set(work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-${name}.work)
    file(MAKE_DIRECTORY ${work}/corpus)
    set(extra)
    if(arg_DICT)
      list(APPEND extra -dict=${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${arg_DICT})
    endif()
    sp_test(NAME ${name}
             COMMAND fuzz-${name} -max_total_time=${SP_FUZZ_SECONDS} -max_len=${arg_MAX_LEN}
                     -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 ${extra}
                     -artifact_prefix=${work}/ ${work}/corpus ${corpus})
    math(EXPR timeout "${SP_FUZZ_SECONDS} + 120")
    sp_test_properties(${name} PROPERTIES TIMEOUT ${timeout})
  endif()
endfunction()

sp_hardening_fuzz(agent-commands LIBS stillpoint-agent-linux MAX_LEN 4096
                  DICT agent-commands.dict)
sp_hardening_fuzz(host-qmp LIBS stillpoint-host EXTRA fuzz-peer.c MAX_LEN 16384
                  DICT host-qmp.dict)
sp_hardening_fuzz(host-agent LIBS stillpoint-host EXTRA fuzz-peer.c MAX_LEN 16384
                  DICT host-agent.dict)
