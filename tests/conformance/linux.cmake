# conformance/linux-agent: agent-conformance.py against the Linux agent, unprivileged on a unix
# socket (tests/windows runs the same file against the Windows agent under wine:
# windows/agent-conformance). No freeze tests: they would freeze the build host's filesystems
# (integration tests freeze loop devices).
sp_test(NAME linux-agent
        COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/agent-conformance.py
                --connect unix:{socket} -- $<TARGET_FILE:stillpoint-agent> --unix {socket} --state-dir {tmpdir}/state)
sp_test_properties(linux-agent PROPERTIES TIMEOUT 60)
