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

/* net-snmp keeps the SNMPv3 USM user table in a process-wide list without locks: v3
 * sessions are opened (engine discovery adds the user) and closed (govcloud removes it)
 * under the write lock, and v3 requests (which look the user up) run under the read lock.
 * So v3 requests run in parallel, but a v3 device that hangs during its session's opening
 * delays other v3 devices' openings by up to its timeout_ms. v2c sessions touch no USM
 * state: their opening and closing (no network I/O) take a plain lock. */
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
    if (c->v3)
        pthread_rwlock_rdlock(&usm_lock);
    int st = snmp_sess_synch_response(c->sess, pdu, &resp);
    if (c->v3)
        pthread_rwlock_unlock(&usm_lock);
    int rc = 0;
    if (st == STAT_TIMEOUT) {
        snprintf(reason, 32, "timeout");
        rc = gc_error_set(err, GC_EBUSY, "",
                          "no answer within %d ms (device down or unreachable, or a wrong "
                          "community or user)",
                          c->timeout_ms);
    } else if (st != STAT_SUCCESS || !resp) {
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
    } else if (resp->errstat != SNMP_ERR_NOERROR) {
        snprintf(reason, 32, "%s",
                 resp->errstat == SNMP_ERR_NOSUCHNAME ? "no_such_object" : "error");
        rc = gc_error_set(err, GC_EBUSY, "", "the device answered: %s (index %ld)",
                          snmp_errstring((int)resp->errstat), resp->errindex);
    } else {
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
     * has: a changed or wrong password would go unnoticed. Each poll starts afresh. */
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
    snmp_sess_close(c->sess);
    if (elen && user[0]) {
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
