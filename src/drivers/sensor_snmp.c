/* The SNMP sensor driver: one GET of every OID a profile names, through net-snmp's
 * single-session API (one session per device and poll, so devices are read from their own
 * threads). SNMPv2c with a community, SNMPv3 with a USM user (SHA or SHA-256/512 or MD5
 * authentication, AES-128 privacy). */
#include "drivers/sensor.h"

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* net-snmp keeps the SNMPv3 USM user table in a process-wide list without locks: v3
 * sessions are opened and closed (govcloud removes the user) under the write lock, and so
 * is a v3 session's first request (engine ID discovery adds the user: net-snmp does it at
 * the first send, not at the opening); later v3 requests (which look the user up) run
 * under the read lock. So v3 requests run in parallel, but a v3 device that hangs on its
 * session's first request delays other v3 devices' first requests by up to its
 * timeout_ms. v2c sessions touch no USM state: their opening and closing (no network I/O)
 * take a plain lock. */
static pthread_rwlock_t usm_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t snmp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t snmp_once = PTHREAD_ONCE_INIT;

static void snmp_init_once(void)
{
    /* numeric OIDs only: no MIB files, no configuration files, nothing persisted */
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
    setenv("MIBS", "", 1);
    setenv("MIBDIRS", "", 1);
    snmp_disable_log();
    init_snmp("govcloud");
}

void gc_sensor_drivers_init(void)
{
    pthread_once(&snmp_once, snmp_init_once);
}

/* The open v3 sessions per USM user (engine and name): net-snmp has one process-wide entry
 * per user, made by a session's first request (engine ID discovery), which a session's
 * closing removes (see gsnmp_close); while another session of the same user and engine is
 * open (two sensors or a sensor and an asset target on the same device) the entry stays.
 * Under usm_lock (write). */
#define USM_REFS_MAX 256
static struct usm_ref {
    u_char engine[64];
    size_t elen;
    char user[129];
    int refs;
} usm_refs[USM_REFS_MAX];

/* Adds delta to the count of ss's user; returns the count after (0 when untracked). */
static int usm_ref(const netsnmp_session *ss, int delta)
{
    if (!ss || ss->version != SNMP_VERSION_3 || !ss->securityName ||
        ss->securityEngineIDLen > sizeof(usm_refs[0].engine) || !ss->securityEngineIDLen)
        return 0;
    struct usm_ref *free_slot = NULL;
    for (int i = 0; i < USM_REFS_MAX; i++) {
        struct usm_ref *r = &usm_refs[i];
        if (!r->refs) {
            if (!free_slot)
                free_slot = r;
            continue;
        }
        if (r->elen == ss->securityEngineIDLen &&
            !memcmp(r->engine, ss->securityEngineID, r->elen) &&
            !strcmp(r->user, ss->securityName)) {
            r->refs += delta;
            return r->refs;
        }
    }
    if (delta <= 0 || !free_slot)
        return 0;
    free_slot->elen = ss->securityEngineIDLen;
    memcpy(free_slot->engine, ss->securityEngineID, free_slot->elen);
    snprintf(free_slot->user, sizeof(free_slot->user), "%s", ss->securityName);
    free_slot->refs = delta;
    return delta;
}

struct auth_proto {
    const char *name;
    const oid *oid;
    size_t len;
};

static const struct auth_proto *auth_find(const char *name)
{
    static const struct auth_proto t[] = {
        {"SHA", usmHMACSHA1AuthProtocol, USM_AUTH_PROTO_SHA_LEN},
        {"SHA-256", usmHMAC192SHA256AuthProtocol, 10},
        {"SHA-512", usmHMAC384SHA512AuthProtocol, 10},
        {"MD5", usmHMACMD5AuthProtocol, 10},
    };
    for (size_t i = 0; name && i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int gsnmp_check(const json_t *c, struct gc_error *err)
{
    static const char *const keys[] = {"version", "community", "user", "auth_protocol",
                                       "auth_password", "priv_protocol", "priv_password",
                                       NULL};
    if (!json_is_object(c))
        return gc_error_set(err, GC_EINVAL, "credentials",
                            "credentials must be an object: {\"version\":\"2c\",\"community\"}"
                            " or {\"version\":\"3\",\"user\",...}");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)c, k, v) {
        bool ok = false;
        for (const char *const *p = keys; *p && !ok; p++)
            ok = !strcmp(*p, k);
        char f[96];
        snprintf(f, sizeof(f), "credentials.%.40s", k);
        if (!ok)
            return gc_error_set(err, GC_EINVAL, f, "unknown member '%.40s' of snmp credentials",
                                k);
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 128)
            return gc_error_set(err, GC_EINVAL, f, "%s must be a string of 1-128 bytes", f);
    }
    const char *ver = jstr(c, "version");
    if (!ver || (strcmp(ver, "2c") && strcmp(ver, "3")))
        return gc_error_set(err, GC_EINVAL, "credentials.version",
                            "credentials.version must be \"2c\" or \"3\"");
    if (!strcmp(ver, "2c")) {
        if (!jstr(c, "community"))
            return gc_error_set(err, GC_EINVAL, "credentials.community",
                                "SNMPv2c needs credentials.community");
        for (const char *x = "user\0auth_protocol\0auth_password\0priv_protocol\0"
                             "priv_password\0";
             *x; x += strlen(x) + 1)
            if (json_object_get(c, x)) {
                char f[96];
                snprintf(f, sizeof(f), "credentials.%s", x);
                return gc_error_set(err, GC_EINVAL, f, "%s is for SNMPv3", f);
            }
        return 0;
    }
    if (json_object_get(c, "community"))
        return gc_error_set(err, GC_EINVAL, "credentials.community",
                            "SNMPv3 uses a user, not a community");
    if (!jstr(c, "user"))
        return gc_error_set(err, GC_EINVAL, "credentials.user", "SNMPv3 needs credentials.user");
    const char *ap = jstr(c, "auth_protocol"), *pp = jstr(c, "priv_protocol");
    if (ap && !auth_find(ap))
        return gc_error_set(err, GC_EINVAL, "credentials.auth_protocol",
                            "credentials.auth_protocol must be SHA, SHA-256, SHA-512 or MD5");
    if (ap && (!jstr(c, "auth_password") || strlen(jstr(c, "auth_password")) < 8))
        return gc_error_set(err, GC_EINVAL, "credentials.auth_password",
                            "credentials.auth_password of at least 8 characters is needed "
                            "with auth_protocol");
    if (!ap && json_object_get(c, "auth_password"))
        return gc_error_set(err, GC_EINVAL, "credentials.auth_protocol",
                            "credentials.auth_password needs auth_protocol");
    if (pp && strcmp(pp, "AES"))
        return gc_error_set(err, GC_EINVAL, "credentials.priv_protocol",
                            "credentials.priv_protocol must be AES");
    if (pp && !ap)
        return gc_error_set(err, GC_EINVAL, "credentials.priv_protocol",
                            "privacy needs authentication: give auth_protocol too");
    if (pp && (!jstr(c, "priv_password") || strlen(jstr(c, "priv_password")) < 8))
        return gc_error_set(err, GC_EINVAL, "credentials.priv_password",
                            "credentials.priv_password of at least 8 characters is needed "
                            "with priv_protocol");
    if (!pp && json_object_get(c, "priv_password"))
        return gc_error_set(err, GC_EINVAL, "credentials.priv_protocol",
                            "credentials.priv_password needs priv_protocol");
    return 0;
}

struct gc_sensor_conn {
    void *sess;
    int timeout_ms;
    bool v3;
    bool counted; /* v3: counted in usm_refs (after the engine ID was learnt) */
};

static int gsnmp_open(const struct gc_sensor_target *t, struct gc_sensor_conn **out,
                     struct gc_error *err)
{
    gc_sensor_drivers_init();
    const json_t *c = t->credentials;
    int rc = gsnmp_check(c, err);
    if (rc)
        return rc;
    netsnmp_session s;
    snmp_sess_init(&s);
    char peer[320];
    if (strchr(t->address, ':'))
        snprintf(peer, sizeof(peer), "udp6:[%s]:%d", t->address, t->port);
    else
        snprintf(peer, sizeof(peer), "udp:%s:%d", t->address, t->port);
    s.peername = peer;
    s.timeout = (long)t->timeout_ms * 1000L;
    s.retries = 0;
    char *community = NULL, *user = NULL;
    if (!strcmp(jstr(c, "version"), "2c")) {
        s.version = SNMP_VERSION_2c;
        community = strdup(jstr(c, "community"));
        s.community = (u_char *)community;
        s.community_len = strlen(community);
    } else {
        s.version = SNMP_VERSION_3;
        user = strdup(jstr(c, "user"));
        s.securityName = user;
        s.securityNameLen = strlen(user);
        s.securityModel = USM_SEC_MODEL_NUMBER;
        const struct auth_proto *ap = auth_find(jstr(c, "auth_protocol"));
        s.securityLevel = !ap ? SNMP_SEC_LEVEL_NOAUTH
                          : jstr(c, "priv_protocol") ? SNMP_SEC_LEVEL_AUTHPRIV
                                                     : SNMP_SEC_LEVEL_AUTHNOPRIV;
        if (ap) {
            s.securityAuthProto = snmp_duplicate_objid(ap->oid, ap->len);
            s.securityAuthProtoLen = ap->len;
            s.securityAuthKeyLen = USM_AUTH_KU_LEN;
            const char *pw = jstr(c, "auth_password");
            if (generate_Ku(s.securityAuthProto, (u_int)s.securityAuthProtoLen,
                            (const u_char *)pw, strlen(pw), s.securityAuthKey,
                            &s.securityAuthKeyLen) != SNMPERR_SUCCESS)
                rc = gc_error_set(err, GC_EINVAL, "credentials.auth_password",
                                  "cannot derive the authentication key");
        }
        if (!rc && jstr(c, "priv_protocol")) {
            s.securityPrivProto = snmp_duplicate_objid(usmAESPrivProtocol, USM_PRIV_PROTO_AES_LEN);
            s.securityPrivProtoLen = USM_PRIV_PROTO_AES_LEN;
            s.securityPrivKeyLen = USM_PRIV_KU_LEN;
            const char *pw = jstr(c, "priv_password");
            if (generate_Ku(s.securityAuthProto, (u_int)s.securityAuthProtoLen,
                            (const u_char *)pw, strlen(pw), s.securityPrivKey,
                            &s.securityPrivKeyLen) != SNMPERR_SUCCESS)
                rc = gc_error_set(err, GC_EINVAL, "credentials.priv_password",
                                  "cannot derive the privacy key");
        }
    }
    void *sess = NULL;
    bool v3 = s.version == SNMP_VERSION_3;
    if (!rc) {
        if (v3)
            pthread_rwlock_wrlock(&usm_lock);
        else
            pthread_mutex_lock(&snmp_lock);
        sess = snmp_sess_open(&s);
        if (v3)
            pthread_rwlock_unlock(&usm_lock);
        else
            pthread_mutex_unlock(&snmp_lock);
        if (!sess)
            rc = gc_error_set(err, GC_EBUSY, "", "cannot open an SNMP session to %s: %s", peer,
                              snmp_api_errstring(snmp_errno));
    }
    free(community);
    free(user);
    SNMP_FREE(s.securityAuthProto);
    SNMP_FREE(s.securityPrivProto);
    if (rc)
        return rc;
    struct gc_sensor_conn *conn = calloc(1, sizeof(*conn));
    if (!conn)
        GC_BUG("out of memory");
    conn->sess = sess;
    conn->timeout_ms = t->timeout_ms;
    conn->v3 = v3;
    *out = conn;
    return 0;
}

static bool parse_oid(const char *s, oid *name, size_t *len)
{
    size_t n = 0;
    const char *p = s;
    while (*p) {
        if (n == MAX_OID_LEN)
            return false;
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p)
            return false;
        name[n++] = (oid)v;
        p = *end == '.' ? end + 1 : end;
        if (*end && *end != '.')
            return false;
    }
    *len = n;
    return n >= 2;
}

/* A number from a varbind: integers, gauges, counters, and numbers sent as text (many
 * probes do). */
static int var_number(const netsnmp_variable_list *v, double *out, char *reason,
                      struct gc_error *err, const char *oidtxt)
{
    switch (v->type) {
    case ASN_INTEGER:
        *out = (double)*v->val.integer;
        return 0;
    case ASN_GAUGE:
    case ASN_COUNTER:
    case ASN_TIMETICKS:
    case ASN_UINTEGER:
        *out = (double)(unsigned long)*v->val.integer;
        return 0;
    case ASN_COUNTER64:
        *out = (double)v->val.counter64->high * 4294967296.0 + (double)v->val.counter64->low;
        return 0;
    case ASN_OCTET_STR: {
        char buf[64];
        size_t n = v->val_len < sizeof(buf) - 1 ? v->val_len : sizeof(buf) - 1;
        memcpy(buf, v->val.string, n);
        buf[n] = '\0';
        while (n && (buf[n - 1] == ' ' || buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            buf[--n] = '\0';
        char *end;
        double d = strtod(buf, &end);
        if (n && end != buf && *end == '\0' && isfinite(d)) {
            *out = d;
            return 0;
        }
        snprintf(reason, 32, "bad_value");
        return gc_error_set(err, GC_EINVAL, "", "%s: '%.32s' is not a number", oidtxt, buf);
    }
    case SNMP_NOSUCHOBJECT:
    case SNMP_NOSUCHINSTANCE:
    case SNMP_ENDOFMIBVIEW:
        snprintf(reason, 32, "no_such_object");
        return gc_error_set(err, GC_EINVAL, "", "%s: the device has no such object", oidtxt);
    default:
        snprintf(reason, 32, "bad_value");
        return gc_error_set(err, GC_EINVAL, "", "%s: unexpected value type 0x%02x", oidtxt,
                            (unsigned)v->type);
    }
}

/* Sends pdu (freed) and waits for the answer, at most the session's timeout: 0 with *resp,
 * or a failure with reason (32 bytes: timeout, auth, no_such_object, error) and err. */
static int request(struct gc_sensor_conn *c, netsnmp_pdu *pdu, netsnmp_pdu **resp,
                   char *reason, struct gc_error *err)
{
    *resp = NULL;
    /* a v3 session's first request discovers the engine ID and makes the USM user entry:
     * under the write lock, and the session is counted as the entry's user */
    bool first = c->v3 && !c->counted;
    if (first)
        pthread_rwlock_wrlock(&usm_lock);
    else if (c->v3)
        pthread_rwlock_rdlock(&usm_lock);
    int st = snmp_sess_synch_response(c->sess, pdu, resp);
    if (first && usm_ref(snmp_sess_session(c->sess), 1) > 0)
        c->counted = true;
    if (c->v3)
        pthread_rwlock_unlock(&usm_lock);
    int rc = 0;
    if (st == STAT_TIMEOUT) {
        snprintf(reason, 32, "timeout");
        rc = gc_error_set(err, GC_EBUSY, "",
                          "no answer within %d ms (device down or unreachable, or a wrong "
                          "community or user)",
                          c->timeout_ms);
    } else if (st != STAT_SUCCESS || !*resp) {
        int liberr = 0, syserr = 0;
        char *msg = NULL;
        snmp_sess_error(c->sess, &liberr, &syserr, &msg);
        bool auth = liberr == SNMPERR_AUTHENTICATION_FAILURE ||
                    liberr == SNMPERR_UNKNOWN_USER_NAME || liberr == SNMPERR_UNKNOWN_SEC_MODEL ||
                    liberr == SNMPERR_DECRYPTION_ERR || liberr == SNMPERR_UNSUPPORTED_SEC_LEVEL ||
                    liberr == SNMPERR_USM_AUTHENTICATIONFAILURE ||
                    liberr == SNMPERR_USM_UNKNOWNSECURITYNAME ||
                    liberr == SNMPERR_USM_DECRYPTIONERROR ||
                    liberr == SNMPERR_USM_UNSUPPORTEDSECURITYLEVEL ||
                    -liberr == SNMPERR_AUTHENTICATION_FAILURE;
        /* the code is not always passed on; net-snmp's message is stable */
        if (msg && (strstr(msg, "Authentication failure") || strstr(msg, "Unknown user") ||
                    strstr(msg, "Decryption error") || strstr(msg, "Unsupported security")))
            auth = true;
        snprintf(reason, 32, "%s", auth ? "auth" : "error");
        rc = gc_error_set(err, GC_EBUSY, "", "%s", msg ? msg : "SNMP error");
        free(msg);
    } else if ((*resp)->errstat != SNMP_ERR_NOERROR) {
        snprintf(reason, 32, "%s",
                 (*resp)->errstat == SNMP_ERR_NOSUCHNAME ? "no_such_object" : "error");
        rc = gc_error_set(err, GC_EBUSY, "", "the device answered: %s (index %ld)",
                          snmp_errstring((int)(*resp)->errstat), (*resp)->errindex);
    }
    if (rc && *resp) {
        snmp_free_pdu(*resp);
        *resp = NULL;
    }
    return rc;
}

static int gsnmp_read(struct gc_sensor_conn *c, const struct gc_profile *p, double *raw,
                     char *reason, struct gc_error *err)
{
    netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET);
    for (int i = 0; i < p->nreadings; i++) {
        oid name[MAX_OID_LEN];
        size_t len;
        if (!parse_oid(p->readings[i].oid, name, &len)) {
            snmp_free_pdu(pdu);
            snprintf(reason, 32, "error");
            return gc_error_set(err, GC_EINVAL, "", "bad OID %s", p->readings[i].oid);
        }
        snmp_add_null_var(pdu, name, len);
    }
    netsnmp_pdu *resp = NULL;
    int rc = request(c, pdu, &resp, reason, err);
    if (!rc) {
        netsnmp_variable_list *v = resp->variables;
        for (int i = 0; !rc && i < p->nreadings; i++, v = v ? v->next_variable : NULL) {
            if (!v) {
                snprintf(reason, 32, "bad_value");
                rc = gc_error_set(err, GC_EBUSY, "", "the answer lacks %s", p->readings[i].oid);
                break;
            }
            rc = var_number(v, &raw[i], reason, err, p->readings[i].oid);
        }
    }
    if (resp)
        snmp_free_pdu(resp);
    return rc;
}

/* ---- describing a device: SNMPv2-MIB system group and ENTITY-MIB entPhysicalTable ---- */

/* Text of a varbind: strings as they are (control characters and invalid UTF-8 replaced,
 * trailing blanks dropped), OIDs dotted, numbers in decimal; "" for anything else. */
static void var_text(const netsnmp_variable_list *v, char *out, size_t cap)
{
    out[0] = '\0';
    if (v->type == ASN_OCTET_STR) {
        size_t n = 0;
        const unsigned char *s = v->val.string;
        for (size_t i = 0; i < v->val_len && n + 4 < cap;) {
            unsigned char ch = s[i];
            size_t len = ch < 0x80 ? 1 : (ch & 0xE0) == 0xC0 ? 2 : (ch & 0xF0) == 0xE0 ? 3
                                     : (ch & 0xF8) == 0xF0 ? 4 : 0;
            bool ok = len > 0 && i + len <= v->val_len;
            for (size_t k = 1; ok && k < len; k++)
                ok = (s[i + k] & 0xC0) == 0x80;
            if (ok && len == 1 && (ch < 0x20 || ch == 0x7f))
                ch = ' ', len = 1;
            if (!ok) {
                out[n++] = '?';
                i++;
                continue;
            }
            if (len == 1) {
                out[n++] = (char)(ch == 0 ? ' ' : ch);
            } else {
                memcpy(out + n, s + i, len);
                n += len;
            }
            i += len;
        }
        while (n && out[n - 1] == ' ')
            n--;
        out[n] = '\0';
    } else if (v->type == ASN_OBJECT_ID) {
        size_t n = 0;
        size_t cnt = v->val_len / sizeof(oid);
        for (size_t i = 0; i < cnt && n + 24 < cap; i++)
            n += (size_t)snprintf(out + n, cap - n, i ? ".%lu" : "%lu",
                                  (unsigned long)v->val.objid[i]);
    } else if (v->type == ASN_INTEGER) {
        snprintf(out, cap, "%ld", *v->val.integer);
    } else if (v->type == ASN_GAUGE || v->type == ASN_COUNTER || v->type == ASN_UINTEGER ||
               v->type == ASN_TIMETICKS) {
        snprintf(out, cap, "%lu", (unsigned long)*v->val.integer);
    }
}

/* Sets the session's timeout to what is left before deadline_ms; false when nothing is. */
static bool time_left(struct gc_sensor_conn *c, int64_t deadline_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (now >= deadline_ms)
        return false;
    netsnmp_session *ss = snmp_sess_session(c->sess);
    ss->timeout = (long)(deadline_ms - now) * 1000L;
    return true;
}

int64_t gc_snmp_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* entPhysicalEntry columns read, and their names in the answer */
static const struct {
    int col;
    const char *name;
} ent_cols[] = {{2, "descr"},          {5, "class"},         {7, "name"},
                {8, "hardware_rev"},   {9, "firmware_rev"},  {10, "software_rev"},
                {11, "serial_num"},    {12, "mfg_name"},     {13, "model_name"},
                {15, "asset_id"}};
#define ENT_NCOLS (sizeof(ent_cols) / sizeof(ent_cols[0]))

int gc_snmp_describe(struct gc_sensor_conn *c, int max_rows, int64_t deadline_ms, json_t **out,
                     char *reason, struct gc_error *err)
{
    static const oid sys[] = {1, 3, 6, 1, 2, 1, 1};
    static const char *const sys_names[] = {NULL, "sys_descr", "sys_object_id", NULL, NULL,
                                            "sys_name", "sys_location"};
    if (!time_left(c, deadline_ms)) {
        snprintf(reason, 32, "timeout");
        return gc_error_set(err, GC_EBUSY, "", "no time left to read the device");
    }
    /* the system group: one GET (sysDescr.0, sysObjectID.0, sysName.0, sysLocation.0) */
    netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET);
    for (int k = 1; k <= 6; k++) {
        if (!sys_names[k])
            continue;
        oid name[9];
        memcpy(name, sys, sizeof(sys));
        name[7] = (oid)k;
        name[8] = 0;
        snmp_add_null_var(pdu, name, 9);
    }
    netsnmp_pdu *resp = NULL;
    int rc = request(c, pdu, &resp, reason, err);
    if (rc)
        return rc;
    json_t *o = json_object();
    char text[1024];
    for (netsnmp_variable_list *v = resp->variables; v; v = v->next_variable) {
        if (v->name_length != 9 || v->name[7] < 1 || v->name[7] > 6 || !sys_names[v->name[7]])
            continue;
        var_text(v, text, sizeof(text));
        if (text[0])
            json_object_set_new(o, sys_names[v->name[7]], json_string(text));
    }
    snmp_free_pdu(resp);
    if (!json_object_get(o, "sys_descr") && !json_object_get(o, "sys_name")) {
        json_decref(o);
        snprintf(reason, 32, "no_such_object");
        return gc_error_set(err, GC_EBUSY, "",
                            "the device has neither sysDescr.0 nor sysName.0 (SNMPv2-MIB)");
    }
    /* entPhysicalTable, row by row: one GETNEXT of every column after the last index seen
     * of each; a column that has left the table (or has no value for a row) is asked again
     * with its own last name, so sparse columns keep step */
    static const oid ent[] = {1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1};
    const size_t elen = sizeof(ent) / sizeof(ent[0]);
    oid cur[ENT_NCOLS][MAX_OID_LEN];
    size_t curlen[ENT_NCOLS];
    bool done[ENT_NCOLS];
    for (size_t i = 0; i < ENT_NCOLS; i++) {
        memcpy(cur[i], ent, sizeof(ent));
        cur[i][elen] = (oid)ent_cols[i].col;
        curlen[i] = elen + 1;
        done[i] = false;
    }
    json_t *rows = json_array();
    bool truncated = false;
    while (!rc) {
        size_t ask = 0;
        for (size_t i = 0; i < ENT_NCOLS; i++)
            ask += !done[i];
        if (!ask)
            break;
        if ((int)json_array_size(rows) >= max_rows) {
            truncated = true;
            break;
        }
        if (!time_left(c, deadline_ms)) {
            snprintf(reason, 32, "timeout");
            rc = gc_error_set(err, GC_EBUSY, "",
                              "entPhysicalTable not read within the device's timeout (%d ms)",
                              c->timeout_ms);
            break;
        }
        pdu = snmp_pdu_create(SNMP_MSG_GETNEXT);
        size_t idx[ENT_NCOLS];
        size_t m = 0;
        for (size_t i = 0; i < ENT_NCOLS; i++)
            if (!done[i]) {
                snmp_add_null_var(pdu, cur[i], curlen[i]);
                idx[m++] = i;
            }
        rc = request(c, pdu, &resp, reason, err);
        if (rc)
            break;
        /* the row: the smallest index any column moved to */
        const netsnmp_variable_list *got[ENT_NCOLS] = {0};
        bool have_row = false;
        oid row = 0;
        size_t k = 0;
        for (netsnmp_variable_list *v = resp->variables; v && k < m; v = v->next_variable, k++) {
            size_t i = idx[k];
            bool in = v->type != SNMP_ENDOFMIBVIEW && v->type != SNMP_NOSUCHOBJECT &&
                      v->type != SNMP_NOSUCHINSTANCE && v->name_length == elen + 2 &&
                      !memcmp(v->name, ent, sizeof(ent)) &&
                      v->name[elen] == (oid)ent_cols[i].col;
            if (!in) {
                done[i] = true;
                continue;
            }
            got[i] = v;
            if (!have_row || v->name[elen + 1] < row)
                row = v->name[elen + 1];
            have_row = true;
        }
        if (k < m) { /* a short answer: the columns it left out are not asked again */
            for (; k < m; k++)
                done[idx[k]] = true;
        }
        if (have_row) {
            json_t *r = json_pack("{s:I}", "index", (json_int_t)row);
            for (size_t i = 0; i < ENT_NCOLS; i++) {
                const netsnmp_variable_list *v = got[i];
                if (!v || v->name[elen + 1] != row)
                    continue;
                /* this column answered the row: step on from it (never backwards) */
                if (v->name_length <= MAX_OID_LEN &&
                    snmp_oid_compare(v->name, v->name_length, cur[i], curlen[i]) > 0) {
                    memcpy(cur[i], v->name, v->name_length * sizeof(oid));
                    curlen[i] = v->name_length;
                } else {
                    done[i] = true; /* a device that does not advance */
                }
                if (ent_cols[i].col == 5) {
                    if (v->type == ASN_INTEGER)
                        json_object_set_new(r, "class", json_integer(*v->val.integer));
                    continue;
                }
                var_text(v, text, sizeof(text));
                if (text[0])
                    json_object_set_new(r, ent_cols[i].name, json_string(text));
            }
            json_array_append_new(rows, r);
        }
        snmp_free_pdu(resp);
        resp = NULL;
    }
    if (rc) {
        json_decref(rows);
        json_decref(o);
        return rc;
    }
    json_object_set_new(o, "entities", rows);
    json_object_set_new(o, "entities_truncated", json_boolean(truncated));
    *out = o;
    return 0;
}

static void gsnmp_close(struct gc_sensor_conn *c)
{
    if (!c)
        return;
    if (c->v3)
        pthread_rwlock_wrlock(&usm_lock);
    else
        pthread_mutex_lock(&snmp_lock);
    /* net-snmp keeps the USM user (its keys) in a process-wide table after the session and
     * reuses it for the next session of the same user and engine, whatever keys that one
     * has: a changed or wrong password would go unnoticed. Each poll starts afresh (unless
     * another session of the same user and engine is still open: usm_ref). */
    netsnmp_session *ss = snmp_sess_session(c->sess);
    u_char engine[64];
    size_t elen = 0;
    char user[129] = "";
    if (ss && ss->version == SNMP_VERSION_3 && ss->securityEngineIDLen <= sizeof(engine) &&
        ss->securityName) {
        elen = ss->securityEngineIDLen;
        memcpy(engine, ss->securityEngineID, elen);
        snprintf(user, sizeof(user), "%s", ss->securityName);
    }
    /* another open session of the same user keeps the entry */
    bool last = usm_ref(ss, c->counted ? -1 : 0) <= 0;
    snmp_sess_close(c->sess);
    if (last && elen && user[0]) {
        struct usmUser *u = usm_get_user(engine, elen, user);
        if (u) {
            usm_remove_user(u);
            usm_free_user(u);
        }
    }
    if (c->v3)
        pthread_rwlock_unlock(&usm_lock);
    else
        pthread_mutex_unlock(&snmp_lock);
    free(c);
}

const struct gc_sensor_driver gc_sensor_snmp = {
    .name = "snmp",
    .check = gsnmp_check,
    .open = gsnmp_open,
    .read = gsnmp_read,
    .close = gsnmp_close,
};
