# The fault-injection suite lives in tests/faults (tests/CMakeLists.txt includes only these dirs).
include(${CMAKE_CURRENT_LIST_DIR}/../faults/faults.cmake)
