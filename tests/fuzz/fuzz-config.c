/* SPDX-License-Identifier: MIT */
/*
 * Config loader: whatever lands in asynctask.json or tasks.d (a truncated edit, a binary file copied
 * by mistake) must give either a valid Config or errors naming the file, never a crash, a hang or a
 * half-filled Config. The input is the main file, then, after a line "--tasks.d--", one task file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/config.h"
#include "shared/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char SEPARATOR[] = "\n--tasks.d--\n";

static char *dir;
static char *main_path;
static char *task_path;

static void setup(void) {
        char template[] = "/tmp/asynctask-fuzz-config-XXXXXX";
        char *tasks_dir;

        if (!mkdtemp(template))
                abort();
        dir = strdup(template);
        if (asprintf(&main_path, "%s/asynctask.json", dir) < 0 ||
            asprintf(&tasks_dir, "%s/tasks.d", dir) < 0 ||
            asprintf(&task_path, "%s/tasks.d/fuzz.json", dir) < 0)
                abort();
        if (mkdir(tasks_dir, 0755) < 0)
                abort();
        free(tasks_dir);
}

static void write_file(const char *path, const uint8_t *data, size_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        if (fd < 0)
                abort();
        while (size > 0) {
                ssize_t n = write(fd, data, size);
                if (n <= 0)
                        abort();
                data += n;
                size -= (size_t) n;
        }
        close(fd);
}

static void count_error(const char *file, const char *key, const char *message, void *userdata) {
        unsigned *n = userdata;

        if (!file || !key || !message || message[0] == '\0')
                abort();
        (*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *sep;
        Config *c = NULL;
        unsigned errors = 0;
        int r;

        if (!dir)
                setup();
        sep = memmem(data, size, SEPARATOR, strlen(SEPARATOR));
        if (sep) {
                size_t head = (size_t) (sep - data), skip = head + strlen(SEPARATOR);
                write_file(main_path, data, head);
                write_file(task_path, data + skip, size - skip);
        } else {
                write_file(main_path, data, size);
                (void) unlink(task_path);
        }

        r = config_load(main_path, count_error, &errors, &c);
        if (r >= 0) {
                /* Accepted: no errors reported, and every task is findable under its own name. */
                if (!c || errors != 0)
                        abort();
                for (size_t i = 0; i < c->n_tasks; i++)
                        if (config_find_task(c, c->tasks[i].name) != &c->tasks[i])
                                abort();
                config_free(c);
        } else if (r == -EINVAL && (c || errors == 0)) {
                /* Refused as invalid: at least one problem was named, and nothing was handed out. */
                abort();
        }
        return 0;
}
