# The host's man pages (host/data/stillpoint.1, stillpointd.8): they render without a groff
# warning, and document every subcommand and option the built stillpoint and stillpointd accept
# (read from their --help, so that a new command or option without documentation fails here),
# every method of the D-Bus interface and every polkit action. The agent's page is linted too.
# Skipped (77) without groff; scripts/deps installs groff-base.
find_program(SP_MAN_PYTHON python3 REQUIRED)
sp_test(NAME host/man-pages
        COMMAND ${SP_MAN_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check-manpages.py
                --stillpoint $<TARGET_FILE:stillpoint>
                --stillpointd $<TARGET_FILE:stillpointd>
                --cli-page ${PROJECT_SOURCE_DIR}/host/data/stillpoint.1
                --daemon-page ${PROJECT_SOURCE_DIR}/host/data/stillpointd.8
                --interface ${PROJECT_SOURCE_DIR}/host/data/org.stillpoint.Coordinator1.xml
                --policy ${PROJECT_SOURCE_DIR}/host/data/org.stillpoint.policy
                --lint ${PROJECT_SOURCE_DIR}/agent-linux/data/stillpoint-agent.8)
sp_test_properties(host/man-pages PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77)
