/* Helpers shared by the unit tests: temporary directories, sleeping, string checks.
 * Header-only (static inline) so that every test executable stays one source file. */
#ifndef GC_TESTUTIL_H
#define GC_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Creates a fresh directory under /tmp; dir needs 64 bytes. */
static inline void tu_mkdtemp(char dir[64])
{
    snprintf(dir, 64, "/tmp/gc-unit-XXXXXX");
    if (!mkdtemp(dir))
        fail_msg("mkdtemp failed");
}

/* Removes a directory made by tu_mkdtemp together with the files in it (one level: the
 * tests only ever put plain files there, e.g. the database and its -wal / -shm files). */
static inline void tu_rmdir(const char *dir)
{
    if (!dir || !dir[0])
        return;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static inline bool tu_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static inline void tu_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Writes text to path (truncating). */
static inline void tu_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("cannot create %s", path);
    fputs(text, f);
    fclose(f);
}

/* Fails the test, showing both strings, unless needle occurs in haystack. */
#define assert_contains(haystack, needle)                                                  \
    do {                                                                                   \
        const char *tu_h_ = (haystack), *tu_n_ = (needle);                                 \
        if (!tu_h_ || !strstr(tu_h_, tu_n_))                                               \
            fail_msg("expected \"%s\" to contain \"%s\"", tu_h_ ? tu_h_ : "(null)", tu_n_); \
    } while (0)

#endif
