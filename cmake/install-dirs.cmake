# Where the system services look for stillpoint's files: systemd's units, udev's rules, polkit's
# actions and D-Bus' policies and activation files. These come from the services' own pkg-config
# files (as udisks and fwupd do), not from the install prefix: a `cmake --install` with the
# default prefix /usr/local must not put a bus policy in /usr/local/share/dbus-1, where dbus-daemon
# never looks. Each is a cache variable, so a packager or a test can still set it (-DSP_...=DIR).

# sp_service_dir(VAR MODULE PC_VARIABLE SUFFIX DOC): VAR = MODULE's PC_VARIABLE + SUFFIX.
function(sp_service_dir var module pc_variable suffix doc)
  # A value given by hand is kept. (Older trees cached prefix-relative defaults such as
  # "lib/systemd/system": those are resolved again.)
  if(DEFINED CACHE{${var}} AND IS_ABSOLUTE "${${var}}")
    return()
  endif()
  pkg_check_modules(_sp_${module} QUIET ${module})
  if(NOT _sp_${module}_FOUND)
    message(FATAL_ERROR "${var}: ${module}.pc not found, which says where to install (${doc}). "
            "Install it (Debian: scripts/deps) or give the directory with -D${var}=DIR.")
  endif()
  pkg_get_variable(dir ${module} ${pc_variable})
  if(dir STREQUAL "")
    message(FATAL_ERROR "${var}: ${module}.pc has no variable '${pc_variable}' (${doc}). "
            "Give the directory with -D${var}=DIR.")
  endif()
  set(${var} "${dir}${suffix}" CACHE PATH "${doc} (from ${module}.pc)" FORCE)
endfunction()

sp_service_dir(SP_SYSTEMD_UNIT_DIR systemd systemdsystemunitdir "" "systemd system units")
sp_service_dir(SP_SYSUSERS_DIR systemd sysusersdir "" "sysusers.d files (the groups)")
sp_service_dir(SP_TMPFILES_DIR systemd tmpfilesdir "" "tmpfiles.d files (the state directory)")
sp_service_dir(SP_UDEV_RULES_DIR udev udevdir "/rules.d" "udev rules")
sp_service_dir(SP_POLKIT_ACTIONS_DIR polkit-gobject-1 policydir "" "polkit actions")
sp_service_dir(SP_DBUS_SYSTEM_POLICY_DIR dbus-1 datadir "/dbus-1/system.d" "D-Bus system bus policies")
sp_service_dir(SP_DBUS_SYSTEM_SERVICES_DIR dbus-1 system_bus_services_dir ""
               "D-Bus system bus activation files")
sp_service_dir(SP_DBUS_INTERFACES_DIR dbus-1 interfaces_dir "" "D-Bus interface definitions")
sp_service_dir(SP_BASH_COMPLETION_DIR bash-completion completionsdir "" "bash completions")
