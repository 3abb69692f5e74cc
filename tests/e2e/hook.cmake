# e2e/hook/*: the hook driver's example hooks (host/data/examples) against real storage.
#  e2e/hook/lvm-thin  hook-lvm-thin on LVM thin volumes in a storage VM (build-guest --storage: this
#                 machine's kernel has no device-mapper), the test guest's data disk on one of
#                 them over NBD, frozen by stillpoint-agent while the hook snapshots
#                 (tests/e2e/hook_lvm.py).
set(SP_STORAGE_GUEST_DIR ${CMAKE_CURRENT_BINARY_DIR}/guest-storage)
sp_test(NAME guest/build-storage-guest
         COMMAND ${SP_GUEST_SRC}/build-guest --out ${SP_STORAGE_GUEST_DIR} --storage)
sp_test_properties(guest/build-storage-guest PROPERTIES
  LABELS guest FIXTURES_SETUP sp-storage-guest-image TIMEOUT 600)
sp_test(NAME hook/lvm-thin
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/hook_lvm.py
          --guest ${SP_GUEST_DIR} --storage-guest ${SP_STORAGE_GUEST_DIR}
          --run-dir ${CMAKE_CURRENT_BINARY_DIR}/hook-runs/lvm-thin
          --stillpoint $<TARGET_FILE:stillpoint> --workload-bin $<TARGET_FILE:sp-workload>
          --example ${PROJECT_SOURCE_DIR}/host/data/examples/hook-lvm-thin)
sp_test_properties(hook/lvm-thin PROPERTIES
  LABELS "guest;e2e" RESOURCE_LOCK vm TIMEOUT 900
  FIXTURES_REQUIRED "sp-guest-image;sp-storage-guest-image")
