# distro/*: stillpoint-agent installed from its .deb (package/build) into a real Debian 12 system
# made by mmdebstrap (tests/distro/build-distro), booted under QEMU TCG with the test guest's
# Debian kernel (guest/build-guest), driven by the stillpoint CLI. Label "distro".
#   distro/build-image   the image, cached in $SP_GUEST_CACHE/distro by its inputs (minutes when
#                        they changed: mmdebstrap downloads and installs ~200 packages)
#   distro/udev          udev starts the agent when the port appears; journald has its logs;
#                        qemu-ga's commands are forwarded to qemu-ga beside it
#   distro/freeze-root   a checkpoint through the sandboxed unit freezes the real root filesystem
#                        and runs the PostgreSQL hook
#   distro/postgresql    checkpoints while PostgreSQL commits: the export boots, PostgreSQL
#                        starts and holds every transaction committed before the checkpoint
#   distro/libvirt       the guest as a libvirt domain (a private session libvirtd): virsh
#                        domifaddr --source agent, domtime, shutdown --mode agent answered through
#                        stillpoint-agent; domfsfreeze and snapshot --quiesce are its freezes
#   distro/polkit        the image as a host: stillpointd from the .deb, started by D-Bus
#                        activation, with the real polkitd and the shipped policy and rule: the
#                        backup group creates and exports and is refused delete; others refused;
#                        the group's schedule through stillpointd is enabled under systemd
#   distro/schedule      schedule create enables a timer that fires; list shows next, last run and
#                        result, a failed run in list and journal; remove disables and deletes
set(SP_DISTRO_DIR ${CMAKE_CURRENT_BINARY_DIR}/distro)
sp_test(NAME build-image
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/build-distro --debs ${SP_DEB_DIR} --out ${SP_DISTRO_DIR})
sp_test_properties(build-image PROPERTIES
  LABELS distro FIXTURES_SETUP sp-distro-image FIXTURES_REQUIRED sp-debs
  RESOURCE_LOCK sp-deb-dir TIMEOUT 1200)

foreach(case udev freeze-root postgresql libvirt polkit schedule)
  sp_test(NAME ${case}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_distro.py
            --guest ${SP_GUEST_DIR} --distro ${SP_DISTRO_DIR}
            --run-dir ${CMAKE_CURRENT_BINARY_DIR}/distro-runs/${case}
            --stillpoint $<TARGET_FILE:stillpoint> ${case})
  sp_test_properties(${case} PROPERTIES
    LABELS distro RESOURCE_LOCK vm FIXTURES_REQUIRED "sp-distro-image;sp-guest-image" TIMEOUT 600)
endforeach()
