/* SPDX-License-Identifier: MIT */
/*
 * Runs a libFuzzer target over saved inputs without libFuzzer, so that "make check" replays the
 * corpus with any compiler: every file named on the command line, and every file in each directory.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
        FILE *f = fopen(path, "rbe");
        uint8_t *data = NULL;
        size_t len = 0, cap = 0;

        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        for (;;) {
                size_t n;

                if (len == cap) {
                        uint8_t *d = realloc(data, cap ? cap * 2 : 65536);
                        if (!d) {
                                fprintf(stderr, "%s: out of memory\n", path);
                                free(data);
                                fclose(f);
                                return -1;
                        }
                        data = d;
                        cap = cap ? cap * 2 : 65536;
                }
                n = fread(data + len, 1, cap - len, f);
                len += n;
                if (n == 0)
                        break;
        }
        if (ferror(f)) {
                fprintf(stderr, "%s: read error\n", path);
                free(data);
                fclose(f);
                return -1;
        }
        fclose(f);
        /* Pass an exactly-sized copy so that reads past the end are caught by the sanitizers. */
        uint8_t *exact = malloc(len ? len : 1);
        if (!exact) {
                free(data);
                return -1;
        }
        if (len)
                memcpy(exact, data, len);
        free(data);
        (void) LLVMFuzzerTestOneInput(exact, len);
        free(exact);
        return 0;
}

static int replay_path(const char *path, unsigned *count) {
        struct stat st;
        struct dirent **names;
        int n, r = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        if (!S_ISDIR(st.st_mode)) {
                if (replay_file(path) < 0)
                        return -1;
                (*count)++;
                return 0;
        }

        n = scandir(path, &names, NULL, alphasort);
        if (n < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        for (int i = 0; i < n; i++) {
                char *p;

                if (names[i]->d_name[0] != '.' && asprintf(&p, "%s/%s", path, names[i]->d_name) >= 0) {
                        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                                if (replay_file(p) < 0)
                                        r = -1;
                                else
                                        (*count)++;
                        }
                        free(p);
                }
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char *argv[]) {
        unsigned count = 0;
        int r = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE|DIRECTORY...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++)
                if (replay_path(argv[i], &count) < 0)
                        r = 1;
        printf("%u inputs replayed\n", count);
        return r;
}
