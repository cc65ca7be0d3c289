/* Password input for the CLI. Reads byte by byte with read(2) so that no stdio buffer keeps
 * a copy of the secret, and restores the terminal's echo even when interrupted. */
#include "cli/prompt.h"

#include "cli/cli.h"
#include "util/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "util/banned.h" /* last: it redefines library names */

void gc_cli_secret_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

bool gc_cli_stdin_is_tty(void)
{
    return isatty(STDIN_FILENO) == 1;
}

/* Reads up to a newline or EOF from fd into a new string. Returns 0, 1 at EOF before any
 * byte, -1 on a read error or -2 when the line is too long. */
static int read_line(int fd, char **out)
{
    char *buf = gc_malloc(GC_CLI_MAX_SECRET + 1);
    size_t n = 0;
    int rc = 0;
    bool any = false;

    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 0) {
            if (!any)
                rc = 1;
            break;
        }
        any = true;
        if (ch == '\n')
            break;
        if (n == GC_CLI_MAX_SECRET) {
            rc = -2;
            break;
        }
        buf[n++] = ch;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    if (rc != 0) {
        explicit_bzero(buf, GC_CLI_MAX_SECRET + 1);
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

int gc_cli_read_stdin_secret(const char *what, char **out)
{
    char *s = NULL;
    int r = read_line(STDIN_FILENO, &s);
    if (r == -2)
        return gc_cli_fail(GC_CLI_EUSAGE, "%s on standard input is longer than %d bytes", what,
                           GC_CLI_MAX_SECRET);
    if (r == -1)
        return gc_cli_fail(GC_CLI_EFAIL, "cannot read %s from standard input: %s", what,
                           strerror(errno));
    if (r == 1 || !s[0]) {
        gc_cli_secret_free(s);
        return gc_cli_fail(GC_CLI_EUSAGE, "no %s on standard input", what);
    }
    *out = s;
    return GC_CLI_OK;
}

/* The terminal state to put back if a signal arrives while echo is off. */
static volatile sig_atomic_t tty_saved;
static int tty_fd = -1;
static struct termios tty_orig;

static void restore_and_reraise(int sig)
{
    if (tty_saved)
        tcsetattr(tty_fd, TCSAFLUSH, &tty_orig); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

int gc_cli_prompt(const char *prompt, bool secret, char **out)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
    enum { NSIGS = sizeof(sigs) / sizeof(sigs[0]) };
    struct sigaction sa, old[NSIGS];
    bool handlers_set = false;
    int rc = GC_CLI_EFAIL;
    char *s = NULL;

    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return gc_cli_fail(GC_CLI_EUSAGE, "no terminal to ask for the %s",
                           secret ? "password" : "value");
    if (write(fd, prompt, strlen(prompt)) < 0) {
        rc = gc_cli_fail(GC_CLI_EFAIL, "cannot write to the terminal: %s", strerror(errno));
        goto cleanup;
    }
    if (secret) {
        struct termios t;
        if (tcgetattr(fd, &tty_orig) != 0) {
            rc = gc_cli_fail(GC_CLI_EFAIL, "cannot turn off echo: %s", strerror(errno));
            goto cleanup;
        }
        tty_fd = fd;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = restore_and_reraise;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < NSIGS; i++)
            sigaction(sigs[i], &sa, &old[i]);
        handlers_set = true;
        t = tty_orig;
        t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
        t.c_lflag |= ECHONL; /* the Enter key still moves to the next line */
        tty_saved = 1;
        if (tcsetattr(fd, TCSAFLUSH, &t) != 0) {
            rc = gc_cli_fail(GC_CLI_EFAIL, "cannot turn off echo: %s", strerror(errno));
            goto cleanup;
        }
    }
    int r = read_line(fd, &s);
    if (r == 0) {
        *out = s;
        rc = GC_CLI_OK;
    } else if (r == -2) {
        rc = gc_cli_fail(GC_CLI_EUSAGE, "input is longer than %d bytes", GC_CLI_MAX_SECRET);
    } else {
        rc = gc_cli_fail(GC_CLI_EUSAGE, "no input");
    }

cleanup:
    if (tty_saved) {
        tcsetattr(fd, TCSAFLUSH, &tty_orig);
        tty_saved = 0;
    }
    if (handlers_set) {
        for (size_t i = 0; i < NSIGS; i++)
            sigaction(sigs[i], &old[i], NULL);
        tty_fd = -1;
    }
    close(fd);
    return rc;
}
