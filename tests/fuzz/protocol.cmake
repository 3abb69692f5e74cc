# Fuzzing of libstillpoint-protocol. fuzz-protocol-replay (any compiler) replays the committed
# corpus as a regular test; fuzz-protocol (clang + libFuzzer, SP_FUZZ=ON) fuzzes for a bounded time.
set(SP_FUZZ_SECONDS 20 CACHE STRING "Seconds each libFuzzer target runs in the test suite")
set(sp_protocol_corpus ${CMAKE_CURRENT_LIST_DIR}/corpus/protocol)

add_executable(fuzz-protocol-replay ${CMAKE_CURRENT_LIST_DIR}/fuzz-protocol.c
               ${CMAKE_CURRENT_LIST_DIR}/fuzz-replay.c)
target_link_libraries(fuzz-protocol-replay PRIVATE stillpoint-protocol)
sp_test_files(sp_protocol_seeds ${sp_protocol_corpus}/*)
sp_test(NAME protocol-replay COMMAND fuzz-protocol-replay ${sp_protocol_seeds})

if(SP_FUZZ AND CMAKE_C_COMPILER_ID STREQUAL "Clang")
  # The library's sources are compiled into the target so that libFuzzer's coverage
  # instrumentation reaches them; the shipped library stays uninstrumented.
  get_target_property(sp_protocol_sources stillpoint-protocol SOURCES)
  get_target_property(sp_protocol_dir stillpoint-protocol SOURCE_DIR)
  list(TRANSFORM sp_protocol_sources PREPEND ${sp_protocol_dir}/)
  add_executable(fuzz-protocol ${CMAKE_CURRENT_LIST_DIR}/fuzz-protocol.c ${sp_protocol_sources})
  target_include_directories(fuzz-protocol PRIVATE ${sp_protocol_dir}/include)
  target_compile_options(fuzz-protocol PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz-protocol PRIVATE -fsanitize=fuzzer,address,undefined)
  find_library(SP_FUZZ_LIBM m)
  if(SP_FUZZ_LIBM)
    target_link_libraries(fuzz-protocol PRIVATE ${SP_FUZZ_LIBM})
  endif()

  # New inputs go to a scratch directory in the build tree (the first corpus directory);
  # the committed seeds are only read. Crashes are written next to it.
  set(sp_fuzz_work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-protocol.work)
  file(MAKE_DIRECTORY ${sp_fuzz_work}/corpus)
  sp_test(NAME protocol
           COMMAND fuzz-protocol -max_total_time=${SP_FUZZ_SECONDS} -max_len=4096 -timeout=10
                   -rss_limit_mb=2048 -print_final_stats=1
                   -dict=${CMAKE_CURRENT_LIST_DIR}/protocol.dict
                   -artifact_prefix=${sp_fuzz_work}/
                   ${sp_fuzz_work}/corpus ${sp_protocol_corpus})
  math(EXPR sp_fuzz_timeout "${SP_FUZZ_SECONDS} + 120")
  sp_test_properties(protocol PROPERTIES TIMEOUT ${sp_fuzz_timeout})
endif()
