/* Unit tests of src/core (and the job runner of src/sched) against a real SQLite store in a
 * temporary directory: roles and scope, body validation, departments, users, logins and
 * lockout, bearer secrets, the audit chain and jobs. */
#include "testutil.h"

#include "core/core.h"
#include "core/validate.h"
#include "crypto/crypto.h"
#include "sched/runner.h"
#include "util/config.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <stdatomic.h>

#define ADMIN_PW "Admin-Passw0rd!"
#define USER_PW "User-Passw0rd#1"

struct fx {
    char dir[64];
    char db[128];
    struct gc_store *st;
    struct gc_config cfg;
    struct gc_principal admin;
    char admin_secret[64];
    struct gc_ctx ctx;  /* as the platform administrator */
    struct gc_ctx anon; /* before authentication */
    struct gc_runner *runner;
};

/* ---- helpers ---- */

static int login(struct fx *f, const char *user, const char *pw, char secret[64],
                 struct gc_error *err)
{
    json_t *in = json_pack("{s:s,s:s}", "username", user, "password", pw);
    json_t *out = NULL;
    int rc = gc_auth_login(&f->anon, in, &out, err);
    json_decref(in);
    if (!rc && secret)
        snprintf(secret, 64, "%s", json_string_value(json_object_get(out, "token")));
    json_decref(out);
    return rc;
}

/* Logs user in and resolves the token: the principal of a real session. */
static void principal_of(struct fx *f, const char *user, const char *pw, struct gc_principal *who)
{
    char secret[64];
    struct gc_error err = {0};
    if (login(f, user, pw, secret, &err) != 0)
        fail_msg("login %s: %s", user, err.msg);
    if (gc_auth_resolve(f->st, secret, who, &err) != 0)
        fail_msg("resolve %s: %s", user, err.msg);
}

static struct gc_ctx ctx_of(struct fx *f, const struct gc_principal *who)
{
    struct gc_ctx c = {
        .store = f->st, .cfg = &f->cfg, .who = who, .request_id = "", .source_ip = ""};
    return c;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    tu_mkdtemp(f->dir);
    snprintf(f->db, sizeof(f->db), "%s/govcloud.db", f->dir);
    gc_config_init(&f->cfg);
    struct gc_error err = {0};
    if (gc_store_open("sqlite", f->db, 4, &f->st, &err) != 0) {
        print_error("gc_store_open: %s\n", err.msg);
        return -1;
    }
    gc_auth_cache_flush();
    char *created = NULL;
    if (gc_bootstrap_admin(f->st, &f->cfg, ADMIN_PW, &created, &err) != 0) {
        print_error("gc_bootstrap_admin: %s\n", err.msg);
        return -1;
    }
    if (created) {
        free(created);
        print_error("a password was generated although one was given\n");
        return -1;
    }
    f->anon = ctx_of(f, NULL);
    if (login(f, "admin", ADMIN_PW, f->admin_secret, &err) != 0 ||
        gc_auth_resolve(f->st, f->admin_secret, &f->admin, &err) != 0) {
        print_error("admin login: %s\n", err.msg);
        return -1;
    }
    f->ctx = ctx_of(f, &f->admin);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f)
        return 0;
    gc_runner_stop(f->runner);
    gc_store_close(f->st);
    gc_config_release(&f->cfg);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

/* Runs one statement in a write transaction of its own. */
static void raw_exec(struct gc_store *st, const char *sql, const struct gc_val *args, size_t n)
{
    struct gc_tx *tx;
    struct gc_error err = {0};
    assert_int_equal(gc_tx_begin(st, GC_TX_WRITE, &tx, &err), 0);
    if (gc_tx_exec(tx, sql, args, n, NULL, &err) != 0) {
        gc_tx_rollback(tx);
        fail_msg("%s: %s", sql, err.msg);
    }
    assert_int_equal(gc_tx_commit(tx, &err), 0);
}

static int64_t raw_int(struct gc_store *st, const char *sql, const struct gc_val *args, size_t n)
{
    struct gc_tx *tx;
    struct gc_error err = {0};
    int64_t v = 0;
    assert_int_equal(gc_tx_begin(st, GC_TX_READ, &tx, &err), 0);
    int rc = gc_tx_query_int(tx, sql, args, n, &v, &err);
    gc_tx_rollback(tx);
    if (rc)
        fail_msg("%s: %s", sql, err.msg);
    return v;
}

static void copy_id(json_t *obj, char id[GC_ID_LEN + 1])
{
    const char *s = json_string_value(json_object_get(obj, "id"));
    assert_non_null(s);
    assert_true(gc_id_valid(s));
    snprintf(id, GC_ID_LEN + 1, "%s", s);
}

/* Creates a department (parent may be NULL) and returns its id. */
static void mkdept(const struct gc_ctx *ctx, const char *name, const char *parent,
                   char id[GC_ID_LEN + 1])
{
    json_t *in = json_pack("{s:s}", "name", name);
    if (parent)
        json_object_set_new(in, "parent_id", json_string(parent));
    json_t *out = NULL;
    struct gc_error err = {0};
    int rc = gc_dept_create(ctx, in, &out, &err);
    json_decref(in);
    if (rc)
        fail_msg("create department %s: %s", name, err.msg);
    copy_id(out, id);
    json_decref(out);
}

static int user_create(const struct gc_ctx *ctx, const char *username, const char *role,
                       const char *dept, const char *pw, json_t **out, struct gc_error *err)
{
    json_t *in = json_pack("{s:s,s:s,s:s}", "username", username, "role", role, "password", pw);
    if (dept)
        json_object_set_new(in, "department_id", json_string(dept));
    *out = NULL;
    int rc = gc_user_create(ctx, in, out, err);
    json_decref(in);
    return rc;
}

static void mkuser(const struct gc_ctx *ctx, const char *username, const char *role,
                   const char *dept, char id[GC_ID_LEN + 1])
{
    json_t *out;
    struct gc_error err = {0};
    if (user_create(ctx, username, role, dept, USER_PW, &out, &err) != 0)
        fail_msg("create user %s: %s", username, err.msg);
    if (id)
        copy_id(out, id);
    json_decref(out);
}

static int dept_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                       json_t **out, struct gc_error *err)
{
    *out = NULL;
    int rc = gc_dept_update(ctx, id, if_match, in, out, err);
    json_decref(in);
    return rc;
}

/* An integer member of department id, as the administrator sees it. */
static json_int_t dept_int(struct fx *f, const char *id, const char *member)
{
    json_t *o = NULL;
    struct gc_error err = {0};
    if (gc_dept_get(&f->ctx, id, &o, &err) != 0)
        fail_msg("get department %s: %s", id, err.msg);
    json_int_t v = json_integer_value(json_object_get(o, member));
    json_decref(o);
    return v;
}

static void dept_path_of(struct fx *f, const char *id, char path[GC_DEPT_PATH_MAX])
{
    struct gc_tx *tx;
    struct gc_error err = {0};
    assert_int_equal(gc_tx_begin(f->st, GC_TX_READ, &tx, &err), 0);
    int rc = gc_dept_path(tx, id, path, &err);
    gc_tx_rollback(tx);
    if (rc)
        fail_msg("path of %s: %s", id, err.msg);
}

/* ---- roles, permissions, scope ---- */

static void roles_parse_and_name(void **state)
{
    (void)state;
    static const char *const names[] = {"platform_admin", "operator", "auditor", "supervisor",
                                        "department_admin", "department_user"};
    assert_int_equal(GC_ROLE_COUNT, 6);
    for (int i = 0; i < GC_ROLE_COUNT; i++) {
        assert_string_equal(gc_role_name((enum gc_role)i), names[i]);
        assert_int_equal(gc_role_parse(names[i]), i);
        assert_int_equal(gc_role_is_platform((enum gc_role)i), i < 4);
    }
    assert_int_equal(gc_role_parse("root"), -1);
    assert_int_equal(gc_role_parse(""), -1);
    assert_int_equal(gc_role_parse("Platform_Admin"), -1);
    assert_int_equal(gc_role_parse("platform_admin "), -1);
    assert_string_equal(gc_role_name((enum gc_role)99), "unknown");
    assert_false(gc_role_is_platform((enum gc_role)99));
}

static void role_permission_matrix(void **state)
{
    (void)state;
    for (int p = 0; p < GC_P_COUNT; p++)
        assert_true(gc_role_can(GC_ROLE_PLATFORM_ADMIN, (enum gc_perm)p));
    static const struct {
        enum gc_role role;
        enum gc_perm perm;
        bool can;
    } m[] = {
        {GC_ROLE_OPERATOR, GC_P_DEPT_READ, true},
        {GC_ROLE_OPERATOR, GC_P_DEPT_WRITE, false},
        {GC_ROLE_OPERATOR, GC_P_USER_WRITE, false},
        {GC_ROLE_OPERATOR, GC_P_JOB_WRITE, true},
        {GC_ROLE_OPERATOR, GC_P_AUDIT_READ, false},
        {GC_ROLE_AUDITOR, GC_P_AUDIT_READ, true},
        {GC_ROLE_AUDITOR, GC_P_USER_READ, true},
        {GC_ROLE_AUDITOR, GC_P_USER_WRITE, false},
        {GC_ROLE_AUDITOR, GC_P_JOB_WRITE, false},
        {GC_ROLE_SUPERVISOR, GC_P_SUPERVISION_READ, true},
        {GC_ROLE_SUPERVISOR, GC_P_USER_READ, false},
        {GC_ROLE_SUPERVISOR, GC_P_AUDIT_READ, false},
        {GC_ROLE_SUPERVISOR, GC_P_DEPT_WRITE, false},
        {GC_ROLE_DEPARTMENT_ADMIN, GC_P_DEPT_WRITE, true},
        {GC_ROLE_DEPARTMENT_ADMIN, GC_P_USER_WRITE, true},
        {GC_ROLE_DEPARTMENT_ADMIN, GC_P_AUDIT_READ, true},
        {GC_ROLE_DEPARTMENT_ADMIN, GC_P_SUPERVISION_READ, false},
        {GC_ROLE_DEPARTMENT_USER, GC_P_DEPT_READ, true},
        {GC_ROLE_DEPARTMENT_USER, GC_P_JOB_READ, true},
        {GC_ROLE_DEPARTMENT_USER, GC_P_JOB_WRITE, false},
        {GC_ROLE_DEPARTMENT_USER, GC_P_USER_WRITE, false},
        {GC_ROLE_DEPARTMENT_USER, GC_P_DEPT_WRITE, false},
        {GC_ROLE_DEPARTMENT_USER, GC_P_AUDIT_READ, false},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        if (gc_role_can(m[i].role, m[i].perm) != m[i].can)
            fail_msg("role %s, permission %d: want %s", gc_role_name(m[i].role), (int)m[i].perm,
                     m[i].can ? "allowed" : "denied");
    assert_false(gc_role_can((enum gc_role)GC_ROLE_COUNT, GC_P_DEPT_READ));
    assert_false(gc_role_can(GC_ROLE_PLATFORM_ADMIN, (enum gc_perm)GC_P_COUNT));
    assert_false(gc_role_can(GC_ROLE_PLATFORM_ADMIN, (enum gc_perm)31));
}

static void scope_rules(void **state)
{
    (void)state;
    struct gc_principal plat = {.role = GC_ROLE_AUDITOR};
    struct gc_principal dadm = {.role = GC_ROLE_DEPARTMENT_ADMIN};
    struct gc_principal dusr = {.role = GC_ROLE_DEPARTMENT_USER};
    snprintf(dadm.dept_path, sizeof(dadm.dept_path), "/a/b/");
    snprintf(dusr.dept_path, sizeof(dusr.dept_path), "/a/b/");

    /* platform roles see everything, platform objects included */
    assert_true(gc_in_scope(&plat, ""));
    assert_true(gc_in_scope(&plat, NULL));
    assert_true(gc_in_scope(&plat, "/x/"));
    /* department admin: the subtree */
    assert_true(gc_in_scope(&dadm, "/a/b/"));
    assert_true(gc_in_scope(&dadm, "/a/b/c/"));
    assert_true(gc_in_scope(&dadm, "/a/b/c/d/"));
    assert_false(gc_in_scope(&dadm, "/a/"));
    assert_false(gc_in_scope(&dadm, "/a/bc/"));
    assert_false(gc_in_scope(&dadm, "/x/a/b/"));
    assert_false(gc_in_scope(&dadm, ""));
    assert_false(gc_in_scope(&dadm, NULL));
    /* department user: exactly the own department */
    assert_true(gc_in_scope(&dusr, "/a/b/"));
    assert_false(gc_in_scope(&dusr, "/a/b/c/"));
    assert_false(gc_in_scope(&dusr, "/a/"));
    assert_false(gc_in_scope(&dusr, ""));
    assert_false(gc_in_scope(&dusr, NULL));
    /* a department role without a department sees nothing */
    struct gc_principal lost = {.role = GC_ROLE_DEPARTMENT_ADMIN};
    assert_false(gc_in_scope(&lost, "/a/"));
    assert_false(gc_in_scope(&lost, ""));
    assert_false(gc_in_scope(NULL, "/a/"));

    /* authorize: scope first (not found), then the role (forbidden) */
    struct gc_error err = {0};
    assert_int_equal(gc_authorize(&dusr, GC_P_DEPT_READ, "/a/b/", "department", "d1", &err), 0);
    assert_int_equal(gc_authorize(&dusr, GC_P_DEPT_WRITE, "/x/", "department", "d2", &err),
                     GC_ENOTFOUND);
    assert_string_equal(err.msg, "department 'd2' not found");
    assert_int_equal(gc_authorize(&dusr, GC_P_DEPT_WRITE, "/a/b/", "department", "d1", &err),
                     GC_EPERM);
    assert_contains(err.msg, "department_user");
    assert_int_equal(gc_authorize(&dadm, GC_P_DEPT_WRITE, "/a/b/c/", "department", "d3", &err),
                     0);
    assert_int_equal(gc_require(NULL, GC_P_DEPT_READ, &err), GC_EAUTH);
    assert_int_equal(gc_require(&plat, GC_P_AUDIT_READ, &err), 0);
    assert_int_equal(gc_require(&dusr, GC_P_USER_WRITE, &err), GC_EPERM);
}

/* ---- validation ---- */

static const struct gc_jfield spec[] = {
    {"name", GC_JT_STRING, true, false, 1, 3, GC_CS_TEXT},
    {"code", GC_JT_STRING, false, true, 1, 16, GC_CS_CODE},
    {"user", GC_JT_STRING, false, false, 2, 16, GC_CS_USERNAME},
    {"n", GC_JT_INT, false, false, 1, 10, GC_CS_ANY},
    {"flag", GC_JT_BOOL, false, false, 0, 0, GC_CS_ANY},
    {"obj", GC_JT_OBJECT, false, true, 0, 0, GC_CS_ANY},
    {"any", GC_JT_STRING, false, false, 0, 100, GC_CS_ANY},
};

/* Checks text against spec; returns the code and leaves the message in err. */
static int check(const char *text, struct gc_error *err)
{
    json_error_t je;
    json_t *in = json_loads(text, JSON_DECODE_ANY, &je);
    if (!in)
        fail_msg("bad test JSON %s: %s", text, je.text);
    gc_error_clear(err);
    int rc = gc_json_check(in, spec, sizeof(spec) / sizeof(spec[0]), err);
    json_decref(in);
    return rc;
}

static void json_check_rules(void **state)
{
    (void)state;
    struct gc_error err;
    /* good bodies */
    assert_int_equal(check("{\"name\":\"abc\"}", &err), 0);
    assert_int_equal(check("{\"name\":\"部门一\"}", &err), 0); /* 3 characters, 9 bytes */
    assert_int_equal(check("{\"name\":\"a\",\"code\":\"A-b_c.9\",\"user\":\"ab.c-d_1\",\"n\":10,"
                           "\"flag\":false,\"obj\":{\"x\":[1]},\"any\":\"\\t\\n ok\"}",
                           &err),
                     0);
    assert_int_equal(check("{\"name\":\"a\",\"code\":null,\"obj\":null}", &err), 0);

    /* unknown field: named, with the known ones listed */
    assert_int_equal(check("{\"name\":\"a\",\"bogus\":1}", &err), GC_EINVAL);
    assert_string_equal(err.field, "bogus");
    assert_contains(err.msg, "unknown field 'bogus'");
    assert_contains(err.msg, "known fields: name, code, user, n, flag, obj, any");

    /* wrong types */
    static const struct {
        const char *body, *field, *msg;
    } wrong[] = {
        {"{\"name\":5}", "name", "field 'name': expected a string, got an integer"},
        {"{\"name\":\"a\",\"n\":\"5\"}", "n", "expected an integer, got a string"},
        {"{\"name\":\"a\",\"n\":1.5}", "n", "expected an integer, got a number"},
        {"{\"name\":\"a\",\"flag\":1}", "flag", "expected a boolean, got an integer"},
        {"{\"name\":\"a\",\"flag\":\"true\"}", "flag", "expected a boolean, got a string"},
        {"{\"name\":\"a\",\"obj\":[]}", "obj", "expected an object, got an array"},
        {"{\"name\":[\"a\"]}", "name", "expected a string, got an array"},
        {"{\"name\":true}", "name", "expected a string, got a boolean"},
    };
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        assert_int_equal(check(wrong[i].body, &err), GC_EINVAL);
        assert_string_equal(err.field, wrong[i].field);
        assert_contains(err.msg, wrong[i].msg);
    }

    /* null */
    assert_int_equal(check("{\"name\":null}", &err), GC_EINVAL);
    assert_string_equal(err.field, "name");
    assert_contains(err.msg, "must not be null");
    assert_int_equal(check("{\"name\":\"a\",\"n\":null}", &err), GC_EINVAL);
    assert_string_equal(err.field, "n");

    /* lengths count characters, not bytes */
    assert_int_equal(check("{\"name\":\"部门一二\"}", &err), GC_EINVAL);
    assert_string_equal(err.field, "name");
    assert_contains(err.msg, "from 1 to 3 characters, got 4");
    assert_int_equal(check("{\"name\":\"\"}", &err), GC_EINVAL);
    assert_contains(err.msg, "got 0");
    assert_int_equal(check("{\"name\":\"a\",\"user\":\"b\"}", &err), GC_EINVAL);
    assert_string_equal(err.field, "user");
    assert_int_equal(gc_utf8_len("部门"), 2);
    assert_int_equal(gc_utf8_len("a部b"), 3);
    assert_int_equal(gc_utf8_len(""), 0);
    assert_int_equal(gc_utf8_len("😀x"), 2);

    /* integer range */
    assert_int_equal(check("{\"name\":\"a\",\"n\":11}", &err), GC_EINVAL);
    assert_contains(err.msg, "must be from 1 to 10, got 11");
    assert_int_equal(check("{\"name\":\"a\",\"n\":0}", &err), GC_EINVAL);
    assert_int_equal(check("{\"name\":\"a\",\"n\":-9223372036854775808}", &err), GC_EINVAL);

    /* character sets */
    assert_int_equal(check("{\"name\":\"a\",\"code\":\"a b\"}", &err), GC_EINVAL);
    assert_string_equal(err.field, "code");
    assert_contains(err.msg, "character ' ' not allowed");
    assert_int_equal(check("{\"name\":\"a\",\"code\":\"a/b\"}", &err), GC_EINVAL);
    assert_int_equal(check("{\"name\":\"a\",\"code\":\"部门\"}", &err), GC_EINVAL);
    assert_int_equal(check("{\"name\":\"a\\nb\"}", &err), GC_EINVAL);
    assert_contains(err.msg, "control character 0x0a");
    assert_int_equal(check("{\"name\":\"a\\u007f\"}", &err), GC_EINVAL);
    assert_contains(err.msg, "0x7f");
    assert_int_equal(check("{\"name\":\"a\",\"user\":\"1abc\"}", &err), GC_EINVAL);
    assert_int_equal(check("{\"name\":\"a\",\"user\":\"Abc\"}", &err), GC_EINVAL);
    assert_int_equal(check("{\"name\":\"a\",\"user\":\"ab c\"}", &err), GC_EINVAL);
    assert_int_equal(check("{\"name\":\"a\",\"user\":\"_abc\"}", &err), GC_EINVAL);
    assert_int_equal(check("{\"name\":\"a\",\"user\":\"abc1\"}", &err), 0);

    /* required */
    assert_int_equal(check("{}", &err), GC_EINVAL);
    assert_string_equal(err.field, "name");
    assert_contains(err.msg, "missing required field 'name'");
    assert_int_equal(check("{\"n\":5}", &err), GC_EINVAL);
    assert_string_equal(err.field, "name");

    /* not an object */
    assert_int_equal(check("[]", &err), GC_EINVAL);
    assert_contains(err.msg, "must be a JSON object, got an array");
    assert_int_equal(check("\"x\"", &err), GC_EINVAL);
    assert_contains(err.msg, "got a string");

    /* gc_json_str */
    json_t *o = json_pack("{s:s,s:i,s:n}", "a", "x", "b", 1, "c");
    assert_string_equal(gc_json_str(o, "a"), "x");
    assert_null(gc_json_str(o, "b"));
    assert_null(gc_json_str(o, "c"));
    assert_null(gc_json_str(o, "d"));
    json_decref(o);
}

static void password_policy_rules(void **state)
{
    (void)state;
    struct gc_config cfg;
    gc_config_init(&cfg);
    struct gc_error err = {0};
    static const char *const good[] = {
        "abcdefghI1",        /* lower, upper, digit */
        "abcdefgh1!",        /* lower, digit, other */
        "ABCDEFGH1!",        /* upper, digit, other */
        "密码密码密码密码a1", /* 10 characters: other, lower, digit */
        "Correct Horse 1",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (gc_password_policy(&cfg, good[i], &err) != 0)
            fail_msg("policy refused \"%s\": %s", good[i], err.msg);
    static const struct {
        const char *pw, *msg;
    } bad[] = {
        {"Short1!", "at least 10 characters"},
        {"", "at least 10 characters"},
        {"密码密码密码a1", "at least 10 characters"}, /* 8 characters, 20 bytes */
        {"alllowercase", "three kinds"},
        {"abcdefghij1", "three kinds"},
        {"ABCDEFGHIJ!", "three kinds"},
        {"1234567890", "three kinds"},
        {"abcdefgH1\x01x", "control characters"},
        {"abcdefgH1\x7fx", "control characters"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gc_error_clear(&err);
        if (gc_password_policy(&cfg, bad[i].pw, &err) != GC_EINVAL)
            fail_msg("policy accepted \"%s\"", bad[i].pw);
        assert_string_equal(err.field, "password");
        assert_contains(err.msg, bad[i].msg);
    }
    char longpw[300];
    memset(longpw, 'a', sizeof(longpw) - 1);
    longpw[sizeof(longpw) - 1] = '\0';
    longpw[0] = 'A';
    longpw[1] = '1';
    assert_int_equal(gc_password_policy(&cfg, longpw, &err), GC_EINVAL);
    assert_contains(err.msg, "at most 256");
    longpw[256] = '\0';
    assert_int_equal(gc_password_policy(&cfg, longpw, &err), 0);
    /* the minimum length comes from the configuration */
    cfg.password_min_length = 12;
    assert_int_equal(gc_password_policy(&cfg, "abcdefghI1!", &err), GC_EINVAL);
    assert_contains(err.msg, "at least 12");
    gc_config_release(&cfg);
}

static void paging_helpers_and_job_states(void **state)
{
    (void)state;
    struct gc_error err = {0};
    int lim = -1;
    assert_int_equal(gc_page_limit(0, &lim, &err), 0);
    assert_int_equal(lim, 50);
    assert_int_equal(gc_page_limit(500, &lim, &err), 0);
    assert_int_equal(lim, 500);
    assert_int_equal(gc_page_limit(501, &lim, &err), GC_EINVAL);
    assert_string_equal(err.field, "limit");
    assert_int_equal(gc_page_limit(-1, &lim, &err), GC_EINVAL);
    assert_int_equal(gc_page_cursor_id(NULL, &err), 0);
    assert_int_equal(gc_page_cursor_id("01890a5d-ac96-774b-bcce-b302099a8057", &err), 0);
    assert_int_equal(gc_page_cursor_id("2", &err), GC_EINVAL);
    assert_string_equal(err.field, "cursor");

    static const char *const names[] = {"queued", "running", "succeeded", "failed",
                                        "cancelled"};
    for (int i = 0; i < GC_JOB_STATE_COUNT; i++) {
        assert_string_equal(gc_job_state_name((enum gc_job_state)i), names[i]);
        assert_int_equal(gc_job_state_parse(names[i]), i);
    }
    assert_int_equal(gc_job_state_parse("done"), -1);
    assert_string_equal(gc_job_state_name((enum gc_job_state)42), "unknown");

    json_t *t = gc_json_time(1700000000123LL);
    assert_string_equal(json_string_value(t), "2023-11-14T22:13:20.123Z");
    json_decref(t);
    t = gc_json_time(0);
    assert_true(json_is_null(t));
    json_decref(t);
}

/* ---- departments ---- */

static void dept_create_get_update_delete(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    json_t *in, *out = NULL;

    in = json_pack("{s:s,s:s,s:s}", "name", "省政府", "code", "prov", "description", "省级单位");
    assert_int_equal(gc_dept_create(&f->ctx, in, &out, &err), 0);
    json_decref(in);
    char prov[GC_ID_LEN + 1];
    copy_id(out, prov);
    assert_string_equal(json_string_value(json_object_get(out, "name")), "省政府");
    assert_string_equal(json_string_value(json_object_get(out, "code")), "prov");
    assert_string_equal(json_string_value(json_object_get(out, "description")), "省级单位");
    assert_true(json_is_null(json_object_get(out, "parent_id")));
    assert_int_equal(json_integer_value(json_object_get(out, "depth")), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "version")), 1);
    int64_t t;
    assert_int_equal(
        gc_time_parse_rfc3339(json_string_value(json_object_get(out, "created_at")), &t), 0);
    assert_true(t > 0);
    json_decref(out);

    out = NULL;
    assert_int_equal(gc_dept_get(&f->ctx, prov, &out, &err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "id")), prov);
    assert_string_equal(json_string_value(json_object_get(out, "name")), "省政府");
    json_decref(out);

    char city[GC_ID_LEN + 1];
    mkdept(&f->ctx, "市政府", prov, city);
    assert_int_equal(dept_int(f, city, "depth"), 1);
    char prov_path[GC_DEPT_PATH_MAX], city_path[GC_DEPT_PATH_MAX], want[GC_DEPT_PATH_MAX];
    dept_path_of(f, prov, prov_path);
    dept_path_of(f, city, city_path);
    snprintf(want, sizeof(want), "/%s/", prov);
    assert_string_equal(prov_path, want);
    snprintf(want, sizeof(want), "/%s/%s/", prov, city);
    assert_string_equal(city_path, want);

    /* conflicts and bad input */
    static const struct {
        const char *name, *code;
        int parent; /* 0 none, 1 prov, 2 an unknown id */
        int rc;
        const char *field;
    } bad[] = {
        {"省政府", NULL, 0, GC_ECONFLICT, "name"},         /* second root with that name */
        {"其他", "prov", 0, GC_ECONFLICT, "code"},         /* code taken */
        {"市政府", NULL, 1, GC_ECONFLICT, "name"},         /* sibling with that name */
        {"孤儿", NULL, 2, GC_EINVAL, "parent_id"},         /* parent does not exist */
        {"", NULL, 0, GC_EINVAL, "name"},                  /* empty name */
        {"好名字", "bad code", 0, GC_EINVAL, "code"},      /* code charset */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        in = json_pack("{s:s}", "name", bad[i].name);
        if (bad[i].code)
            json_object_set_new(in, "code", json_string(bad[i].code));
        if (bad[i].parent)
            json_object_set_new(in, "parent_id",
                                json_string(bad[i].parent == 1
                                                ? prov
                                                : "01890a5d-ac96-774b-bcce-b302099a8057"));
        out = NULL;
        gc_error_clear(&err);
        int rc = gc_dept_create(&f->ctx, in, &out, &err);
        json_decref(in);
        json_decref(out);
        if (rc != bad[i].rc)
            fail_msg("case %zu (%s): rc %d, want %d (%s)", i, bad[i].name, rc, bad[i].rc,
                     err.msg);
        assert_string_equal(err.field, bad[i].field);
    }
    /* a name may repeat under another parent */
    char other[GC_ID_LEN + 1];
    mkdept(&f->ctx, "市政府", NULL, other);

    /* update with optimistic concurrency */
    assert_int_equal(dept_update(&f->ctx, prov, 1, json_pack("{s:s}", "name", "省人民政府"), &out,
                                 &err),
                     0);
    assert_string_equal(json_string_value(json_object_get(out, "name")), "省人民政府");
    assert_int_equal(json_integer_value(json_object_get(out, "version")), 2);
    json_decref(out);
    assert_int_equal(dept_update(&f->ctx, prov, 1, json_pack("{s:s}", "name", "旧版本"), &out, &err),
                     GC_EPRECOND);
    assert_contains(err.msg, "version 2");
    assert_int_equal(dept_update(&f->ctx, prov, -1, json_pack("{s:n,s:s}", "code", "description",
                                                              "新描述"),
                                 &out, &err),
                     0);
    assert_true(json_is_null(json_object_get(out, "code")));
    assert_string_equal(json_string_value(json_object_get(out, "description")), "新描述");
    assert_string_equal(json_string_value(json_object_get(out, "name")), "省人民政府");
    assert_int_equal(json_integer_value(json_object_get(out, "version")), 3);
    json_decref(out);
    /* renaming a root onto another root's name */
    assert_int_equal(dept_update(&f->ctx, other, -1, json_pack("{s:s}", "name", "省人民政府"), &out,
                                 &err),
                     GC_ECONFLICT);
    assert_string_equal(err.field, "name");
    assert_int_equal(dept_update(&f->ctx, prov, -1, json_pack("{s:i}", "bogus", 1), &out, &err),
                     GC_EINVAL);
    assert_string_equal(err.field, "bogus");

    /* unknown ids */
    out = NULL;
    assert_int_equal(gc_dept_get(&f->ctx, "01890a5d-ac96-774b-bcce-b302099a8057", &out, &err),
                     GC_ENOTFOUND);
    assert_int_equal(gc_dept_get(&f->ctx, "not-an-id", &out, &err), GC_ENOTFOUND);
    assert_null(out);

    /* delete */
    assert_int_equal(gc_dept_delete(&f->ctx, city, 7, &err), GC_EPRECOND);
    assert_int_equal(gc_dept_delete(&f->ctx, city, 1, &err), 0);
    assert_int_equal(gc_dept_get(&f->ctx, city, &out, &err), GC_ENOTFOUND);
    assert_int_equal(gc_dept_delete(&f->ctx, city, -1, &err), GC_ENOTFOUND);
    assert_int_equal(gc_dept_delete(&f->ctx, prov, -1, &err), 0);
    assert_int_equal(gc_dept_delete(&f->ctx, other, -1, &err), 0);
    assert_int_equal(raw_int(f->st, "SELECT COUNT(*) FROM departments", GC_NOARGS), 0);
}

static void dept_list_pages_and_filters(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    enum { N = 7 };
    char ids[N][GC_ID_LEN + 1];
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "d%d", i);
        mkdept(&f->ctx, name, NULL, ids[i]);
    }
    char child[GC_ID_LEN + 1];
    mkdept(&f->ctx, "child", ids[0], child);

    /* pages of 3 over the 7 roots: 3 + 3 + 1, ascending ids, no repeats */
    json_t *filters = json_pack("{s:s}", "parent_id", "root");
    char *cursor = NULL;
    int seen = 0, pages = 0;
    char last[GC_ID_LEN + 1] = "";
    do {
        json_t *items = NULL;
        char *next = NULL;
        int rc = gc_dept_list(&f->ctx, filters, 3, cursor, &items, &next, &err);
        free(cursor);
        cursor = next;
        if (rc)
            fail_msg("list: %s", err.msg);
        pages++;
        size_t n = json_array_size(items);
        assert_true(n == 3 || (n == 1 && !next));
        for (size_t i = 0; i < n; i++) {
            const char *id = json_string_value(json_object_get(json_array_get(items, i), "id"));
            assert_true(strcmp(id, last) > 0);
            snprintf(last, sizeof(last), "%s", id);
            seen++;
        }
        json_decref(items);
    } while (cursor && pages < 10);
    json_decref(filters);
    assert_int_equal(seen, N);
    assert_int_equal(pages, 3);

    /* filters */
    json_t *items = NULL;
    char *next = NULL;
    filters = json_pack("{s:s}", "name", "d4");
    assert_int_equal(gc_dept_list(&f->ctx, filters, 0, NULL, &items, &next, &err), 0);
    json_decref(filters);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "id")),
                        ids[4]);
    assert_null(next);
    json_decref(items);
    filters = json_pack("{s:s}", "parent_id", ids[0]);
    assert_int_equal(gc_dept_list(&f->ctx, filters, 0, NULL, &items, &next, &err), 0);
    json_decref(filters);
    assert_int_equal(json_array_size(items), 1);
    json_decref(items);
    assert_int_equal(gc_dept_list(&f->ctx, NULL, 0, NULL, &items, &next, &err), 0);
    assert_int_equal(json_array_size(items), N + 1);
    json_decref(items);

    assert_int_equal(gc_dept_list(&f->ctx, NULL, 501, NULL, &items, &next, &err), GC_EINVAL);
    assert_int_equal(gc_dept_list(&f->ctx, NULL, 10, "garbage", &items, &next, &err), GC_EINVAL);
    assert_string_equal(err.field, "cursor");
}

static void dept_tree_moves_and_cycles(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    json_t *out = NULL;
    char a[GC_ID_LEN + 1], b[GC_ID_LEN + 1], c[GC_ID_LEN + 1], d[GC_ID_LEN + 1];
    mkdept(&f->ctx, "A", NULL, a);
    mkdept(&f->ctx, "B", a, b);
    mkdept(&f->ctx, "C", b, c);
    mkdept(&f->ctx, "D", NULL, d);
    assert_int_equal(dept_int(f, c, "depth"), 2);

    /* move B (with C) under D */
    assert_int_equal(dept_update(&f->ctx, b, -1, json_pack("{s:s}", "parent_id", d), &out, &err),
                     0);
    assert_string_equal(json_string_value(json_object_get(out, "parent_id")), d);
    assert_int_equal(json_integer_value(json_object_get(out, "depth")), 1);
    json_decref(out);
    assert_int_equal(dept_int(f, c, "depth"), 2);
    char path[GC_DEPT_PATH_MAX], want[GC_DEPT_PATH_MAX];
    dept_path_of(f, b, path);
    snprintf(want, sizeof(want), "/%s/%s/", d, b);
    assert_string_equal(path, want);
    dept_path_of(f, c, path);
    snprintf(want, sizeof(want), "/%s/%s/%s/", d, b, c);
    assert_string_equal(path, want);
    dept_path_of(f, a, path);
    snprintf(want, sizeof(want), "/%s/", a);
    assert_string_equal(path, want);
    /* A lost its child */
    json_t *filters = json_pack("{s:s}", "parent_id", a), *items = NULL;
    char *next = NULL;
    assert_int_equal(gc_dept_list(&f->ctx, filters, 0, NULL, &items, &next, &err), 0);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);
    json_decref(filters);

    /* cycles are refused: under itself, under its child, under its grandchild */
    const char *targets[][2] = {{b, b}, {b, c}, {d, c}, {d, b}};
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        gc_error_clear(&err);
        assert_int_equal(dept_update(&f->ctx, targets[i][0], -1,
                                     json_pack("{s:s}", "parent_id", targets[i][1]), &out, &err),
                         GC_EINVAL);
        assert_string_equal(err.field, "parent_id");
        assert_contains(err.msg, "cannot move under itself");
    }
    /* nothing moved */
    dept_path_of(f, c, path);
    snprintf(want, sizeof(want), "/%s/%s/%s/", d, b, c);
    assert_string_equal(path, want);

    /* B back to the top level */
    assert_int_equal(dept_update(&f->ctx, b, -1, json_pack("{s:n}", "parent_id"), &out, &err),
                     0);
    assert_true(json_is_null(json_object_get(out, "parent_id")));
    assert_int_equal(json_integer_value(json_object_get(out, "depth")), 0);
    json_decref(out);
    assert_int_equal(dept_int(f, c, "depth"), 1);
    dept_path_of(f, c, path);
    snprintf(want, sizeof(want), "/%s/%s/", b, c);
    assert_string_equal(path, want);

    /* moving to the current parent is not a move */
    int64_t v = dept_int(f, c, "version");
    assert_int_equal(dept_update(&f->ctx, c, v, json_pack("{s:s}", "parent_id", b), &out, &err),
                     0);
    assert_int_equal(json_integer_value(json_object_get(out, "version")), v + 1);
    json_decref(out);
    /* to a parent that does not exist */
    assert_int_equal(dept_update(&f->ctx, c, -1,
                                 json_pack("{s:s}", "parent_id",
                                           "01890a5d-ac96-774b-bcce-b302099a8057"),
                                 &out, &err),
                     GC_EINVAL);
    assert_string_equal(err.field, "parent_id");
}

static void dept_depth_is_limited(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    char chain[GC_DEPT_MAX_DEPTH][GC_ID_LEN + 1];
    for (int i = 0; i < GC_DEPT_MAX_DEPTH; i++) {
        char name[16];
        snprintf(name, sizeof(name), "L%d", i);
        mkdept(&f->ctx, name, i ? chain[i - 1] : NULL, chain[i]);
    }
    assert_int_equal(dept_int(f, chain[GC_DEPT_MAX_DEPTH - 1], "depth"), GC_DEPT_MAX_DEPTH - 1);
    char path[GC_DEPT_PATH_MAX];
    dept_path_of(f, chain[GC_DEPT_MAX_DEPTH - 1], path);
    assert_int_equal(strlen(path), 1 + GC_DEPT_MAX_DEPTH * (GC_ID_LEN + 1));

    json_t *in = json_pack("{s:s,s:s}", "name", "too deep", "parent_id",
                           chain[GC_DEPT_MAX_DEPTH - 1]);
    json_t *out = NULL;
    assert_int_equal(gc_dept_create(&f->ctx, in, &out, &err), GC_EINVAL);
    json_decref(in);
    assert_string_equal(err.field, "parent_id");
    assert_contains(err.msg, "at most 8 levels");

    /* a two-level subtree fits under L5 but not under L6 */
    char x[GC_ID_LEN + 1], y[GC_ID_LEN + 1];
    mkdept(&f->ctx, "X", NULL, x);
    mkdept(&f->ctx, "Y", x, y);
    assert_int_equal(dept_update(&f->ctx, x, -1, json_pack("{s:s}", "parent_id", chain[6]), &out,
                                 &err),
                     GC_EINVAL);
    assert_contains(err.msg, "deeper than 8");
    assert_int_equal(dept_int(f, y, "depth"), 1);
    assert_int_equal(dept_update(&f->ctx, x, -1, json_pack("{s:s}", "parent_id", chain[5]), &out,
                                 &err),
                     0);
    json_decref(out);
    assert_int_equal(dept_int(f, y, "depth"), 7);
}

/* Moving a department next to a sibling of the same name is a conflict that names it. */
static void dept_move_name_conflict_names_department(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    json_t *out = NULL;
    char p[GC_ID_LEN + 1], kid[GC_ID_LEN + 1], mover[GC_ID_LEN + 1];
    mkdept(&f->ctx, "上级", NULL, p);
    mkdept(&f->ctx, "办公室", p, kid);
    mkdept(&f->ctx, "办公室", NULL, mover);
    int rc = dept_update(&f->ctx, mover, -1, json_pack("{s:s}", "parent_id", p), &out, &err);
    json_decref(out);
    assert_int_equal(rc, GC_ECONFLICT);
    assert_string_equal(err.field, "name");
    assert_contains(err.msg, "办公室");
    /* the failed move left everything in place */
    char path[GC_DEPT_PATH_MAX], want[GC_DEPT_PATH_MAX];
    dept_path_of(f, mover, path);
    snprintf(want, sizeof(want), "/%s/", mover);
    assert_string_equal(path, want);
}

static void dept_delete_refused_while_owned(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    char a[GC_ID_LEN + 1], b[GC_ID_LEN + 1], u[GC_ID_LEN + 1];
    mkdept(&f->ctx, "A", NULL, a);
    mkdept(&f->ctx, "B", a, b);
    mkuser(&f->ctx, "clerk", "department_user", b, u);

    assert_int_equal(gc_dept_delete(&f->ctx, a, -1, &err), GC_ECONFLICT);
    assert_contains(err.msg, "child departments");
    assert_int_equal(gc_dept_delete(&f->ctx, b, -1, &err), GC_ECONFLICT);
    assert_contains(err.msg, "1 users");
    assert_string_equal(err.field, "id");

    assert_int_equal(gc_user_delete(&f->ctx, u, -1, &err), 0);
    assert_int_equal(gc_dept_delete(&f->ctx, b, -1, &err), 0);
    assert_int_equal(gc_dept_delete(&f->ctx, a, -1, &err), 0);
    assert_int_equal(raw_int(f->st, "SELECT COUNT(*) FROM departments", GC_NOARGS), 0);
}

/* ---- users ---- */

static void user_create_rules(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    json_t *out = NULL;
    char dept[GC_ID_LEN + 1];
    mkdept(&f->ctx, "财政厅", NULL, dept);

    assert_int_equal(user_create(&f->ctx, "ops1", "operator", NULL, USER_PW, &out, &err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "role")), "operator");
    assert_true(json_is_null(json_object_get(out, "department_id")));
    assert_false(json_is_true(json_object_get(out, "disabled")));
    assert_null(json_object_get(out, "password_hash"));
    assert_null(json_object_get(out, "password"));
    json_decref(out);

    assert_int_equal(user_create(&f->ctx, "clerk1", "department_user", dept, USER_PW, &out, &err),
                     0);
    assert_string_equal(json_string_value(json_object_get(out, "department_id")), dept);
    char clerk[GC_ID_LEN + 1];
    copy_id(out, clerk);
    json_decref(out);
    /* the stored hash verifies the password and is not the password */
    struct gc_tx *tx;
    struct gc_rows *r;
    assert_int_equal(gc_tx_begin(f->st, GC_TX_READ, &tx, &err), 0);
    assert_int_equal(gc_tx_query(tx, "SELECT password_hash FROM users WHERE id = ?",
                                 GC_ARGS(GC_VTXT(clerk)), &r, &err),
                     0);
    assert_int_equal(gc_rows_next(r, &err), 1);
    char *hash = gc_rows_dup(r, 0);
    gc_rows_free(r);
    gc_tx_rollback(tx);
    bool verifies = gc_password_verify(USER_PW, hash);
    bool scrypt = strncmp(hash, "$scrypt$", 8) == 0;
    free(hash);
    assert_true(verifies);
    assert_true(scrypt);

    static const struct {
        const char *username, *role;
        int dept; /* 0 none, 1 dept, 2 an unknown id */
        const char *pw;
        int rc;
        const char *field;
    } bad[] = {
        {"ops2", "operator", 1, USER_PW, GC_EINVAL, "department_id"},
        {"clerk2", "department_user", 0, USER_PW, GC_EINVAL, "department_id"},
        {"clerk3", "department_admin", 2, USER_PW, GC_EINVAL, "department_id"},
        {"x1", "root", 0, USER_PW, GC_EINVAL, "role"},
        {"Bad", "operator", 0, USER_PW, GC_EINVAL, "username"},
        {"a", "operator", 0, USER_PW, GC_EINVAL, "username"},
        {"9lives", "operator", 0, USER_PW, GC_EINVAL, "username"},
        {"weak", "operator", 0, "password", GC_EINVAL, "password"},
        {"ops1", "auditor", 0, USER_PW, GC_ECONFLICT, "username"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *d = bad[i].dept == 1   ? dept
                        : bad[i].dept == 2 ? "01890a5d-ac96-774b-bcce-b302099a8057"
                                           : NULL;
        gc_error_clear(&err);
        int rc = user_create(&f->ctx, bad[i].username, bad[i].role, d, bad[i].pw, &out, &err);
        json_decref(out);
        if (rc != bad[i].rc)
            fail_msg("case %zu (%s): rc %d, want %d (%s)", i, bad[i].username, rc, bad[i].rc,
                     err.msg);
        assert_string_equal(err.field, bad[i].field);
    }
    assert_int_equal(raw_int(f->st, "SELECT COUNT(*) FROM users", GC_NOARGS), 3);

    /* get and list */
    assert_int_equal(gc_user_get(&f->ctx, clerk, &out, &err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "username")), "clerk1");
    json_decref(out);
    assert_int_equal(gc_user_get(&f->ctx, "me", &out, &err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "username")), "admin");
    json_decref(out);
    json_t *filters = json_pack("{s:s}", "role", "operator"), *items = NULL;
    char *next = NULL;
    assert_int_equal(gc_user_list(&f->ctx, filters, 0, NULL, &items, &next, &err), 0);
    json_decref(filters);
    assert_int_equal(json_array_size(items), 1);
    json_decref(items);
    assert_int_equal(gc_user_list(&f->ctx, NULL, 2, NULL, &items, &next, &err), 0);
    assert_int_equal(json_array_size(items), 2);
    assert_non_null(next);
    json_decref(items);
    json_t *items2 = NULL;
    char *next2 = NULL;
    assert_int_equal(gc_user_list(&f->ctx, NULL, 2, next, &items2, &next2, &err), 0);
    free(next);
    assert_int_equal(json_array_size(items2), 1);
    assert_null(next2);
    json_decref(items2);

    /* the last platform administrator stays */
    assert_int_equal(gc_user_delete(&f->ctx, f->admin.user_id, -1, &err), GC_EPERM);
}

static void department_admin_is_scoped(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    json_t *out = NULL;
    char a[GC_ID_LEN + 1], a1[GC_ID_LEN + 1], b[GC_ID_LEN + 1], bu[GC_ID_LEN + 1];
    mkdept(&f->ctx, "A", NULL, a);
    mkdept(&f->ctx, "A1", a, a1);
    mkdept(&f->ctx, "B", NULL, b);
    mkuser(&f->ctx, "aadmin", "department_admin", a, NULL);
    mkuser(&f->ctx, "buser", "department_user", b, bu);

    struct gc_principal who;
    principal_of(f, "aadmin", USER_PW, &who);
    assert_int_equal(who.role, GC_ROLE_DEPARTMENT_ADMIN);
    char want[GC_DEPT_PATH_MAX];
    snprintf(want, sizeof(want), "/%s/", a);
    assert_string_equal(who.dept_path, want);
    assert_string_equal(who.department_id, a);
    struct gc_ctx ctx = ctx_of(f, &who);

    /* may create department users in the subtree */
    assert_int_equal(user_create(&ctx, "a1user", "department_user", a1, USER_PW, &out, &err), 0);
    json_decref(out);
    /* may not grant platform roles, nor reach other departments */
    assert_int_equal(user_create(&ctx, "sneaky", "operator", NULL, USER_PW, &out, &err), GC_EPERM);
    assert_string_equal(err.field, "role");
    assert_int_equal(user_create(&ctx, "sneaky", "department_user", b, USER_PW, &out, &err),
                     GC_EINVAL);
    assert_string_equal(err.field, "department_id");
    /* other departments' objects do not exist for them */
    assert_int_equal(gc_user_get(&ctx, bu, &out, &err), GC_ENOTFOUND);
    assert_int_equal(gc_dept_get(&ctx, b, &out, &err), GC_ENOTFOUND);
    assert_int_equal(gc_user_get(&ctx, f->admin.user_id, &out, &err), GC_ENOTFOUND);
    assert_int_equal(gc_dept_get(&ctx, a1, &out, &err), 0);
    json_decref(out);
    /* lists hold the subtree only */
    json_t *items = NULL;
    char *next = NULL;
    assert_int_equal(gc_dept_list(&ctx, NULL, 0, NULL, &items, &next, &err), 0);
    assert_int_equal(json_array_size(items), 2);
    json_decref(items);
    assert_int_equal(gc_user_list(&ctx, NULL, 0, NULL, &items, &next, &err), 0);
    assert_int_equal(json_array_size(items), 2); /* aadmin and a1user */
    json_decref(items);
    /* top-level departments are for platform administrators */
    json_t *in = json_pack("{s:s}", "name", "rogue");
    assert_int_equal(gc_dept_create(&ctx, in, &out, &err), GC_EPERM);
    json_decref(in);
    in = json_pack("{s:s,s:s}", "name", "A2", "parent_id", a);
    assert_int_equal(gc_dept_create(&ctx, in, &out, &err), 0);
    json_decref(in);
    json_decref(out);
    /* nor may they delete their own department */
    assert_int_equal(gc_dept_delete(&ctx, a, -1, &err), GC_EPERM);

    /* a department user may not create users */
    struct gc_principal bwho;
    principal_of(f, "buser", USER_PW, &bwho);
    struct gc_ctx bctx = ctx_of(f, &bwho);
    assert_int_equal(user_create(&bctx, "another", "department_user", b, USER_PW, &out, &err),
                     GC_EPERM);
}

/* ---- authentication ---- */

static void login_lockout(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    char uid[GC_ID_LEN + 1];
    mkuser(&f->ctx, "locky", "operator", NULL, uid);
    f->cfg.max_failed_logins = 3;
    const char *fails_sql = "SELECT failed_logins FROM users WHERE id = ?";

    for (int i = 1; i < 3; i++) {
        gc_error_clear(&err);
        assert_int_equal(login(f, "locky", "Wrong-Passw0rd", NULL, &err), GC_EAUTH);
        assert_string_equal(err.msg, "invalid username or password");
        assert_int_equal(raw_int(f->st, fails_sql, GC_ARGS(GC_VTXT(uid))), i);
    }
    gc_error_clear(&err);
    assert_int_equal(login(f, "locky", "Wrong-Passw0rd", NULL, &err), GC_ELOCKED);
    assert_int_equal(err.retry_after, f->cfg.lockout_seconds);
    assert_contains(err.msg, "locked");
    assert_string_equal(err.field, "username");
    int64_t until = raw_int(f->st, "SELECT locked_until FROM users WHERE id = ?",
                            GC_ARGS(GC_VTXT(uid)));
    assert_true(until > gc_now_ms() + (f->cfg.lockout_seconds - 5) * 1000);

    /* while locked, even the right password is refused */
    gc_error_clear(&err);
    assert_int_equal(login(f, "locky", USER_PW, NULL, &err), GC_ELOCKED);
    assert_in_range(err.retry_after, 1, f->cfg.lockout_seconds);

    /* once the lock has expired the right password works and resets the count */
    raw_exec(f->st, "UPDATE users SET locked_until = ?, failed_logins = 2 WHERE id = ?",
             GC_ARGS(GC_VINT_(gc_now_ms() - 1), GC_VTXT(uid)));
    char secret[64];
    assert_int_equal(login(f, "locky", USER_PW, secret, &err), 0);
    assert_int_equal(raw_int(f->st, fails_sql, GC_ARGS(GC_VTXT(uid))), 0);

    /* an unknown user gets the same answer as a wrong password, and is audited */
    gc_error_clear(&err);
    assert_int_equal(login(f, "nobody", "Wrong-Passw0rd", NULL, &err), GC_EAUTH);
    assert_string_equal(err.msg, "invalid username or password");
    assert_int_equal(raw_int(f->st,
                             "SELECT COUNT(*) FROM audit_events WHERE action = 'auth.login' AND"
                             " actor_name = 'nobody' AND reason = 'unknown username'",
                             GC_NOARGS),
                     1);
    assert_int_equal(raw_int(f->st,
                             "SELECT COUNT(*) FROM audit_events WHERE action = 'auth.login' AND"
                             " outcome = 'failure' AND resource_id = ?",
                             GC_ARGS(GC_VTXT(uid))),
                     3);

    /* malformed bodies */
    json_t *in = json_pack("{s:i,s:s}", "username", 1, "password", "x"), *out = NULL;
    assert_int_equal(gc_auth_login(&f->anon, in, &out, &err), GC_EINVAL);
    json_decref(in);
    in = json_pack("{s:s}", "username", "locky");
    assert_int_equal(gc_auth_login(&f->anon, in, &out, &err), GC_EINVAL);
    assert_string_equal(err.field, "password");
    json_decref(in);
}

static void disabled_account_cannot_log_in(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    char uid[GC_ID_LEN + 1];
    mkuser(&f->ctx, "sleeper", "auditor", NULL, uid);
    char secret[64];
    assert_int_equal(login(f, "sleeper", USER_PW, secret, &err), 0);
    json_t *in = json_pack("{s:b}", "disabled", 1), *out = NULL;
    assert_int_equal(gc_user_update(&f->ctx, uid, -1, in, &out, &err), 0);
    json_decref(in);
    assert_true(json_is_true(json_object_get(out, "disabled")));
    json_decref(out);
    assert_int_equal(login(f, "sleeper", USER_PW, NULL, &err), GC_EPERM);
    assert_contains(err.msg, "disabled");
    /* and the session from before is gone */
    struct gc_principal who;
    assert_int_equal(gc_auth_resolve(f->st, secret, &who, &err), GC_EAUTH);
}

static void resolve_secrets(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    struct gc_principal who;

    /* the admin's session from the fixture */
    memset(&who, 0x5a, sizeof(who));
    assert_int_equal(gc_auth_resolve(f->st, f->admin_secret, &who, &err), 0);
    assert_string_equal(who.username, "admin");
    assert_int_equal(who.role, GC_ROLE_PLATFORM_ADMIN);
    assert_true(gc_id_valid(who.user_id));
    assert_true(gc_id_valid(who.token_id));
    assert_string_equal(who.department_id, "");
    assert_string_equal(who.dept_path, "");
    assert_false(who.via_api_key);
    assert_int_equal(strlen(f->admin_secret), 47);
    assert_true(strncmp(f->admin_secret, "gct_", 4) == 0);
    /* resolved twice (the second time from the cache): same principal */
    struct gc_principal again;
    assert_int_equal(gc_auth_resolve(f->st, f->admin_secret, &again, &err), 0);
    assert_string_equal(again.user_id, who.user_id);
    assert_string_equal(again.token_id, who.token_id);
    /* the store keeps only the SM3 of the secret */
    char h[GC_SM3_HEX_LEN + 1];
    gc_sm3_hex(f->admin_secret, strlen(f->admin_secret), h);
    assert_int_equal(raw_int(f->st, "SELECT COUNT(*) FROM tokens WHERE secret_hash = ? AND id = ?",
                             GC_ARGS(GC_VTXT(h), GC_VTXT(who.token_id))),
                     1);
    assert_int_equal(raw_int(f->st, "SELECT COUNT(*) FROM tokens WHERE secret_hash = ?",
                             GC_ARGS(GC_VTXT(f->admin_secret))),
                     0);

    /* malformed */
    char long_one[80];
    snprintf(long_one, sizeof(long_one), "%sA", f->admin_secret);
    char bad_char[64];
    snprintf(bad_char, sizeof(bad_char), "%s", f->admin_secret);
    bad_char[20] = '!';
    char bad_prefix[64];
    snprintf(bad_prefix, sizeof(bad_prefix), "%s", f->admin_secret);
    bad_prefix[2] = 'x';
    const char *malformed[] = {"", "gct_", "Bearer x", long_one, bad_char, bad_prefix,
                               f->admin_secret + 1};
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        gc_error_clear(&err);
        if (gc_auth_resolve(f->st, malformed[i], &who, &err) != GC_EAUTH)
            fail_msg("malformed secret \"%s\" accepted", malformed[i]);
        assert_string_equal(err.field, "Authorization");
        assert_contains(err.msg, "malformed");
    }

    /* well formed but unknown */
    char unknown[64];
    gc_secret_new("gct_", unknown);
    gc_error_clear(&err);
    assert_int_equal(gc_auth_resolve(f->st, unknown, &who, &err), GC_EAUTH);
    assert_contains(err.msg, "unknown");

    /* an API key resolves too, marked as such */
    json_t *in = json_pack("{s:s}", "name", "ci"), *out = NULL;
    assert_int_equal(gc_apikey_create(&f->ctx, in, &out, &err), 0);
    json_decref(in);
    const char *key = json_string_value(json_object_get(out, "key"));
    assert_non_null(key);
    assert_true(strncmp(key, "gck_", 4) == 0);
    assert_int_equal(gc_auth_resolve(f->st, key, &who, &err), 0);
    assert_true(who.via_api_key);
    assert_string_equal(who.username, "admin");
    json_decref(out);

    /* an expired session */
    char secret[64];
    assert_int_equal(login(f, "admin", ADMIN_PW, secret, &err), 0);
    gc_sm3_hex(secret, strlen(secret), h);
    raw_exec(f->st, "UPDATE tokens SET expires_at = ? WHERE secret_hash = ?",
             GC_ARGS(GC_VINT_(gc_now_ms() - 1000), GC_VTXT(h)));
    gc_auth_cache_flush();
    gc_error_clear(&err);
    assert_int_equal(gc_auth_resolve(f->st, secret, &who, &err), GC_EAUTH);
    assert_contains(err.msg, "expired");

    /* logging out ends the session at once */
    struct gc_principal me;
    assert_int_equal(gc_auth_resolve(f->st, f->admin_secret, &me, &err), 0);
    struct gc_ctx c = ctx_of(f, &me);
    assert_int_equal(gc_auth_logout(&c, &err), 0);
    gc_error_clear(&err);
    assert_int_equal(gc_auth_resolve(f->st, f->admin_secret, &who, &err), GC_EAUTH);
}

/* ---- audit ---- */

static void audit_chain_verifies_and_finds_tampering(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    char a[GC_ID_LEN + 1], b[GC_ID_LEN + 1];
    mkdept(&f->ctx, "A", NULL, a);
    mkdept(&f->ctx, "B", a, b);
    json_t *out = NULL;
    assert_int_equal(dept_update(&f->ctx, b, -1, json_pack("{s:s}", "description", "审计"), &out,
                                 &err),
                     0);
    json_decref(out);
    mkuser(&f->ctx, "clerk", "department_user", b, NULL);
    assert_int_equal(login(f, "clerk", "Wrong-Passw0rd", NULL, &err), GC_EAUTH);

    int64_t n = raw_int(f->st, "SELECT COUNT(*) FROM audit_events", GC_NOARGS);
    /* bootstrap, admin login, 2 creates, update, user create, failed login */
    assert_int_equal(n, 7);
    json_t *rep = NULL;
    assert_int_equal(gc_audit_verify(f->st, &rep, &err), 0);
    assert_true(json_is_true(json_object_get(rep, "intact")));
    assert_int_equal(json_integer_value(json_object_get(rep, "events")), n);
    assert_int_equal(json_integer_value(json_object_get(rep, "head_seq")), n);
    assert_null(json_object_get(rep, "first_bad_seq"));
    json_decref(rep);

    /* every event links to the one before */
    assert_int_equal(raw_int(f->st,
                             "SELECT COUNT(*) FROM audit_events e JOIN audit_events p"
                             " ON p.seq = e.seq - 1 WHERE e.prev_hash = p.hash",
                             GC_NOARGS),
                     n - 1);

    raw_exec(f->st, "UPDATE audit_events SET reason = 'x' WHERE seq = 2", GC_NOARGS);
    assert_int_equal(gc_audit_verify(f->st, &rep, &err), 0);
    assert_true(json_is_false(json_object_get(rep, "intact")));
    assert_int_equal(json_integer_value(json_object_get(rep, "first_bad_seq")), 2);
    assert_contains(json_string_value(json_object_get(rep, "problem")), "edited");
    json_decref(rep);
}

static void audit_chain_finds_deleted_events(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    char a[GC_ID_LEN + 1];
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof(name), "D%d", i);
        mkdept(&f->ctx, name, NULL, a);
    }
    int64_t n = raw_int(f->st, "SELECT COUNT(*) FROM audit_events", GC_NOARGS);
    assert_int_equal(n, 6);
    json_t *rep = NULL;

    /* the newest event removed: the head still points past it */
    raw_exec(f->st, "DELETE FROM audit_events WHERE seq = ?", GC_ARGS(GC_VINT_(n)));
    assert_int_equal(gc_audit_verify(f->st, &rep, &err), 0);
    assert_true(json_is_false(json_object_get(rep, "intact")));
    assert_int_equal(json_integer_value(json_object_get(rep, "first_bad_seq")), n);
    assert_contains(json_string_value(json_object_get(rep, "problem")), "deleted");
    json_decref(rep);

    /* an event in the middle removed */
    raw_exec(f->st, "DELETE FROM audit_events WHERE seq = 3", GC_NOARGS);
    assert_int_equal(gc_audit_verify(f->st, &rep, &err), 0);
    assert_true(json_is_false(json_object_get(rep, "intact")));
    assert_int_equal(json_integer_value(json_object_get(rep, "first_bad_seq")), 3);
    assert_contains(json_string_value(json_object_get(rep, "problem")), "missing");
    json_decref(rep);
}

static void audit_list_pages(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    char id[GC_ID_LEN + 1];
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof(name), "P%d", i);
        mkdept(&f->ctx, name, NULL, id);
    }
    /* 5 events: bootstrap, login, 3 creates; pages of 2 */
    char *cursor = NULL;
    int64_t expect = 1;
    int pages = 0;
    do {
        json_t *items = NULL;
        char *next = NULL;
        int rc = gc_audit_list(&f->ctx, NULL, 2, cursor, &items, &next, &err);
        free(cursor);
        cursor = next;
        if (rc)
            fail_msg("audit list: %s", err.msg);
        for (size_t i = 0; i < json_array_size(items); i++)
            assert_int_equal(json_integer_value(json_object_get(json_array_get(items, i), "seq")),
                             expect++);
        json_decref(items);
        pages++;
    } while (cursor && pages < 10);
    assert_int_equal(expect, 6);
    assert_int_equal(pages, 3);

    json_t *filters = json_pack("{s:s}", "action", "department.create"), *items = NULL;
    char *next = NULL;
    assert_int_equal(gc_audit_list(&f->ctx, filters, 0, NULL, &items, &next, &err), 0);
    json_decref(filters);
    assert_int_equal(json_array_size(items), 3);
    json_t *ev = json_array_get(items, 0);
    assert_string_equal(json_string_value(json_object_get(ev, "actor_name")), "admin");
    assert_string_equal(json_string_value(json_object_get(ev, "outcome")), "success");
    assert_true(json_is_object(json_object_get(ev, "detail")));
    json_decref(items);

    /* operators may not read the audit trail */
    mkuser(&f->ctx, "op", "operator", NULL, NULL);
    struct gc_principal who;
    principal_of(f, "op", USER_PW, &who);
    struct gc_ctx c = ctx_of(f, &who);
    assert_int_equal(gc_audit_list(&c, NULL, 0, NULL, &items, &next, &err), GC_EPERM);
}

/* ---- jobs ---- */

static struct gc_store *job_store;
static atomic_int progress_seen;

/* Adds params a and b; records progress half-way and checks that it reached the store. */
static int sum_run(struct gc_job_run *job, const json_t *params, json_t **result,
                   struct gc_error *err)
{
    json_int_t a = json_integer_value(json_object_get(params, "a"));
    json_int_t b = json_integer_value(json_object_get(params, "b"));
    if (gc_job_progress(job, 50, "half way"))
        return gc_error_set(err, GC_EBUSY, "", "asked to stop");
    if (job_store) {
        struct gc_tx *tx;
        struct gc_error e = {0};
        int64_t n = 0;
        if (gc_tx_begin(job_store, GC_TX_READ, &tx, &e) == 0) {
            if (gc_tx_query_int(tx,
                                "SELECT COUNT(*) FROM jobs WHERE id = ? AND progress = 50 AND"
                                " message = 'half way' AND state = 'running'",
                                GC_ARGS(GC_VTXT(gc_job_id(job))), &n, &e) == 0 &&
                n == 1)
                atomic_fetch_add(&progress_seen, 1);
            gc_tx_rollback(tx);
        }
    }
    if (json_is_true(json_object_get(params, "fail")))
        return gc_error_set(err, GC_EINTERNAL, "", "asked to fail with a=%lld", (long long)a);
    *result = json_pack("{s:I,s:s}", "sum", a + b, "job", gc_job_id(job));
    return 0;
}

static const struct gc_job_kind kind_sum = {
    .name = "unit.sum", .run = sum_run, .resumable = false, .submittable = false};
static const struct gc_job_kind kind_resumable = {
    .name = "unit.resumable", .run = sum_run, .resumable = true};
static const struct gc_job_kind kind_once = {.name = "unit.once", .run = sum_run,
                                             .resumable = false};

static void submit(struct fx *f, const char *kind, json_t *params, char id[GC_ID_LEN + 1])
{
    struct gc_tx *tx;
    struct gc_error err = {0};
    assert_int_equal(gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err), 0);
    int rc = gc_job_submit(tx, &f->ctx, kind, params, NULL, NULL, NULL, id, &err);
    json_decref(params);
    if (rc) {
        gc_tx_rollback(tx);
        fail_msg("submit %s: %s", kind, err.msg);
    }
    assert_int_equal(gc_tx_commit(tx, &err), 0);
    gc_job_notify();
}

/* Waits until job id has ended; returns its representation. */
static json_t *wait_job(struct fx *f, const char *id)
{
    for (int i = 0; i < 1500; i++) {
        json_t *o = NULL;
        struct gc_error err = {0};
        if (gc_job_get(&f->ctx, id, &o, &err) != 0)
            fail_msg("get job %s: %s", id, err.msg);
        const char *s = json_string_value(json_object_get(o, "state"));
        if (strcmp(s, "queued") != 0 && strcmp(s, "running") != 0)
            return o;
        json_decref(o);
        tu_sleep_ms(10);
    }
    fail_msg("job %s did not end within 15 s", id);
    return NULL;
}

static void jobs_run_to_the_end(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    gc_job_register(&kind_sum);
    gc_job_register(&kind_sum); /* twice is harmless */
    assert_ptr_equal(gc_job_kind_find("unit.sum"), &kind_sum);
    assert_null(gc_job_kind_find("unit.nope"));
    job_store = f->st;
    atomic_store(&progress_seen, 0);

    /* unknown kinds are refused */
    struct gc_tx *tx;
    char id[GC_ID_LEN + 1], bad_id[GC_ID_LEN + 1];
    assert_int_equal(gc_tx_begin(f->st, GC_TX_WRITE, &tx, &err), 0);
    assert_int_equal(gc_job_submit(tx, &f->ctx, "unit.nope", NULL, NULL, NULL, NULL, id, &err),
                     GC_EINVAL);
    assert_string_equal(err.field, "kind");
    gc_tx_rollback(tx);

    submit(f, "unit.sum", json_pack("{s:i,s:i}", "a", 2, "b", 3), id);
    submit(f, "unit.sum", json_pack("{s:i,s:b}", "a", 7, "fail", 1), bad_id);
    json_t *o = NULL;
    assert_int_equal(gc_job_get(&f->ctx, id, &o, &err), 0);
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "unit.sum");
    assert_string_equal(json_string_value(json_object_get(o, "created_by")), f->admin.user_id);
    json_decref(o);

    f->cfg.job_workers = 1;
    f->runner = gc_runner_start(f->st, &f->cfg);
    assert_non_null(f->runner);

    o = wait_job(f, id);
    assert_string_equal(json_string_value(json_object_get(o, "state")), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(o, "progress")), 100);
    assert_int_equal(json_integer_value(json_object_get(o, "attempts")), 1);
    assert_string_equal(json_string_value(json_object_get(o, "error")), "");
    json_t *res = json_object_get(o, "result");
    assert_int_equal(json_integer_value(json_object_get(res, "sum")), 5);
    assert_string_equal(json_string_value(json_object_get(res, "job")), id);
    assert_true(json_is_string(json_object_get(o, "started_at")));
    assert_true(json_is_string(json_object_get(o, "finished_at")));
    json_decref(o);

    o = wait_job(f, bad_id);
    assert_string_equal(json_string_value(json_object_get(o, "state")), "failed");
    assert_contains(json_string_value(json_object_get(o, "error")), "asked to fail with a=7");
    json_decref(o);

    gc_runner_stop(f->runner);
    f->runner = NULL;
    job_store = NULL;
    /* both runs saw their progress in the store */
    assert_int_equal(atomic_load(&progress_seen), 2);
    /* the ends are audited, and the chain holds */
    assert_int_equal(raw_int(f->st,
                             "SELECT COUNT(*) FROM audit_events WHERE action = 'job.succeeded'"
                             " AND resource_id = ? AND actor_name = 'system'",
                             GC_ARGS(GC_VTXT(id))),
                     1);
    assert_int_equal(raw_int(f->st,
                             "SELECT COUNT(*) FROM audit_events WHERE action = 'job.failed'"
                             " AND resource_id = ?",
                             GC_ARGS(GC_VTXT(bad_id))),
                     1);
    int64_t counts[GC_JOB_STATE_COUNT];
    assert_int_equal(gc_job_count_by_state(f->st, counts, &err), 0);
    assert_int_equal(counts[GC_JOB_SUCCEEDED], 1);
    assert_int_equal(counts[GC_JOB_FAILED], 1);
    assert_int_equal(counts[GC_JOB_QUEUED], 0);
    json_t *rep = NULL;
    assert_int_equal(gc_audit_verify(f->st, &rep, &err), 0);
    assert_true(json_is_true(json_object_get(rep, "intact")));
    json_decref(rep);
}

static void jobs_recover_after_a_crash(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    gc_job_register(&kind_resumable);
    gc_job_register(&kind_once);
    char rid[GC_ID_LEN + 1], oid[GC_ID_LEN + 1], qid[GC_ID_LEN + 1];
    submit(f, "unit.resumable", json_pack("{s:i}", "a", 1), rid);
    submit(f, "unit.once", json_pack("{s:i}", "a", 1), oid);
    submit(f, "unit.once", json_pack("{s:i}", "a", 1), qid);
    /* the state a killed daemon leaves: two jobs running, one still queued */
    raw_exec(f->st, "UPDATE jobs SET state = 'running', attempts = 1, started_at = 1"
                    " WHERE id IN (?, ?)",
             GC_ARGS(GC_VTXT(rid), GC_VTXT(oid)));

    assert_int_equal(gc_jobs_recover(f->st, &err), 0);

    json_t *o = NULL;
    assert_int_equal(gc_job_get(&f->ctx, rid, &o, &err), 0);
    assert_string_equal(json_string_value(json_object_get(o, "state")), "queued");
    assert_contains(json_string_value(json_object_get(o, "message")), "running it again");
    json_decref(o);
    assert_int_equal(gc_job_get(&f->ctx, oid, &o, &err), 0);
    assert_string_equal(json_string_value(json_object_get(o, "state")), "failed");
    assert_contains(json_string_value(json_object_get(o, "error")), "cannot resume");
    assert_true(json_is_string(json_object_get(o, "finished_at")));
    json_decref(o);
    assert_int_equal(gc_job_get(&f->ctx, qid, &o, &err), 0);
    assert_string_equal(json_string_value(json_object_get(o, "state")), "queued");
    json_decref(o);
    assert_int_equal(raw_int(f->st, "SELECT COUNT(*) FROM jobs WHERE state = 'running'",
                             GC_NOARGS),
                     0);
    assert_int_equal(raw_int(f->st,
                             "SELECT COUNT(*) FROM audit_events WHERE action = 'job.failed'"
                             " AND resource_id = ?",
                             GC_ARGS(GC_VTXT(oid))),
                     1);
    /* nothing left to do the second time */
    assert_int_equal(gc_jobs_recover(f->st, &err), 0);
    assert_int_equal(raw_int(f->st, "SELECT COUNT(*) FROM jobs WHERE state = 'queued'",
                             GC_NOARGS),
                     2);
    json_t *rep = NULL;
    assert_int_equal(gc_audit_verify(f->st, &rep, &err), 0);
    assert_true(json_is_true(json_object_get(rep, "intact")));
    json_decref(rep);
}

static void jobs_cancel_before_start(void **state)
{
    struct fx *f = *state;
    struct gc_error err = {0};
    gc_job_register(&kind_once);
    char id[GC_ID_LEN + 1];
    submit(f, "unit.once", NULL, id);
    json_t *o = NULL;
    assert_int_equal(gc_job_cancel(&f->ctx, id, &o, &err), 0);
    assert_string_equal(json_string_value(json_object_get(o, "state")), "cancelled");
    assert_true(json_is_true(json_object_get(o, "cancel_requested")));
    json_decref(o);
    o = NULL;
    assert_int_equal(gc_job_cancel(&f->ctx, id, &o, &err), GC_ECONFLICT);
    assert_contains(err.msg, "already ended");
    assert_null(o);
    assert_int_equal(gc_job_cancel(&f->ctx, "01890a5d-ac96-774b-bcce-b302099a8057", &o, &err),
                     GC_ENOTFOUND);
    /* a cancelled job is never claimed */
    f->cfg.job_workers = 1;
    f->runner = gc_runner_start(f->st, &f->cfg);
    gc_job_notify();
    tu_sleep_ms(100);
    gc_runner_stop(f->runner);
    f->runner = NULL;
    assert_int_equal(raw_int(f->st, "SELECT attempts FROM jobs WHERE id = ?", GC_ARGS(GC_VTXT(id))),
                     0);
}

/* Which pools take volumes, in which format: the rules of docs/infrastructure.md "Storage
 * pools of volumes", on pools as a host reports them (RBD among them: no Ceph is needed to
 * check what govcloud accepts). */
static void volume_pool_rules(void **state)
{
    (void)state;
    json_t *pools = json_loads(
        "[{\"name\":\"default\",\"type\":\"dir\",\"state\":\"running\"},"
        "{\"name\":\"vg0\",\"type\":\"logical\",\"state\":\"running\"},"
        "{\"name\":\"ceph\",\"type\":\"rbd\",\"state\":\"running\"},"
        "{\"name\":\"nfs\",\"type\":\"netfs\",\"state\":\"running\"},"
        "{\"name\":\"off\",\"type\":\"rbd\",\"state\":\"inactive\"},"
        "{\"name\":\"san\",\"type\":\"iscsi\",\"state\":\"running\"}]",
        0, NULL);
    assert_non_null(pools);
    static const struct {
        const char *pool;
        bool named;
        int rc;
        const char *format, *says;
    } cases[] = {
        {"default", true, 0, "qcow2", NULL},
        {"nfs", true, 0, "qcow2", NULL},
        {"vg0", true, 0, "raw", NULL},
        {"ceph", true, 0, "raw", NULL},
        {"off", true, GC_ECONFLICT, NULL, "is inactive, not running"},
        {"san", true, GC_EINVAL, NULL, "is of type 'iscsi'"},
        {"nope", true, GC_EINVAL, NULL, "has no storage pool 'nope'"},
        {"nope", false, 0, "qcow2", NULL}, /* the configured default, not reported */
        {"vg0", false, 0, "raw", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gc_error err = {0};
        char fmt[16] = "";
        int rc = gc_volume_pool_check(pools, "h1", cases[i].pool, cases[i].named, fmt, &err);
        assert_int_equal(rc, cases[i].rc);
        if (cases[i].format)
            assert_string_equal(fmt, cases[i].format);
        if (cases[i].says) {
            assert_non_null(strstr(err.msg, cases[i].says));
            assert_string_equal(err.field, "pool");
        }
    }
    struct gc_error err = {0};
    char fmt[16] = "";
    assert_int_equal(gc_volume_pool_check(NULL, "h1", "x", true, fmt, &err), GC_EINVAL);
    json_decref(pools);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* qcow2 header fields are big-endian */
static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static void image_header_rules(void **state)
{
    (void)state;
    struct gc_error err = {0};
    unsigned char h[GC_IMAGE_HEADER_BYTES];
    memset(h, 0, sizeof(h));
    /* raw: anything that is not another format */
    assert_int_equal(gc_image_header_check("raw", h, sizeof(h), false, &err), 0);
    assert_int_equal(gc_image_header_check("raw", h, 10, true, &err), 0);
    assert_int_equal(gc_image_header_check("raw", h, 0, true, &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "empty"));
    static const struct {
        const char *magic;
        size_t off, len;
        const char *name;
    } foreign[] = {{"QFI\xfb", 0, 4, "qcow"}, {"KDMV", 0, 4, "VMDK"},
                   {"\x7f\x10\xda\xbe", 64, 4, "VDI"}, {"vhdxfile", 0, 8, "VHDX"},
                   {"conectix", 0, 8, "VHD"}, {"LUKS\xba\xbe", 0, 6, "LUKS"},
                   {"QED\0", 0, 4, "QED"}};
    for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
        memset(h, 0, sizeof(h));
        memcpy(h + foreign[i].off, foreign[i].magic, foreign[i].len);
        gc_error_clear(&err);
        assert_int_equal(gc_image_header_check("raw", h, sizeof(h), false, &err), GC_EINVAL);
        assert_non_null(strstr(err.msg, foreign[i].name));
        /* a file shorter than the signature's end is raw */
        assert_int_equal(gc_image_header_check("raw", h, foreign[i].off + foreign[i].len - 1,
                                               true, &err),
                         0);
    }
    /* qcow2 v3, standalone: accepted */
    memset(h, 0, sizeof(h));
    memcpy(h, "QFI\xfb", 4);
    put_be(h + 4, 3, 4);
    put_be(h + 20, 16, 4);
    put_be(h + 24, 1ull << 30, 8);
    put_be(h + 100, 104, 4);
    assert_int_equal(gc_image_header_check("qcow2", h, sizeof(h), false, &err), 0);
    /* version 2 too (72-byte header) */
    put_be(h + 4, 2, 4);
    assert_int_equal(gc_image_header_check("qcow2", h, 72, true, &err), 0);
    put_be(h + 4, 3, 4);
    /* a backing file (offset, or a name length alone) */
    put_be(h + 8, 512, 8);
    assert_int_equal(gc_image_header_check("qcow2", h, sizeof(h), false, &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "backing file"));
    put_be(h + 8, 0, 8);
    put_be(h + 16, 11, 4);
    assert_int_equal(gc_image_header_check("qcow2", h, sizeof(h), false, &err), GC_EINVAL);
    put_be(h + 16, 0, 4);
    /* encryption */
    put_be(h + 32, 2, 4);
    assert_int_equal(gc_image_header_check("qcow2", h, sizeof(h), false, &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "encrypted"));
    put_be(h + 32, 0, 4);
    /* external data file, corrupt, unknown incompatible feature; dirty (bit 0) is fine */
    put_be(h + 72, 4, 8);
    assert_int_equal(gc_image_header_check("qcow2", h, sizeof(h), false, &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "external"));
    put_be(h + 72, 2, 8);
    assert_int_equal(gc_image_header_check("qcow2", h, sizeof(h), false, &err), GC_EINVAL);
    put_be(h + 72, 1ull << 40, 8);
    assert_int_equal(gc_image_header_check("qcow2", h, sizeof(h), false, &err), GC_EINVAL);
    put_be(h + 72, 1, 8);
    assert_int_equal(gc_image_header_check("qcow2", h, sizeof(h), false, &err), 0);
    put_be(h + 72, 0, 8);
    /* other versions, truncated headers, no magic */
    put_be(h + 4, 1, 4);
    assert_int_equal(gc_image_header_check("qcow2", h, sizeof(h), false, &err), GC_EINVAL);
    put_be(h + 4, 3, 4);
    assert_int_equal(gc_image_header_check("qcow2", h, 80, true, &err), GC_EINVAL);
    assert_int_equal(gc_image_header_check("qcow2", h, 40, true, &err), GC_EINVAL);
    h[0] = 'X';
    assert_int_equal(gc_image_header_check("qcow2", h, sizeof(h), false, &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "not a qcow2"));
    assert_int_equal(gc_image_header_check("vmdk", h, sizeof(h), false, &err), GC_EINVAL);
}

int main(void)
{
    gc_log_min_level = GC_LOG_WARN;
    gc_password_set_cost_for_tests(10);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roles_parse_and_name),
        cmocka_unit_test(image_header_rules),
        cmocka_unit_test(role_permission_matrix),
        cmocka_unit_test(scope_rules),
        cmocka_unit_test(json_check_rules),
        cmocka_unit_test(password_policy_rules),
        cmocka_unit_test(paging_helpers_and_job_states),
        cmocka_unit_test(volume_pool_rules),
        T(dept_create_get_update_delete),
        T(dept_list_pages_and_filters),
        T(dept_tree_moves_and_cycles),
        T(dept_depth_is_limited),
        T(dept_move_name_conflict_names_department),
        T(dept_delete_refused_while_owned),
        T(user_create_rules),
        T(department_admin_is_scoped),
        T(login_lockout),
        T(disabled_account_cannot_log_in),
        T(resolve_secrets),
        T(audit_chain_verifies_and_finds_tampering),
        T(audit_chain_finds_deleted_events),
        T(audit_list_pages),
        T(jobs_run_to_the_end),
        T(jobs_recover_after_a_crash),
        T(jobs_cancel_before_start),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
