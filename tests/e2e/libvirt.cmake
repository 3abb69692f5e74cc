# e2e/libvirt/*: libvirt talking to stillpoint-agent (tests/e2e/libvirt.sh): the test guest as a
# libvirt QEMU TCG domain on a private session libvirtd; virsh domfsfreeze/domfsthaw/domfsinfo and
# snapshot-create-as --disk-only --quiesce through our agent; and stillpoint's libvirt driver
# (create, list, delete, rollback) against that daemon, and a consistency group of two libvirt
# domains each named by its own URI. Skips without libvirt installed.
foreach(case IN ITEMS agent-interop driver driver-qga group standard incremental)
  sp_test(NAME libvirt/${case}
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/libvirt.sh ${SP_GUEST_DIR} ${case})
  sp_test_properties(libvirt/${case} PROPERTIES
    LABELS "guest;e2e" RESOURCE_LOCK vm FIXTURES_REQUIRED sp-guest-image TIMEOUT 300
    SKIP_RETURN_CODE 77
    ENVIRONMENT "SP_STILLPOINT=$<TARGET_FILE:stillpoint>;SP_WORKLOAD=$<TARGET_FILE:sp-workload>")
endforeach()
