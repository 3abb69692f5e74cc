/* main() of the replay builds of every fuzz target (fuzz-*-replay FILE...): runs each
 * saved input once through LLVMFuzzerTestOneInput, without libFuzzer, so a crash the fuzzer found
 * can be replayed under a debugger or valgrind with any compiler. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Optional, as in libFuzzer: targets without set-up do not define it. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        return 1;
    }
    do {
        if (len == cap) {
            uint8_t *b = realloc(buf, cap = cap ? cap * 2 : 4096);
            if (!b) {
                fprintf(stderr, "%s: out of memory\n", path);
                fclose(f);
                free(buf);
                return 1;
            }
            buf = b;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int failed = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE...\nReplays fuzz inputs through the target's checks.\n",
                argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++)
        failed |= replay(argv[i]);
    if (!failed)
        printf("replayed %d input(s)\n", argc - 1);
    return failed;
}
