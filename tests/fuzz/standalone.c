/* SPDX-License-Identifier: MIT */
/*
 * Replays fuzz corpora without libFuzzer: every regular file in each directory given on the
 * command line (or each file given directly) is read and passed once to
 * LLVMFuzzerTestOneInput(). A crash or sanitizer report fails the run; otherwise one summary
 * line is printed and the exit status is 0. An empty or missing corpus is an error, so a
 * target that silently tests nothing does not pass.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STANDALONE_MAX_INPUT (16u * 1024u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int read_file(int dirfd, const char *name, uint8_t **ret_data, size_t *ret_size) {
        int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        struct stat st;
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size > STANDALONE_MAX_INPUT) {
                close(fd);
                return -EINVAL;
        }

        size_t size = (size_t) st.st_size;
        /* Exactly size bytes, so that ASan catches reads past the end of the input. */
        uint8_t *data = malloc(size > 0 ? size : 1);
        if (!data) {
                close(fd);
                return -ENOMEM;
        }

        size_t have = 0;
        while (have < size) {
                ssize_t n = read(fd, data + have, size - have);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int r = n < 0 ? -errno : -EIO;
                        free(data);
                        close(fd);
                        return r;
                }
                have += (size_t) n;
        }
        close(fd);

        *ret_data = data;
        *ret_size = size;
        return 0;
}

static int run_one(int dirfd, const char *name, const char *display) {
        uint8_t *data = NULL;
        size_t size = 0;
        int r = read_file(dirfd, name, &data, &size);
        if (r < 0) {
                fprintf(stderr, "standalone: cannot read '%s': %s\n", display, strerror(-r));
                return r;
        }
        (void) LLVMFuzzerTestOneInput(data, size);
        free(data);
        return 0;
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Runs every regular file of the directory path, in name order. Returns the count or -errno. */
static int run_dir(const char *path) {
        int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return -errno;

        DIR *d = fdopendir(dup(dirfd));
        if (!d) {
                int r = -errno;
                close(dirfd);
                return r;
        }

        char **names = NULL;
        size_t n = 0, allocated = 0;
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                struct stat st;
                if (fstatat(dirfd, de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (n == allocated) {
                        size_t m = allocated ? allocated * 2 : 64;
                        char **nn = realloc(names, m * sizeof(char *));
                        if (!nn) {
                                r = -ENOMEM;
                                break;
                        }
                        names = nn;
                        allocated = m;
                }
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);

        if (r == 0 && n > 0)
                qsort(names, n, sizeof(char *), compare_names);

        size_t ran = 0;
        for (size_t i = 0; r == 0 && i < n; i++) {
                char display[4096];
                snprintf(display, sizeof(display), "%s/%s", path, names[i]);
                r = run_one(dirfd, names[i], display);
                if (r == 0)
                        ran++;
        }

        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        close(dirfd);
        return r < 0 ? r : (int) ran;
}

int main(int argc, char **argv) {
        const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
        size_t total = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s CORPUS-DIR|FILE...\n", prog);
                return 2;
        }

        if (LLVMFuzzerInitialize)
                (void) LLVMFuzzerInitialize(&argc, &argv);

        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: '%s': %s\n", prog, argv[i], strerror(errno));
                        return 1;
                }
                if (S_ISDIR(st.st_mode)) {
                        int r = run_dir(argv[i]);
                        if (r < 0) {
                                fprintf(stderr, "%s: '%s': %s\n", prog, argv[i], strerror(-r));
                                return 1;
                        }
                        total += (size_t) r;
                } else {
                        if (run_one(AT_FDCWD, argv[i], argv[i]) < 0)
                                return 1;
                        total++;
                }
        }

        if (total == 0) {
                fprintf(stderr, "%s: no inputs found in the given corpora\n", prog);
                return 1;
        }

        printf("%s: %zu inputs replayed, no crashes\n", prog, total);
        return 0;
}
