# The Cockpit page (cockpit/) in headless Chromium against stillpointd on a private bus: a backup
# operator, an administrator and a reader log in to cockpit-ws with a password (root: stillpointd
# runs as root, cockpit-ws logs the users in through PAM). Screenshots go to the build tree
# (tests/browser/screenshots).
sp_test(NAME cockpit
        COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/cockpit.py
                ${PROJECT_SOURCE_DIR}/tests/e2e/daemon-roles.py
                $<TARGET_FILE:stillpointd> $<TARGET_FILE:stillpoint> $<TARGET_FILE:sp-fake-agent>
                ${PROJECT_SOURCE_DIR}/host/data/org.stillpoint.Coordinator1.conf
                ${PROJECT_SOURCE_DIR}/cockpit ${CMAKE_BINARY_DIR}/tests/browser/screenshots page)
sp_test_properties(cockpit PROPERTIES
  LABELS "browser;dbus" TIMEOUT 300 RESOURCE_LOCK vm SKIP_RETURN_CODE 77)
