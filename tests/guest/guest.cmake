# The test guest (tests/guest/README section in the top README): a Debian kernel and a busybox
# initramfs booted under QEMU TCG, with stock qemu-ga or stillpoint-agent on virtio-serial.
set(SP_GUEST_SRC ${CMAKE_CURRENT_SOURCE_DIR}/guest)

# The in-guest workload runs alone in the initramfs: static, and without the sanitizers the rest
# of the tree is built with (their runtimes do not link statically with glibc's libc.a).
add_executable(sp-workload ${SP_GUEST_SRC}/workload.c)
target_compile_options(sp-workload PRIVATE -fno-sanitize=all -O2)
target_link_options(sp-workload PRIVATE -fno-sanitize=all -static -pthread)
