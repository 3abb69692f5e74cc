# package/*: the Debian packages (scripts/package, debian/) and the install layout.
#   package/build           scripts/package into the build tree (the fixture of package/* and distro/*)
#   package/lintian         lintian on both packages: no error, no warning (reviewed ones are
#                           overridden in debian/*.lintian-overrides, each with its reason)
#   package/contents        what each package holds: conffiles, no sanitizer, no test switch
#   package/install-layout  `cmake --install` of this tree into a DESTDIR: units, rules, policies
#                           and activation files where systemd, udev, polkitd and dbus-daemon look
set(SP_DEB_DIR ${CMAKE_BINARY_DIR}/deb)
sp_test(NAME build
         COMMAND ${PROJECT_SOURCE_DIR}/scripts/package --no-deps --out ${SP_DEB_DIR})
sp_test_properties(build PROPERTIES
  LABELS package FIXTURES_SETUP sp-debs TIMEOUT 1200 RESOURCE_LOCK sp-deb-dir)

sp_test(NAME lintian
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/check-debs.py lintian ${SP_DEB_DIR})
sp_test(NAME contents
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/check-debs.py contents ${SP_DEB_DIR})
sp_test_properties(lintian contents PROPERTIES
  LABELS package FIXTURES_REQUIRED sp-debs TIMEOUT 600)

sp_test(NAME install-layout
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/check-install.py
                 --build ${CMAKE_BINARY_DIR} --prefix ${CMAKE_INSTALL_PREFIX}
                 --sysconfdir ${CMAKE_INSTALL_FULL_SYSCONFDIR}
                 --agent $<TARGET_FILE:stillpoint-agent>)
sp_test_properties(install-layout PROPERTIES LABELS package TIMEOUT 120)
