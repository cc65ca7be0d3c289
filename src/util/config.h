/* Daemon configuration: one declarative table of options drives the INI parser, the
 * command-line overrides, validation, --help and docs/configuration.md. */
#ifndef GC_CONFIG_H
#define GC_CONFIG_H

#include "util/error.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct gc_config {
    /* [server] */
    char *listen;             /* "127.0.0.1:8080" or "[::1]:8080" */
    int64_t threads;          /* 0 = one per CPU */
    int64_t max_body_bytes;
    int64_t connection_limit;
    int64_t connection_timeout;
    /* [store] */
    char *data_dir;
    char *store_driver;       /* "sqlite" */
    /* [log] */
    char *log_format;         /* json | syslog */
    char *log_level;          /* debug | info | warn | error */
    /* [auth] */
    int64_t token_ttl;        /* seconds */
    int64_t max_failed_logins;
    int64_t lockout_seconds;
    int64_t password_min_length;
    /* [compute] */
    char *virt_type;          /* auto | kvm | qemu */
    char *console_log_dir;
    char *storage_pool;
    int64_t cpu_overcommit_percent;
    int64_t ram_overcommit_percent;
    char *placement_weigher;  /* spread | pack */
    int64_t stop_timeout;
    int64_t host_refresh_interval;
    char *vnc_listen;         /* numeric address, or "none" */
    /* [images] */
    char *images_store_host;  /* host id or name; "auto" = the first connected host */
    char *images_store_pool;  /* "auto" = [compute] storage_pool */
    int64_t images_max_upload_gib;
    /* [bootstrap] */
    char *bootstrap_host_uri;  /* "none" or a compute URI registered at start */
    char *bootstrap_image_dir; /* "none" or a directory with vmlinuz + initramfs.img */
    /* [jobs] */
    int64_t job_workers;
    bool test_job_kinds;      /* registers the job kinds that exist only for tests */
    /* [monitor] */
    bool monitor_enabled;
    int64_t monitor_interval;      /* seconds between two collection rounds */
    char *monitor_protected_networks; /* "none" or CIDRs only platform roles' checks reach */
    char *monitor_metrics_access;  /* token | public */
    /* [tsdb] */
    bool tsdb_enabled;
    int64_t tsdb_flush_interval;     /* seconds */
    int64_t tsdb_rollup_interval;    /* seconds */
    int64_t tsdb_retention_raw_days;
    int64_t tsdb_retention_5m_days;
    int64_t tsdb_retention_1h_days;
    bool tsdb_test_ingest;           /* POST /v1/metrics/test-samples (tests only) */
    /* [alarm] */
    bool alarm_enabled;
    int64_t alarm_interval;          /* seconds between evaluation rounds */
    int64_t alarm_stale_after;       /* seconds */
    int64_t alarm_burn_interval;     /* seconds; 0: off */
    char *alarm_availability_target; /* percent, as text */
    /* [supervision] */
    int64_t asset_sync_interval;     /* seconds between two asset discovery passes */
    char *supervision_cloud_id;      /* "auto" or a lowercase uuid */
    /* [environment] */
    int64_t env_interval;            /* seconds between two polls of the sensors */
    char *env_profile_dir;           /* "none" or a directory of extra sensor profiles */
    int64_t env_rate_window;         /* seconds of history behind a rate of change */
    int64_t env_export_retention_days; /* days of exported readings kept */
    char *supervision_substitution_weights; /* "layer=weight,…" (core/supdata.h) */
    int64_t push_interval;           /* seconds between two passes of the pusher */
    int64_t push_retention;          /* seconds delivered batches are kept */
    bool accept_pushes;              /* supervisor mode: POST /v1/supervision/ingest */
};

enum gc_opt_type { GC_OPT_STR, GC_OPT_INT, GC_OPT_BOOL, GC_OPT_ENUM };

struct gc_config_option {
    const char *section;
    const char *name;
    enum gc_opt_type type;
    const char *def;      /* default, as text */
    int64_t min, max;     /* for GC_OPT_INT */
    const char *allowed;  /* for GC_OPT_ENUM: "a|b|c" */
    const char *doc;
};

extern const struct gc_config_option gc_config_options[];
extern const size_t gc_config_noptions;

/* Fills cfg with the defaults. */
void gc_config_init(struct gc_config *cfg);
void gc_config_release(struct gc_config *cfg);
/* Sets "section.name" (or a bare unique name) to value, validating it. */
int gc_config_set(struct gc_config *cfg, const char *key, const char *value, struct gc_error *err);
/* Reads an INI file over cfg; an unknown option or bad value is an error naming it. */
int gc_config_load(struct gc_config *cfg, const char *path, struct gc_error *err);
/* Writes the option reference as Markdown (used to generate docs/configuration.md). */
void gc_config_write_reference(FILE *out);

/* Splits "host:port" / "[v6]:port"; host gets at most hostcap bytes. */
int gc_parse_listen(const char *s, char *host, size_t hostcap, int *port, struct gc_error *err);
/* 0 when s is a numeric IPv4 or IPv6 address or "none" ([compute] vnc_listen). */
int gc_vnc_listen_check(const char *s, struct gc_error *err);

#endif
