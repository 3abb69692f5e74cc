# stillpointd: the coordinator on the system bus, with polkit roles. Its interface is defined
# once, in data/org.stillpoint.Coordinator1.xml, and generated with gdbus-codegen.
pkg_check_modules(SP_DAEMON_DEPS REQUIRED IMPORTED_TARGET gio-2.0 gio-unix-2.0 polkit-gobject-1)
find_program(SP_GDBUS_CODEGEN gdbus-codegen REQUIRED)

add_custom_command(
  OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/sp-coordinator1-generated.c
         ${CMAKE_CURRENT_BINARY_DIR}/sp-coordinator1-generated.h
  COMMAND ${SP_GDBUS_CODEGEN} --interface-prefix org.stillpoint. --c-namespace Sp
          --c-generate-autocleanup all --generate-c-code sp-coordinator1-generated
          ${CMAKE_CURRENT_SOURCE_DIR}/data/org.stillpoint.Coordinator1.xml
  DEPENDS data/org.stillpoint.Coordinator1.xml
  WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}
  COMMENT "gdbus-codegen org.stillpoint.Coordinator1.xml")
add_library(stillpoint-daemon-dbus STATIC ${CMAKE_CURRENT_BINARY_DIR}/sp-coordinator1-generated.c)
target_include_directories(stillpoint-daemon-dbus PUBLIC ${CMAKE_CURRENT_BINARY_DIR})
target_link_libraries(stillpoint-daemon-dbus PUBLIC PkgConfig::SP_DAEMON_DEPS)
target_compile_options(stillpoint-daemon-dbus PRIVATE -w)  # generated code

add_executable(stillpointd src/stillpointd.c src/daemon-ops.c src/daemon-authority.c
               src/daemon-authority-polkit.c src/cli-render.c)
target_link_libraries(stillpointd PRIVATE stillpoint-host stillpoint-daemon-dbus PkgConfig::SP_DAEMON_DEPS)
# The CLI's way through the daemon (stillpoint --daemon, or automatically when not root).
target_sources(stillpoint PRIVATE src/daemon-client.c)
# ApplyCheckpoint answers "not in this build" until the library has checkpoint apply.
get_target_property(sp_host_sources stillpoint-host SOURCES)
if("src/op-apply.c" IN_LIST sp_host_sources)
  target_compile_definitions(stillpointd PRIVATE SP_HAVE_OP_APPLY)
endif()

set(SP_POLKIT_ACTIONS_DIR "share/polkit-1/actions" CACHE STRING "Where polkit actions are installed")
set(SP_DAEMON_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING "Where stillpointd's unit is installed")
configure_file(data/stillpointd.service.in stillpointd.service @ONLY)
configure_file(data/org.stillpoint.Coordinator1.service.in org.stillpoint.Coordinator1.service @ONLY)
install(TARGETS stillpointd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(FILES data/stillpointd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES data/org.stillpoint.Coordinator1.conf DESTINATION share/dbus-1/system.d)
install(FILES data/org.stillpoint.Coordinator1.xml DESTINATION ${CMAKE_INSTALL_DATADIR}/dbus-1/interfaces)
install(FILES data/org.stillpoint.policy DESTINATION ${SP_POLKIT_ACTIONS_DIR})
install(FILES data/50-stillpoint-backup.rules DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/stillpoint/examples)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/stillpointd.service DESTINATION ${SP_DAEMON_SYSTEMD_UNIT_DIR})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/org.stillpoint.Coordinator1.service
        DESTINATION ${CMAKE_INSTALL_DATADIR}/dbus-1/system-services)
