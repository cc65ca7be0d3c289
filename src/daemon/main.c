/* govcloudd: the govcloud daemon. Reads the configuration, opens the store, creates the
 * first administrator, starts the job runner and the HTTP API, and shuts down cleanly on
 * SIGTERM or SIGINT. */
#include "core/asset.h"
#include "core/repcache.h"
#include "core/supdata.h"
#include "http/http.h"
#include "monitor/alarmeval.h"
#include "monitor/checks.h"
#include "monitor/collect.h"
#include "monitor/environment.h"
#include "monitor/latest.h"
#include "monitor/notifier.h"
#include "monitor/pusher.h"
#include "monitor/tsdb.h"
#include "sched/hostmgr.h"
#include "sched/imagestore.h"
#include "sched/runner.h"
#include "util/config.h"
#include "util/id.h"
#include "util/log.h"
#include "util/mem.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: govcloudd [options]\n"
            "\n"
            "The govcloud daemon: REST API, store and job runner of the government cloud\n"
            "operations-management platform.\n"
            "\n"
            "options:\n"
            "  -c, --config FILE        read options from an INI file (see etc/govcloud.conf)\n"
            "  -l, --listen ADDR:PORT   HTTP API address, e.g. 127.0.0.1:8080 or [::1]:8080\n"
            "  -d, --data-dir DIR       directory of the database and other state\n"
            "  -s, --set SECTION.NAME=VALUE\n"
            "                           set any option of the configuration file\n"
            "      --check-config       validate the configuration and exit\n"
            "      --config-reference   print the option reference (Markdown) and exit\n"
            "      --list-routes        print every API endpoint (METHOD PATH) and exit\n"
            "  -V, --version            print the version and exit\n"
            "  -h, --help               print this help and exit\n"
            "\n"
            "environment:\n"
            "  GOVCLOUD_ADMIN_PASSWORD  password of user 'admin' created at the first start;\n"
            "                           without it a random one is printed once\n"
            "\n"
            "Flags override the configuration file. Documentation: docs/configuration.md\n");
}

static int make_dir(const char *dir, struct gc_error *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return gc_error_set(err, GC_EINVAL, "data_dir", "cannot create directory %s: %s",
                                path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return gc_error_set(err, GC_EINVAL, "data_dir", "cannot create directory %s: %s", path,
                            strerror(errno));
    if (access(path, W_OK) != 0)
        return gc_error_set(err, GC_EINVAL, "data_dir", "data directory %s is not writable: %s",
                            path, strerror(errno));
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"data-dir", required_argument, NULL, 'd'},
        {"set", required_argument, NULL, 's'},
        {"check-config", no_argument, NULL, 'C'},
        {"config-reference", no_argument, NULL, 'R'},
        {"list-routes", no_argument, NULL, 'L'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* Request bodies and the indexes of pushed batches are large and short-lived (a batch of
     * 500 records is about 400 KiB). glibc would map each such block and unmap it when freed,
     * and the kernel would zero its pages again for the next one; from the heap they are
     * reused. Measured with bench_supervisor_ingest: 12-15 instead of 13-16 us of CPU per
     * record. The heap keeps at most 16 MiB of free memory at its top. */
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    struct gc_config cfg;
    struct gc_error err = {0};
    gc_config_init(&cfg);
    const char *config_path = NULL;
    bool check_only = false;
    int c;
    /* first pass: the file, so that flags can override it */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:l:d:s:Vh", longopts, NULL)) != -1) {
        if (c == 'c')
            config_path = optarg;
    }
    if (config_path && gc_config_load(&cfg, config_path, &err) != 0) {
        fprintf(stderr, "govcloudd: %s\n", err.msg);
        gc_config_release(&cfg);
        return 2;
    }
    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "c:l:d:s:Vh", longopts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'c':
            break;
        case 'l':
            rc = gc_config_set(&cfg, "server.listen", optarg, &err);
            break;
        case 'd':
            rc = gc_config_set(&cfg, "store.data_dir", optarg, &err);
            break;
        case 's': {
            char *eq = strchr(optarg, '=');
            if (!eq) {
                fprintf(stderr, "govcloudd: --set needs SECTION.NAME=VALUE, got '%s'\n", optarg);
                gc_config_release(&cfg);
                return 2;
            }
            *eq = '\0';
            rc = gc_config_set(&cfg, optarg, eq + 1, &err);
            *eq = '=';
            break;
        }
        case 'C':
            check_only = true;
            break;
        case 'R':
            gc_config_write_reference(stdout);
            gc_config_release(&cfg);
            return 0;
        case 'L':
            for (size_t i = 0; i < gc_nroutes; i++)
                printf("%s %s\n", gc_routes[i].method, gc_routes[i].pattern);
            gc_config_release(&cfg);
            return 0;
        case 'V':
            printf("govcloudd %s\n", GC_VERSION);
            gc_config_release(&cfg);
            return 0;
        case 'h':
            usage(stdout);
            gc_config_release(&cfg);
            return 0;
        default:
            usage(stderr);
            gc_config_release(&cfg);
            return 2;
        }
        if (rc) {
            fprintf(stderr, "govcloudd: %s\n", err.msg);
            gc_config_release(&cfg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "govcloudd: unexpected argument '%s' (see --help)\n", argv[optind]);
        gc_config_release(&cfg);
        return 2;
    }
    char host[128];
    int port;
    if (gc_parse_listen(cfg.listen, host, sizeof(host), &port, &err) != 0) {
        fprintf(stderr, "govcloudd: option [server] %s\n", err.msg);
        gc_config_release(&cfg);
        return 2;
    }
    if (gc_vnc_listen_check(cfg.vnc_listen, &err) != 0) {
        fprintf(stderr, "govcloudd: option [compute] %s\n", err.msg);
        gc_config_release(&cfg);
        return 2;
    }
    {
        char *end = NULL;
        double target = strtod(cfg.alarm_availability_target, &end);
        if (!end || *end || !(target > 0 && target < 100)) {
            fprintf(stderr, "govcloudd: option [alarm] availability_target: '%s' is not a "
                            "percentage above 0 and below 100\n",
                    cfg.alarm_availability_target);
            gc_config_release(&cfg);
            return 2;
        }
        gc_availability_set_target(target); /* before any thread reads it */
    }
    if (strcmp(cfg.supervision_cloud_id, "auto") != 0 && !gc_id_valid(cfg.supervision_cloud_id)) {
        fprintf(stderr, "govcloudd: option [supervision] cloud_id: '%s' is neither auto nor a "
                        "lowercase uuid\n", cfg.supervision_cloud_id);
        gc_config_release(&cfg);
        return 2;
    }
    {
        double w[GC_NLAYERS];
        if (gc_subst_weights_parse(cfg.supervision_substitution_weights, w, &err) != 0) {
            fprintf(stderr, "govcloudd: option [supervision] %s\n", err.msg);
            gc_config_release(&cfg);
            return 2;
        }
    }
    if (check_only) {
        printf("govcloudd: configuration is valid\n");
        gc_config_release(&cfg);
        return 0;
    }
    gc_log_setup(cfg.log_format, (enum gc_log_level)gc_log_level_parse(cfg.log_level));

    /* signals are taken by sigwait in this thread only: block them before any thread */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    struct gc_store *st = NULL;
    struct gc_runner *runner = NULL;
    struct gc_server *srv = NULL;
    struct gc_tsdb *tsdb = NULL;
    char *admin_pw = NULL;
    int lock_fd = -1;
    char dbpath[4200];
    if (make_dir(cfg.data_dir, &err) != 0) {
        gc_err("daemon", "%s", err.msg);
        goto cleanup;
    }
    /* one daemon per data directory: a second one would share the SQLite file without
     * sharing the write lock, the job runner or the host connections */
    snprintf(dbpath, sizeof(dbpath), "%s/govcloudd.lock", cfg.data_dir);
    lock_fd = open(dbpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        gc_err("daemon", "data directory %s is in use by another govcloudd (%s is locked)",
               cfg.data_dir, dbpath);
        goto cleanup;
    }
    snprintf(dbpath, sizeof(dbpath), "%s/govcloud.db", cfg.data_dir);
    int threads = cfg.threads > 0 ? (int)cfg.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (gc_store_open(cfg.store_driver, dbpath, threads + (int)cfg.job_workers + 4, &st, &err) !=
        0) {
        gc_err("daemon", "cannot open the store: %s", err.msg);
        goto cleanup;
    }
    gc_register_vm_job_kinds(&cfg, st);
    gc_imagestore_register(&cfg, st);
    if (cfg.test_job_kinds) {
        gc_register_test_job_kinds();
        gc_warn("daemon", "test job kinds are enabled ([jobs] test_job_kinds); keep this off in "
                          "production");
    }
    if (gc_bootstrap_admin(st, &cfg, getenv("GOVCLOUD_ADMIN_PASSWORD"), &admin_pw, &err) != 0) {
        gc_err("daemon", "cannot create the administrator: %s", err.msg);
        goto cleanup;
    }
    if (admin_pw) {
        fprintf(stderr,
                "\n"
                "  ============================================================\n"
                "  First start: created the platform administrator.\n"
                "  首次启动：已创建平台管理员。\n"
                "    username / 用户名: admin\n"
                "    password / 密码:   %s\n"
                "  It is shown only this once: keep it, then change it.\n"
                "  此密码仅显示一次，请妥善保存并尽快修改。\n"
                "  ============================================================\n\n",
                admin_pw);
        free(admin_pw);
    }
    if (gc_jobs_recover(st, &err) != 0) {
        gc_err("daemon", "cannot settle interrupted jobs: %s", err.msg);
        goto cleanup;
    }
    gc_metrics_init();
    gc_collect_describe();
    gc_env_describe();
    gc_latest_init(3 * cfg.monitor_interval * 1000);
    if (gc_monitor_add_sink(gc_latest_sink()) != 0) {
        gc_err("daemon", "cannot register the current-value table");
        goto cleanup;
    }
    if (cfg.alarm_enabled) {
        if (gc_monitor_add_sink(gc_alarmeval_sink()) != 0) {
            gc_err("daemon", "cannot register the alarm evaluator as a sample sink");
            goto cleanup;
        }
        if (gc_alarmeval_start(st, &cfg, &err) != 0) {
            gc_err("daemon", "option [alarm] %s", err.msg);
            goto cleanup;
        }
    }
    if (gc_checks_start(st, &cfg, &err) != 0) {
        gc_err("daemon", "option [monitor] %s", err.msg);
        goto cleanup;
    }
    if (cfg.tsdb_enabled) {
        struct gc_tsdb_opts to;
        gc_tsdb_opts_from_config(&to, &cfg);
        if (gc_tsdb_open(st, &to, &tsdb, &err) != 0) {
            gc_err("daemon", "cannot open the time-series store: %s", err.msg);
            goto cleanup;
        }
        struct gc_sample_sink sink = gc_tsdb_sink(tsdb);
        if (gc_monitor_add_sink(&sink) != 0) {
            gc_err("daemon", "cannot register the time-series store as a sample sink");
            goto cleanup;
        }
        gc_tsdb_global = tsdb;
    }
    if (gc_env_start(st, &cfg, &err) != 0) {
        gc_err("daemon", "%s", err.msg);
        goto cleanup;
    }
    if (cfg.tsdb_test_ingest)
        gc_warn("daemon", "POST /v1/metrics/test-samples is enabled ([tsdb] test_ingest); keep "
                          "this off in production");
    if (gc_hostmgr_start(st, &cfg, &err) != 0) {
        gc_err("daemon", "cannot start the host manager: %s", err.msg);
        goto cleanup;
    }
    gc_host_added = gc_hostmgr_add;
    gc_host_removed = gc_hostmgr_remove;
    gc_vm_vnc_probe = gc_vmjobs_vnc;
    runner = gc_runner_start(st, &cfg);
    struct gc_server_opts so = {
        .listen = cfg.listen,
        .threads = threads,
        .max_body = (size_t)cfg.max_body_bytes,
        .connection_limit = (int)cfg.connection_limit,
        .connection_timeout = (int)cfg.connection_timeout,
    };
    if (gc_server_start(&so, st, &cfg, &srv, &err) != 0) {
        gc_err("daemon", "%s", err.msg);
        goto cleanup;
    }
    gc_info("daemon", "govcloudd %s listening on %s (port %d), data in %s", GC_VERSION,
            cfg.listen, gc_server_port(srv), cfg.data_dir);
    gc_bootstrap_infra(st, &cfg);
    if (gc_collect_start(st, &cfg, &err) != 0) {
        gc_err("daemon", "%s", err.msg);
        goto cleanup;
    }
    if (gc_notifier_start(st, &err) != 0) {
        gc_err("daemon", "%s", err.msg);
        goto cleanup;
    }
    if (gc_asset_sync_start(st, &cfg, &err) != 0) {
        gc_err("daemon", "%s", err.msg);
        goto cleanup;
    }
    if (gc_snmp_devices_start(st, &cfg, &err) != 0) {
        gc_err("daemon", "%s", err.msg);
        goto cleanup;
    }
    if (gc_pusher_start(st, &cfg, &err) != 0) {
        gc_err("daemon", "%s", err.msg);
        goto cleanup;
    }
    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            gc_info("daemon", "SIGHUP ignored: restart the daemon to apply configuration");
            continue;
        }
        gc_info("daemon", "signal %d: stopping (finishing requests in flight)", sig);
        break;
    }
    status = 0;

cleanup:
    gc_server_stop(srv, 30000);
    gc_collect_stop();
    gc_checks_stop();
    gc_alarmeval_stop();
    gc_env_stop();
    gc_pusher_stop();
    gc_notifier_stop();
    gc_asset_sync_stop();
    gc_snmp_devices_stop();
    gc_runner_stop(runner);
    gc_hostmgr_stop();
    /* collectors are stopped: the last samples are written before the store closes */
    gc_monitor_clear_sinks();
    gc_tsdb_global = NULL;
    gc_tsdb_close(tsdb);
    gc_store_close(st);
    gc_repcache_clear();
    gc_monitor_clear_sinks();
    gc_latest_clear();
    if (lock_fd >= 0)
        close(lock_fd);
    if (status == 0)
        gc_info("daemon", "stopped");
    gc_config_release(&cfg);
    return status;
}
