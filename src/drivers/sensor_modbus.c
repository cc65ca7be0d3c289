/* The Modbus-TCP sensor driver (libmodbus): holding or input registers of one unit id,
 * 16- or 32-bit, signed or unsigned, either word order, all within one deadline. */
#include "drivers/sensor.h"

#include "util/timeutil.h"

#include <errno.h>
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gc_sensor_conn {
    modbus_t *ctx;
    int timeout_ms;
};

static int gmodbus_check(const json_t *c, struct gc_error *err)
{
    if (!json_is_object(c))
        return gc_error_set(err, GC_EINVAL, "credentials",
                            "credentials must be an object: {\"unit_id\": 1}");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)c, k, v) {
        if (strcmp(k, "unit_id") != 0) {
            char f[96];
            snprintf(f, sizeof(f), "credentials.%.40s", k);
            return gc_error_set(err, GC_EINVAL, f,
                                "unknown member '%.40s' of modbus credentials (only unit_id)",
                                k);
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 255)
            return gc_error_set(err, GC_EINVAL, "credentials.unit_id",
                                "credentials.unit_id must be an integer from 0 to 255");
    }
    return 0;
}

static const char *mb_reason(int e)
{
    if (e == ETIMEDOUT || e == EAGAIN || e == EINPROGRESS)
        return "timeout";
    if (e == ECONNREFUSED)
        return "refused";
    if (e == EMBXILADD || e == EMBXILFUN)
        return "no_such_object";
    if (e == EMBBADDATA || e == EMBBADCRC || e == EMBBADEXC || e == EMBMDATA ||
        e == EMBBADSLAVE)
        return "bad_value";
    return "error";
}

static void set_timeout(modbus_t *ctx, int64_t ms)
{
    if (ms < 1)
        ms = 1;
    modbus_set_response_timeout(ctx, (uint32_t)(ms / 1000), (uint32_t)(ms % 1000) * 1000);
    modbus_set_byte_timeout(ctx, (uint32_t)(ms / 1000), (uint32_t)(ms % 1000) * 1000);
}

static int gmodbus_open(const struct gc_sensor_target *t, struct gc_sensor_conn **out,
                       struct gc_error *err)
{
    int rc = gmodbus_check(t->credentials, err);
    if (rc)
        return rc;
    char port[16];
    snprintf(port, sizeof(port), "%d", t->port);
    modbus_t *ctx = modbus_new_tcp_pi(t->address, port);
    if (!ctx)
        return gc_error_set(err, GC_EINVAL, "address", "cannot use address %s: %s", t->address,
                            modbus_strerror(errno));
    json_t *u = json_object_get(t->credentials, "unit_id");
    modbus_set_slave(ctx, u ? (int)json_integer_value(u) : 1);
    set_timeout(ctx, t->timeout_ms);
    struct gc_sensor_conn *c = calloc(1, sizeof(*c));
    if (!c)
        GC_BUG("out of memory");
    c->ctx = ctx;
    c->timeout_ms = t->timeout_ms;
    *out = c;
    return 0;
}

static int gmodbus_read(struct gc_sensor_conn *c, const struct gc_profile *p, double *raw,
                       char *reason, struct gc_error *err)
{
    int64_t deadline = gc_mono_ns() / 1000000 + c->timeout_ms;
    if (modbus_connect(c->ctx) != 0) {
        int e = errno;
        snprintf(reason, 32, "%s", mb_reason(e));
        return gc_error_set(err, GC_EBUSY, "", "cannot connect: %s", modbus_strerror(e));
    }
    int rc = 0;
    for (int i = 0; !rc && i < p->nreadings; i++) {
        const struct gc_profile_reading *r = &p->readings[i];
        int64_t left = deadline - gc_mono_ns() / 1000000;
        if (left <= 0) {
            snprintf(reason, 32, "timeout");
            rc = gc_error_set(err, GC_EBUSY, "", "no complete answer within %d ms",
                              c->timeout_ms);
            break;
        }
        set_timeout(c->ctx, left);
        uint16_t regs[2] = {0, 0};
        int words = gc_mb_words(r->format);
        int n = r->table == GC_MB_INPUT
                    ? modbus_read_input_registers(c->ctx, r->address, words, regs)
                    : modbus_read_registers(c->ctx, r->address, words, regs);
        if (n != words) {
            int e = errno;
            snprintf(reason, 32, "%s", n < 0 ? mb_reason(e) : "bad_value");
            rc = gc_error_set(err, GC_EBUSY, "", "%s register %d: %s",
                              r->table == GC_MB_INPUT ? "input" : "holding", r->address,
                              n < 0 ? modbus_strerror(e) : "short answer");
            break;
        }
        raw[i] = gc_mb_decode(regs, r->format, r->order);
    }
    modbus_close(c->ctx);
    return rc;
}

static void modbus_close_conn(struct gc_sensor_conn *c)
{
    if (!c)
        return;
    modbus_free(c->ctx);
    free(c);
}

const struct gc_sensor_driver gc_sensor_modbus = {
    .name = "modbus",
    .check = gmodbus_check,
    .open = gmodbus_open,
    .read = gmodbus_read,
    .close = modbus_close_conn,
};
