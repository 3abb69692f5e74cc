# Cross-compile the Windows parts (protocol library, agent-windows) with mingw-w64.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(SP_MINGW_PREFIX x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${SP_MINGW_PREFIX}-gcc-posix)
set(CMAKE_CXX_COMPILER ${SP_MINGW_PREFIX}-g++-posix)
set(CMAKE_RC_COMPILER ${SP_MINGW_PREFIX}-windres)
set(CMAKE_FIND_ROOT_PATH /usr/${SP_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# Static runtime: the binaries run under wine and on Windows without extra DLLs.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc")
