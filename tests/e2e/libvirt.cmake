# libvirt/*: libvirt talking to stillpoint-agent (tests/e2e/libvirt.sh): the test guest as a
# libvirt QEMU TCG domain on a private session libvirtd; virsh domfsfreeze/domfsthaw/domfsinfo and
# snapshot-create-as --disk-only --quiesce through our agent. Skips without libvirt installed.
if(DEFINED SP_GUEST_DIR AND TARGET stillpoint-agent)
  add_test(NAME libvirt/agent-interop COMMAND ${CMAKE_CURRENT_LIST_DIR}/libvirt.sh ${SP_GUEST_DIR})
  set_tests_properties(libvirt/agent-interop PROPERTIES
    LABELS "guest;e2e" RESOURCE_LOCK vm FIXTURES_REQUIRED sp-guest-image TIMEOUT 300
    SKIP_RETURN_CODE 77)
endif()
