# Fuzzing of the Linux agent's mount table parser and freeze planner. fuzz-mountinfo-replay (any
# compiler) replays the mountinfo fixtures as a regular test; fuzz-mountinfo (clang + libFuzzer,
# SP_FUZZ=ON) fuzzes for SP_FUZZ_SECONDS (protocol.cmake) starting from them.
if(NOT DEFINED SP_FUZZ_SECONDS)
  set(SP_FUZZ_SECONDS 20)  # protocol.cmake declares the cache variable; it may come later
endif()
set(sp_agent_fuzz_sources ${PROJECT_SOURCE_DIR}/agent-linux/src/mountinfo.c
                          ${PROJECT_SOURCE_DIR}/agent-linux/src/planner.c)
set(sp_mountinfo_corpus ${CMAKE_CURRENT_LIST_DIR}/../unit/fixtures/mountinfo)

add_executable(fuzz-mountinfo-replay ${CMAKE_CURRENT_LIST_DIR}/fuzz-mountinfo.c
               ${CMAKE_CURRENT_LIST_DIR}/fuzz-replay.c ${sp_agent_fuzz_sources})
target_include_directories(fuzz-mountinfo-replay PRIVATE ${PROJECT_SOURCE_DIR}/agent-linux/src)
sp_test_files(sp_mountinfo_seeds ${sp_mountinfo_corpus}/*)
sp_test(NAME agent-mountinfo-replay COMMAND fuzz-mountinfo-replay ${sp_mountinfo_seeds})

if(SP_FUZZ AND CMAKE_C_COMPILER_ID STREQUAL "Clang")
  add_executable(fuzz-mountinfo ${CMAKE_CURRENT_LIST_DIR}/fuzz-mountinfo.c ${sp_agent_fuzz_sources})
  target_include_directories(fuzz-mountinfo PRIVATE ${PROJECT_SOURCE_DIR}/agent-linux/src)
  target_compile_options(fuzz-mountinfo PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz-mountinfo PRIVATE -fsanitize=fuzzer,address,undefined)
  set(sp_mountinfo_work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-mountinfo.work)
  file(MAKE_DIRECTORY ${sp_mountinfo_work}/corpus)
  sp_test(NAME agent-mountinfo
           COMMAND fuzz-mountinfo -max_total_time=${SP_FUZZ_SECONDS} -max_len=8192 -timeout=10
                   -rss_limit_mb=2048 -artifact_prefix=${sp_mountinfo_work}/
                   ${sp_mountinfo_work}/corpus ${sp_mountinfo_corpus})
  math(EXPR sp_mountinfo_timeout "${SP_FUZZ_SECONDS} + 120")
  sp_test_properties(agent-mountinfo PROPERTIES TIMEOUT ${sp_mountinfo_timeout})
endif()
