/* A Modbus-TCP server for the environment tests (libmodbus): serves holding and input
 * registers 0-99 with the values of a state file the test writes, re-read before every
 * answer. Usage: modbus_server PORT STATEFILE; prints "ready" once it listens.
 * State lines: "h|i ADDR VALUE" (16-bit, negative as two's complement) or
 * "h|i ADDR u32|s32|u32le|s32le VALUE [PER_SECOND]" (32-bit, high word first unless "le";
 * PER_SECOND makes a counter that grows with time since the start; with a last word
 * "per_read" it grows by that much at every read of the register instead, so that a test
 * knows exactly what two consecutive reads differ by). */
#include <errno.h>
#include <math.h>
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double t0;
static long reads[2][100]; /* reads that started at each register: holding, input */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void load(const char *path, modbus_mapping_t *m)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        char t, fmt[16] = "", mode[16] = "";
        int addr;
        double v = 0, slope = 0;
        int n = sscanf(line, " %c %d %15s %lf %lf %15s", &t, &addr, fmt, &v, &slope, mode);
        if (n < 3 || addr < 0 || addr > 98 || (t != 'h' && t != 'i'))
            continue;
        uint16_t *regs = t == 'h' ? m->tab_registers : m->tab_input_registers;
        if (n == 3) {
            long x = strtol(fmt, NULL, 10);
            regs[addr] = (uint16_t)(x & 0xffff);
            continue;
        }
        double x = strcmp(mode, "per_read") == 0 ? (double)reads[t == 'h' ? 0 : 1][addr]
                                                   : now_s() - t0;
        double val = floor(v + slope * x);
        uint32_t u = strncmp(fmt, "s32", 3) == 0 ? (uint32_t)(int32_t)val : (uint32_t)val;
        uint16_t hi = (uint16_t)(u >> 16), lo = (uint16_t)(u & 0xffff);
        int le = strstr(fmt, "le") != NULL;
        regs[addr] = le ? lo : hi;
        regs[addr + 1] = le ? hi : lo;
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: modbus_server PORT STATEFILE\n");
        return 2;
    }
    t0 = now_s();
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", atoi(argv[1]));
    modbus_mapping_t *m = modbus_mapping_new(0, 0, 100, 100);
    int server = modbus_tcp_listen(ctx, 16);
    if (server < 0) {
        fprintf(stderr, "listen: %s\n", modbus_strerror(errno));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    fd_set all;
    FD_ZERO(&all);
    FD_SET(server, &all);
    int maxfd = server;
    for (;;) {
        fd_set rd = all;
        if (select(maxfd + 1, &rd, NULL, NULL, NULL) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        for (int fd = 0; fd <= maxfd; fd++) {
            if (!FD_ISSET(fd, &rd))
                continue;
            if (fd == server) {
                int c = accept(server, NULL, NULL);
                if (c >= 0 && c < FD_SETSIZE) {
                    FD_SET(c, &all);
                    if (c > maxfd)
                        maxfd = c;
                } else if (c >= 0) {
                    close(c);
                }
                continue;
            }
            uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
            modbus_set_socket(ctx, fd);
            int rc = modbus_receive(ctx, q);
            if (rc > 0) {
                /* MBAP header (7 bytes), function, starting address */
                int fn = rc > 9 ? q[7] : 0, a = rc > 9 ? (q[8] << 8 | q[9]) : 0;
                if ((fn == 3 || fn == 4) && a < 100)
                    reads[fn == 3 ? 0 : 1][a]++;
                load(argv[2], m);
                modbus_reply(ctx, q, rc, m);
            } else if (rc < 0) {
                close(fd);
                FD_CLR(fd, &all);
            }
        }
    }
}
