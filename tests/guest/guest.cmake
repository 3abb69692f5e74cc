# The test guest (see "Booting the test guest by hand" in README.md): a Debian kernel and a
# busybox initramfs booted under QEMU TCG, with stock qemu-ga or stillpoint-agent on virtio-serial.
set(SP_GUEST_SRC ${CMAKE_CURRENT_SOURCE_DIR}/guest)

# The in-guest workload runs alone in the initramfs: static, and without the sanitizers the rest
# of the tree is built with (their runtimes do not link statically with glibc's libc.a).
add_executable(sp-workload ${SP_GUEST_SRC}/workload.c)
target_compile_options(sp-workload PRIVATE -fno-sanitize=all -O2)
target_link_options(sp-workload PRIVATE -fno-sanitize=all -static -pthread)

# A guest process that talks to the agent over vsock_loopback (the agent must refuse it).
add_executable(sp-vsock-probe ${SP_GUEST_SRC}/vsock-probe.c)
target_compile_options(sp-vsock-probe PRIVATE -fno-sanitize=all -O2)
target_link_options(sp-vsock-probe PRIVATE -fno-sanitize=all -static)

# The record checker on the host, no VM.
sp_test(NAME workload-checker COMMAND /usr/bin/python3 ${SP_GUEST_SRC}/test_workload.py
                                             $<TARGET_FILE:sp-workload>)
sp_test_properties(workload-checker PROPERTIES LABELS guest TIMEOUT 60)

# build-guest runs as the fixture of the guest tests: it downloads the Debian kernel and qemu-ga
# once (cached in the build tree) and rebuilds the initramfs only when an input changed.
set(SP_GUEST_DIR ${CMAKE_CURRENT_BINARY_DIR}/guest)
set(sp_guest_build_args --out ${SP_GUEST_DIR} --workload $<TARGET_FILE:sp-workload>
                        --probe $<TARGET_FILE:sp-vsock-probe>)
set(sp_guest_agents qemu-ga)
list(APPEND sp_guest_build_args --agent $<TARGET_FILE:stillpoint-agent>)
list(APPEND sp_guest_agents stillpoint)
sp_test(NAME build-guest COMMAND ${SP_GUEST_SRC}/build-guest ${sp_guest_build_args})
sp_test_properties(build-guest PROPERTIES
  LABELS guest FIXTURES_SETUP sp-guest-image TIMEOUT 600)

sp_test(NAME runner-leaves-no-qemu
  COMMAND /usr/bin/python3 ${SP_GUEST_SRC}/test_runner.py
          --guest ${SP_GUEST_DIR} --run-dir ${CMAKE_CURRENT_BINARY_DIR}/guest-runs/runner)
sp_test_properties(runner-leaves-no-qemu PROPERTIES
  LABELS guest RESOURCE_LOCK vm FIXTURES_REQUIRED sp-guest-image TIMEOUT 240)

# Each test boots one VM; RESOURCE_LOCK vm keeps VMs (also the e2e tests') from running at once.
# The standard-command tests run against both agents (the fair comparison); the stillpoint-
# extension tests against stillpoint-agent only.
set(sp_guest_tests_qemu-ga boot-ping fsinfo-serials freeze-blocks-writes-loses-none)
set(sp_guest_tests_stillpoint ${sp_guest_tests_qemu-ga}
    leased-freeze-by-disk-is-consistent lease-expiry-thaws-by-itself vsock-loopback-is-refused
    qemu-ga-beside)
foreach(agent IN LISTS sp_guest_agents)
  foreach(test IN LISTS sp_guest_tests_${agent})
    sp_test(NAME ${agent}/${test}
      COMMAND /usr/bin/python3 ${SP_GUEST_SRC}/test_guest.py
              --guest ${SP_GUEST_DIR} --run-dir ${CMAKE_CURRENT_BINARY_DIR}/guest-runs/${agent}-${test}
              --workload-bin $<TARGET_FILE:sp-workload> --agent ${agent} ${test})
    sp_test_properties(${agent}/${test} PROPERTIES
      LABELS guest RESOURCE_LOCK vm FIXTURES_REQUIRED sp-guest-image TIMEOUT 240)
  endforeach()
endforeach()
