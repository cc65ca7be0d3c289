/* Versioned schema migrations, applied in order at start-up in one transaction.
 * Portable DDL: it must run unchanged on SQLite and PostgreSQL. Never edit a released
 * migration; add a new one. */
#include "store/store_int.h"

static const char *const m1[] = {
    "CREATE TABLE departments ("
    " id TEXT PRIMARY KEY,"
    " parent_id TEXT REFERENCES departments(id),"
    " path TEXT NOT NULL,"             /* '/<root id>/.../<own id>/' for subtree scoping */
    " depth BIGINT NOT NULL,"
    " name TEXT NOT NULL,"
    " code TEXT UNIQUE,"
    " description TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    "CREATE UNIQUE INDEX departments_sibling_name ON departments ((COALESCE(parent_id, '')), name)",
    "CREATE INDEX departments_path ON departments (path)",

    "CREATE TABLE users ("
    " id TEXT PRIMARY KEY,"
    " username TEXT NOT NULL UNIQUE,"
    " display_name TEXT NOT NULL DEFAULT '',"
    " password_hash TEXT NOT NULL,"
    " role TEXT NOT NULL,"
    " department_id TEXT REFERENCES departments(id),"
    " disabled BIGINT NOT NULL DEFAULT 0,"
    " failed_logins BIGINT NOT NULL DEFAULT 0,"
    " locked_until BIGINT NOT NULL DEFAULT 0,"
    " password_changed_at BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    "CREATE INDEX users_department ON users (department_id)",

    "CREATE TABLE tokens ("
    " id TEXT PRIMARY KEY,"
    " secret_hash TEXT NOT NULL UNIQUE,"  /* SM3 of the bearer secret; the secret is not kept */
    " kind TEXT NOT NULL,"                /* session | api_key */
    " name TEXT NOT NULL DEFAULT '',"
    " user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT)",
    "CREATE INDEX tokens_user ON tokens (user_id)",

    "CREATE TABLE audit_events ("
    " seq BIGINT PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " time BIGINT NOT NULL,"
    " actor_id TEXT,"
    " actor_name TEXT NOT NULL,"
    " actor_role TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " resource_type TEXT NOT NULL,"
    " resource_id TEXT,"
    " department_id TEXT,"
    " department_path TEXT,"
    " outcome TEXT NOT NULL,"
    " reason TEXT NOT NULL DEFAULT '',"
    " source_ip TEXT NOT NULL DEFAULT '',"
    " request_id TEXT NOT NULL DEFAULT '',"
    " detail TEXT NOT NULL DEFAULT '{}',"
    " prev_hash TEXT NOT NULL,"
    " hash TEXT NOT NULL)",
    "CREATE INDEX audit_events_time ON audit_events (time)",
    "CREATE INDEX audit_events_resource ON audit_events (resource_type, resource_id)",
    /* The newest link of the chain, written with every event: deleting events at the end of
     * the chain leaves it pointing past them. */
    "CREATE TABLE audit_head (one BIGINT PRIMARY KEY CHECK (one = 1), seq BIGINT NOT NULL,"
    " hash TEXT NOT NULL)",

    "CREATE TABLE jobs ("
    " id TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " progress BIGINT NOT NULL DEFAULT 0,"
    " message TEXT NOT NULL DEFAULT '',"
    " error TEXT NOT NULL DEFAULT '',"
    " params TEXT NOT NULL DEFAULT '{}',"
    " result TEXT NOT NULL DEFAULT '{}',"
    " resource_type TEXT,"
    " resource_id TEXT,"
    " department_id TEXT,"
    " created_by TEXT,"
    " attempts BIGINT NOT NULL DEFAULT 0,"
    " cancel_requested BIGINT NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " started_at BIGINT,"
    " finished_at BIGINT,"
    " version BIGINT NOT NULL DEFAULT 1)",
    "CREATE INDEX jobs_state ON jobs (state, created_at)",
    "CREATE INDEX jobs_department ON jobs (department_id)",
    NULL,
};

static const char *const m2[] = {
    "CREATE TABLE hosts ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " uri TEXT NOT NULL UNIQUE,"
    " zone TEXT NOT NULL DEFAULT 'default',"
    " description TEXT NOT NULL DEFAULT '',"
    " state TEXT NOT NULL DEFAULT 'connecting',"  /* connecting | connected | disconnected */
    " maintenance BIGINT NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " last_seen_at BIGINT,"
    " arch TEXT NOT NULL DEFAULT '',"
    " cpu_model TEXT NOT NULL DEFAULT '',"
    " cpus BIGINT NOT NULL DEFAULT 0,"
    " memory_mib BIGINT NOT NULL DEFAULT 0,"
    " hypervisor TEXT NOT NULL DEFAULT '',"
    " hypervisor_version TEXT NOT NULL DEFAULT '',"
    " libvirt_version TEXT NOT NULL DEFAULT '',"
    " hostname TEXT NOT NULL DEFAULT '',"
    " pools TEXT NOT NULL DEFAULT '[]',"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    "CREATE INDEX hosts_zone ON hosts (zone)",
    NULL,
};

static const char *const m3[] = {
    "CREATE TABLE flavors ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " vcpus BIGINT NOT NULL,"
    " memory_mib BIGINT NOT NULL,"
    " disk_gib BIGINT NOT NULL,"
    " description TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",

    "CREATE TABLE images ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " kind TEXT NOT NULL,"              /* kernel (kernel + initramfs) | disk */
    " state TEXT NOT NULL,"             /* importing | active | error */
    " format TEXT NOT NULL DEFAULT '',"  /* disk: raw | qcow2 */
    " kernel_path TEXT NOT NULL DEFAULT '',"
    " initrd_path TEXT NOT NULL DEFAULT '',"
    " cmdline TEXT NOT NULL DEFAULT '',"
    " disk_path TEXT NOT NULL DEFAULT '',"
    " os_type TEXT NOT NULL DEFAULT 'linux',"
    " arch TEXT NOT NULL,"
    " min_disk_gib BIGINT NOT NULL DEFAULT 0,"
    " min_memory_mib BIGINT NOT NULL DEFAULT 0,"
    " size_bytes BIGINT NOT NULL DEFAULT 0,"
    " sha256 TEXT NOT NULL DEFAULT '',"  /* of the files, in order kernel, initrd | disk */
    " sm3 TEXT NOT NULL DEFAULT '',"
    " last_error TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",

    "CREATE TABLE vms ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " department_id TEXT NOT NULL REFERENCES departments(id),"
    " host_id TEXT REFERENCES hosts(id),"
    " flavor_id TEXT NOT NULL REFERENCES flavors(id),"
    " image_id TEXT NOT NULL REFERENCES images(id),"
    " state TEXT NOT NULL,"             /* building | running | stopped | error | deleting */
    " power_state TEXT NOT NULL DEFAULT 'unknown',"  /* as libvirt last reported it */
    " drift TEXT NOT NULL DEFAULT '',"   /* how the hypervisor differs from govcloud's record */
    " vcpus BIGINT NOT NULL,"
    " memory_mib BIGINT NOT NULL,"
    " disk_gib BIGINT NOT NULL,"
    " domain_name TEXT NOT NULL UNIQUE,"
    " user_data TEXT NOT NULL DEFAULT '',"
    " last_error TEXT NOT NULL DEFAULT '',"
    " created_by TEXT,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    "CREATE UNIQUE INDEX vms_department_name ON vms (department_id, name)",
    "CREATE INDEX vms_host ON vms (host_id)",

    /* limits of a department; NULL = no limit of its own. A limit bounds the usage of the
     * department's whole subtree. */
    "CREATE TABLE quotas ("
    " department_id TEXT PRIMARY KEY REFERENCES departments(id) ON DELETE CASCADE,"
    " vms BIGINT, vcpus BIGINT, memory_mib BIGINT, disk_gib BIGINT, volumes BIGINT,"
    " public_ips BIGINT,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    NULL,
};

static const char *const m4[] = {
    "CREATE TABLE networks ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " mode TEXT NOT NULL,"                 /* nat | isolated | bridge */
    " bridge TEXT NOT NULL DEFAULT '',"    /* bridge mode: the host bridge */
    " ipv4_cidr TEXT NOT NULL,"
    " ipv4_gateway TEXT NOT NULL,"
    " ipv6_cidr TEXT NOT NULL DEFAULT '',"
    " ipv6_gateway TEXT NOT NULL DEFAULT '',"
    " department_id TEXT REFERENCES departments(id)," /* NULL: shared by all departments */
    " description TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    /* addresses handed out: the unique indexes make handing one out twice impossible */
    "CREATE TABLE vm_nics ("
    " id TEXT PRIMARY KEY,"
    " vm_id TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,"
    " network_id TEXT NOT NULL REFERENCES networks(id),"
    " position BIGINT NOT NULL,"
    " mac TEXT NOT NULL UNIQUE,"
    " ipv4 TEXT NOT NULL,"
    " ipv6 TEXT,"
    " created_at BIGINT NOT NULL)",
    "CREATE UNIQUE INDEX vm_nics_ipv4 ON vm_nics (network_id, ipv4)",
    "CREATE UNIQUE INDEX vm_nics_ipv6 ON vm_nics (network_id, ipv6)",
    "CREATE INDEX vm_nics_vm ON vm_nics (vm_id)",

    /* security groups: the standard's virtual firewall, as libvirt nwfilters */
    "CREATE TABLE security_groups ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " department_id TEXT REFERENCES departments(id),"  /* NULL: shared */
    " description TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    "CREATE UNIQUE INDEX security_groups_name ON security_groups"
    " ((COALESCE(department_id, '')), name)",
    "CREATE TABLE security_group_rules ("
    " id TEXT PRIMARY KEY,"
    " group_id TEXT NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE,"
    " direction TEXT NOT NULL,"   /* ingress | egress */
    " protocol TEXT NOT NULL,"    /* tcp | udp | icmp | all */
    " port_min BIGINT,"
    " port_max BIGINT,"
    " cidr TEXT NOT NULL,"        /* IPv4 or IPv6 network the rule matches */
    " created_at BIGINT NOT NULL)",
    "CREATE INDEX security_group_rules_group ON security_group_rules (group_id)",
    "CREATE TABLE vm_security_groups ("
    " vm_id TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,"
    " group_id TEXT NOT NULL REFERENCES security_groups(id),"
    " PRIMARY KEY (vm_id, group_id))",
    NULL,
};

/* What placement needs per host, kept up to date in the transactions that create and
 * delete VMs, so that choosing a host is one indexed query instead of a sum over VMs. */
static const char *const m5[] = {
    "ALTER TABLE hosts ADD COLUMN vcpus_used BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE hosts ADD COLUMN memory_used_mib BIGINT NOT NULL DEFAULT 0",
    /* room left with the over-commit in force; recomputed at every start (the ratios are
     * configuration) and kept with every reservation */
    "ALTER TABLE hosts ADD COLUMN vcpus_free BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE hosts ADD COLUMN memory_free_mib BIGINT NOT NULL DEFAULT 0",
    "UPDATE hosts SET"
    " vcpus_used = (SELECT COALESCE(SUM(v.vcpus), 0) FROM vms v WHERE v.host_id = hosts.id),"
    " memory_used_mib = (SELECT COALESCE(SUM(v.memory_mib), 0) FROM vms v"
    " WHERE v.host_id = hosts.id)",
    /* placement walks this index from the most free memory down */
    "CREATE INDEX hosts_placement ON hosts (arch, state, maintenance, memory_free_mib)",
    NULL,
};

/* server groups: affinity (members on one host) and anti-affinity (each on its own) */
static const char *const m6[] = {
    "CREATE TABLE server_groups ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " department_id TEXT NOT NULL REFERENCES departments(id),"
    " policy TEXT NOT NULL,"  /* affinity | anti-affinity */
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    "CREATE UNIQUE INDEX server_groups_name ON server_groups (department_id, name)",
    "ALTER TABLE vms ADD COLUMN server_group_id TEXT REFERENCES server_groups(id)",
    "CREATE INDEX vms_server_group ON vms (server_group_id)",
    "CREATE INDEX hosts_zone_placement ON hosts (zone, arch, state, maintenance, memory_free_mib)",
    NULL,
};

/* volumes: virtual disks in a host's storage pool, attached to at most one VM */
static const char *const m7[] = {
    "CREATE TABLE volumes ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " department_id TEXT NOT NULL REFERENCES departments(id),"
    " host_id TEXT NOT NULL REFERENCES hosts(id),"
    " pool TEXT NOT NULL,"
    " size_gib BIGINT NOT NULL,"
    " state TEXT NOT NULL,"        /* creating | available | in-use | error | deleting */
    " vm_id TEXT REFERENCES vms(id),"
    " target TEXT,"                /* the VM's device: vdb, vdc, ... */
    " last_error TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    "CREATE UNIQUE INDEX volumes_name ON volumes (department_id, name)",
    "CREATE INDEX volumes_vm ON volumes (vm_id)",
    NULL,
};

/* volumes know their format (qcow2 in file pools, raw in LVM and RBD pools); volume snapshots:
 * full copies of a volume in its pool */
static const char *const m8[] = {
    "ALTER TABLE volumes ADD COLUMN format TEXT NOT NULL DEFAULT 'qcow2'",
    "CREATE TABLE volume_snapshots ("
    " id TEXT PRIMARY KEY,"
    " volume_id TEXT NOT NULL REFERENCES volumes(id),"
    " department_id TEXT NOT NULL REFERENCES departments(id),"
    " name TEXT NOT NULL,"
    " description TEXT NOT NULL DEFAULT '',"
    " size_gib BIGINT NOT NULL,"  /* the volume's size when taken */
    " state TEXT NOT NULL,"       /* creating | available | error | deleting */
    " last_error TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    "CREATE UNIQUE INDEX volume_snapshots_name ON volume_snapshots (volume_id, name)",
    "CREATE INDEX volume_snapshots_department ON volume_snapshots (department_id)",
    NULL,
};

/* uploaded images: kept as a volume on the image store host, copied to the other hosts on
 * first use (one row per host that has it) */
static const char *const m9[] = {
    "ALTER TABLE images ADD COLUMN source TEXT NOT NULL DEFAULT 'path'", /* path | upload */
    "ALTER TABLE images ADD COLUMN store_host_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE images ADD COLUMN store_pool TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE images ADD COLUMN store_volume TEXT NOT NULL DEFAULT ''",
    "CREATE TABLE image_copies ("
    " image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,"
    " host_id TEXT NOT NULL,"
    " pool TEXT NOT NULL,"
    " volume TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " PRIMARY KEY (image_id, host_id))",
    NULL,
};

/* zones: per-zone over-commit ratios and placement weigher (NULL: the [compute] default);
 * public IP addresses: external networks are pools, each address allocated to a department
 * and associated with at most one VM (as an interface of that VM pinned to the address) */
static const char *const m10[] = {
    "CREATE TABLE zones ("
    " name TEXT PRIMARY KEY,"
    " cpu_overcommit_percent BIGINT,"
    " ram_overcommit_percent BIGINT,"
    " placement_weigher TEXT," /* spread | pack */
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    "ALTER TABLE networks ADD COLUMN external BIGINT NOT NULL DEFAULT 0",
    "CREATE TABLE public_ips ("
    " id TEXT PRIMARY KEY,"
    " network_id TEXT NOT NULL REFERENCES networks(id),"
    " address TEXT NOT NULL,"
    " department_id TEXT NOT NULL REFERENCES departments(id),"
    " vm_id TEXT REFERENCES vms(id),"
    " state TEXT NOT NULL," /* available | associating | associated | disassociating */
    " last_error TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    /* an address is handed out once per network */
    "CREATE UNIQUE INDEX public_ips_address ON public_ips (network_id, address)",
    "CREATE INDEX public_ips_department ON public_ips (department_id)",
    "CREATE INDEX public_ips_vm ON public_ips (vm_id)",
    NULL,
};

/* live migration and evacuation: where a moving VM goes, so that a restart can finish or
 * undo the move */
static const char *const m11[] = {
    "ALTER TABLE vms ADD COLUMN migration_target TEXT REFERENCES hosts(id)",
    NULL,
};

/* cloud-init user data: vms.user_data (from migration 3) holds it; its SM3 digest is what
 * the API and the audit trail show, never the data */
static const char *const m12[] = {
    "ALTER TABLE vms ADD COLUMN user_data_sm3 TEXT NOT NULL DEFAULT ''",
    NULL,
};

/* the time-series store (src/monitor/tsdb.c): series, compressed chunks (raw samples and
 * 5-minute / 1-hour aggregates), roll-up watermarks. No foreign key from series to
 * departments: a deleted department's history is kept until retention removes it. */
static const char *const m13[] = {
    "CREATE TABLE tsdb_series ("
    " id BIGINT PRIMARY KEY,"
    " skey TEXT NOT NULL UNIQUE," /* metric{a="x",b="y"} */
    " metric TEXT NOT NULL,"
    " labels TEXT NOT NULL,"      /* JSON object */
    " department_id TEXT,"        /* the department_id label; NULL: platform series */
    " created_at BIGINT NOT NULL)",
    "CREATE INDEX tsdb_series_metric ON tsdb_series (metric, id)",
    "CREATE INDEX tsdb_series_department ON tsdb_series (department_id)",
    /* the inverted index of labels, for equality matchers */
    "CREATE TABLE tsdb_labels ("
    " name TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " series_id BIGINT NOT NULL,"
    " PRIMARY KEY (name, value, series_id))",
    "CREATE TABLE tsdb_chunks ("
    " series_id BIGINT NOT NULL,"
    " resolution BIGINT NOT NULL," /* 0 raw, 1 five minutes, 2 one hour */
    " start_ms BIGINT NOT NULL,"
    " end_ms BIGINT NOT NULL,"
    " count BIGINT NOT NULL,"
    " data BYTEA NOT NULL,"
    " PRIMARY KEY (series_id, resolution, start_ms))",
    "CREATE INDEX tsdb_chunks_time ON tsdb_chunks (resolution, start_ms)",
    "CREATE TABLE tsdb_meta ("
    " name TEXT PRIMARY KEY,"
    " value BIGINT NOT NULL)",
    NULL,
};

/* service checks that departments define against their applications (monitoring) */
static const char *const m14[] = {
    "CREATE TABLE checks ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " department_id TEXT NOT NULL REFERENCES departments(id),"
    " kind TEXT NOT NULL,"            /* tcp | http | icmp */
    " host TEXT NOT NULL DEFAULT '',"  /* tcp, icmp */
    " port BIGINT NOT NULL DEFAULT 0," /* tcp */
    " url TEXT NOT NULL DEFAULT '',"   /* http */
    " expect_status BIGINT NOT NULL DEFAULT 200,"
    " tls_verify BIGINT NOT NULL DEFAULT 1,"
    " interval_seconds BIGINT NOT NULL,"
    " timeout_ms BIGINT NOT NULL,"
    " enabled BIGINT NOT NULL DEFAULT 1,"
    /* 1 when last written by a platform role: may target protected addresses */
    " privileged BIGINT NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    "CREATE UNIQUE INDEX checks_department_name ON checks (department_id, name)",
    NULL,
};

/* availability: incidents of resources that should run and do not, the lifetimes of VMs
 * (so that a deleted VM still counts in the periods it lived in), planned maintenance */
static const char *const m15[] = {
    "CREATE TABLE incidents ("
    " id TEXT PRIMARY KEY,"
    " resource_type TEXT NOT NULL," /* vm */
    " resource_id TEXT NOT NULL,"
    " department_id TEXT,"
    " host_id TEXT,"
    " started_at BIGINT NOT NULL,"
    " ended_at BIGINT,"             /* NULL while it lasts */
    " cause TEXT NOT NULL,"
    " end_reason TEXT)",
    "CREATE INDEX incidents_resource ON incidents (resource_type, resource_id, started_at)",
    "CREATE TABLE vm_lifetimes ("
    " vm_id TEXT PRIMARY KEY,"
    " department_id TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " deleted_at BIGINT)",
    "INSERT INTO vm_lifetimes (vm_id, department_id, created_at, deleted_at)"
    " SELECT id, department_id, created_at, NULL FROM vms",
    "CREATE TABLE maintenance_windows ("
    " id TEXT PRIMARY KEY,"
    " scope TEXT NOT NULL,"         /* platform | host | vm */
    " resource_id TEXT,"
    " starts_at BIGINT NOT NULL,"
    " ends_at BIGINT NOT NULL,"
    " description TEXT NOT NULL DEFAULT '',"
    " created_by TEXT,"
    " created_at BIGINT NOT NULL)",
    "CREATE INDEX maintenance_windows_end ON maintenance_windows (ends_at)",
    NULL,
};

/* notification channels (webhooks) and the outbox of what they must receive */
static const char *const m16[] = {
    "CREATE TABLE notify_channels ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " kind TEXT NOT NULL,"        /* webhook */
    " url TEXT NOT NULL,"
    " enabled BIGINT NOT NULL DEFAULT 1,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    "CREATE TABLE notify_outbox ("
    " id TEXT PRIMARY KEY,"       /* also the Idempotency-Key of the delivery */
    " channel_id TEXT NOT NULL REFERENCES notify_channels(id),"
    " event_id TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " attempts BIGINT NOT NULL DEFAULT 0,"
    " next_at BIGINT NOT NULL,"
    " delivered_at BIGINT,"
    " last_error TEXT NOT NULL DEFAULT '')",
    "CREATE INDEX notify_outbox_due ON notify_outbox (delivered_at, next_at)",
    NULL,
};

/* Alarms (docs/monitoring.md#alarms): rules on metric series or on incidents, the alarms
 * they raise (one open row per fingerprint), and silences. Numbers that are not integers
 * (thresholds, observed values) are kept as text, printed with 17 significant digits. */
static const char *const m17[] = {
    "CREATE TABLE alarm_rules ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " builtin BIGINT NOT NULL DEFAULT 0,"
    " kind TEXT NOT NULL,"              /* metric | incident */
    " metric TEXT NOT NULL DEFAULT '',"  /* metric rules: the series' metric name, */
    " matchers TEXT NOT NULL DEFAULT '[]'," /* [[label, "=" or "!=", value], ...]; incident
                                           * rules: [["resource_type", "=", type]] */
    " func TEXT NOT NULL DEFAULT 'value',"  /* value | rate */
    " op TEXT NOT NULL DEFAULT '>',"
    " threshold TEXT NOT NULL DEFAULT '0',"
    " for_ms BIGINT NOT NULL DEFAULT 0,"
    " severity TEXT NOT NULL,"           /* critical | major | minor | warning | info */
    " summary TEXT NOT NULL DEFAULT '',"
    " department_id TEXT REFERENCES departments(id),"
    " enabled BIGINT NOT NULL DEFAULT 1,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    "CREATE TABLE alarms ("
    " id TEXT PRIMARY KEY,"
    " rule_id TEXT NOT NULL,"
    " rule_name TEXT NOT NULL,"
    " fingerprint TEXT NOT NULL,"        /* SM3 of rule id and series: one open per print */
    " series TEXT NOT NULL,"             /* the series key, or resource_type/resource_id */
    " status TEXT NOT NULL,"             /* firing | resolved */
    " severity TEXT NOT NULL,"
    " labels TEXT NOT NULL,"
    " summary TEXT NOT NULL,"
    " reason TEXT NOT NULL DEFAULT '',"
    " value TEXT,"
    " threshold TEXT,"
    " department_id TEXT,"
    " started_at BIGINT NOT NULL,"
    " ended_at BIGINT,"
    " end_reason TEXT NOT NULL DEFAULT '',"
    " silenced BIGINT NOT NULL DEFAULT 0,"  /* 1: its firing was not notified */
    " acked_by TEXT,"
    " acked_at BIGINT,"
    " ack_comment TEXT NOT NULL DEFAULT '',"
    " updated_at BIGINT NOT NULL,"
    " seq BIGINT NOT NULL DEFAULT 0)",  /* supervision sequence of the alarm dataset: bumped
                                         * by every change of state (fired, acknowledged,
                                         * notified late, resolved) */
    "CREATE UNIQUE INDEX alarms_open ON alarms (fingerprint) WHERE ended_at IS NULL",
    "CREATE INDEX alarms_seq ON alarms (seq)",
    "CREATE INDEX alarms_rule ON alarms (rule_id, ended_at)",
    "CREATE TABLE silences ("
    " id TEXT PRIMARY KEY,"
    " matchers TEXT NOT NULL,"            /* {label: value, ...}: every one must equal */
    " comment TEXT NOT NULL,"
    " created_by TEXT NOT NULL,"
    " starts_at BIGINT NOT NULL,"
    " ends_at BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL)",
    "CREATE INDEX silences_ends ON silences (ends_at)",
    /* a channel's delivery state (GET /v1/notification-channels) */
    "CREATE INDEX notify_outbox_channel ON notify_outbox (channel_id, delivered_at)",
    /* the built-in rules: their ids are fixed so that documents can name them */
    "INSERT INTO alarm_rules (id, name, builtin, kind, metric, matchers, func, op, threshold,"
    " for_ms, severity, summary, created_at, updated_at, version) VALUES"
    " ('00000000-0000-7000-8000-000000000001', 'host-down', 1, 'incident', '',"
    "  '[[\"resource_type\",\"=\",\"host\"]]', 'value', '>', '0', 0, 'critical',"
    "  'host {{resource_id}} is down: {{reason}}', 0, 0, 1),"
    " ('00000000-0000-7000-8000-000000000002', 'vm-down', 1, 'incident', '',"
    "  '[[\"resource_type\",\"=\",\"vm\"]]', 'value', '>', '0', 0, 'critical',"
    "  'VM {{resource_id}} is down: {{reason}}', 0, 0, 1),"
    " ('00000000-0000-7000-8000-000000000003', 'service-down', 1, 'incident', '',"
    "  '[[\"resource_type\",\"=\",\"check\"]]', 'value', '>', '0', 0, 'major',"
    "  'service check {{resource_id}} is failing: {{reason}}', 0, 0, 1),"
    " ('00000000-0000-7000-8000-000000000004', 'disk-nearly-full', 1, 'metric',"
    "  'govcloud_host_pool_used_ratio', '[]', 'value', '>', '0.9', 300000, 'major',"
    "  'storage pool {{pool}} on host {{host_id}} is {{value_percent}} full', 0, 0, 1),"
    " ('00000000-0000-7000-8000-000000000005', 'availability-budget-burn', 1, 'metric',"
    "  'govcloud_availability_burn_rate', '[[\"window\",\"=\",\"1h\"]]', 'value', '>',"
    "  '14.4', 300000, 'critical',"
    "  'the {{scope}} error budget is burning {{value}} times too fast (last hour)', 0, 0, 1),"
    " ('00000000-0000-7000-8000-000000000006', 'collector-failing', 1, 'metric',"
    "  'govcloud_host_collect_success', '[]', 'value', '<', '1', 60000, 'major',"
    "  'cannot collect the metrics of host {{host_id}}: {{reason}}', 0, 0, 1),"
    " ('00000000-0000-7000-8000-000000000007', 'environment-limit', 1, 'metric',"
    "  'govcloud_env_limit_breached', '[]', 'value', '>', '0', 60000, 'critical',"
    "  'sensor {{sensor_id}} in room {{room}}: {{reading}} beyond its {{limit}} limit', 0, 0,"
    "  1)",
    NULL,
};

/* the asset inventory (discovered and imported), its history, and the per-dataset sequence of
 * supervision records (docs/supervision.md) */
static const char *const m18[] = {
    /* one counter per supervision dataset, bumped in the transaction of each change: with
     * one writer at a time, seq is strictly increasing in commit order */
    "CREATE TABLE supervision_seq ("
    " dataset TEXT PRIMARY KEY,"
    " seq BIGINT NOT NULL)",
    "INSERT INTO supervision_seq (dataset, seq) VALUES ('asset', 0)",
    "CREATE TABLE assets ("
    " id TEXT PRIMARY KEY,"            /* vm:<uuid>, host:<uuid>, ... or asset:<uuid> */
    " kind TEXT NOT NULL,"
    " name TEXT NOT NULL DEFAULT '',"
    " source TEXT NOT NULL,"           /* discovered | imported | snmp */
    " department_id TEXT,"             /* NULL: a platform asset */
    " cpu_arch TEXT,"
    " layer TEXT,"
    " domestic TEXT,"                  /* 'true' | 'false' | NULL */
    " serial_number TEXT,"
    " asset_tag TEXT,"
    " discovered TEXT NOT NULL DEFAULT '{}'," /* fields read from the resource */
    " operator TEXT NOT NULL DEFAULT '{}',"   /* fields set by operators (PATCH, import) */
    " data TEXT,"                      /* both merged: the record's data; NULL once deleted */
    " seq BIGINT NOT NULL,"
    " deleted BIGINT NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    "CREATE UNIQUE INDEX assets_seq ON assets (seq)",
    "CREATE INDEX assets_kind ON assets (kind, id)",
    "CREATE INDEX assets_department ON assets (department_id, id)",
    "CREATE INDEX assets_source ON assets (source, deleted)",
    "CREATE INDEX assets_serial ON assets (serial_number)",
    "CREATE INDEX assets_tag ON assets (asset_tag)",
    "CREATE INDEX assets_name ON assets (kind, name)",
    "CREATE TABLE asset_history ("
    " asset_id TEXT NOT NULL,"
    " seq BIGINT NOT NULL,"
    " time BIGINT NOT NULL,"
    " actor TEXT NOT NULL,"
    " op TEXT NOT NULL,"               /* create | update | delete */
    " changes TEXT NOT NULL,"          /* {"field": {"old": ..., "new": ...}} */
    " PRIMARY KEY (asset_id, seq))",
    NULL,
};

/* data-centre environment sensors (monitor/environment.c); credentials never leave the
 * store through the API */
static const char *const m19[] = {
    "CREATE TABLE sensors ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " driver TEXT NOT NULL,"       /* snmp | modbus */
    " address TEXT NOT NULL,"
    " port BIGINT NOT NULL,"
    " credentials TEXT NOT NULL,"  /* JSON: community / USM user and keys / unit id */
    " profile TEXT NOT NULL,"      /* a profile name (profiles/sensors, [environment] profile_dir) */
    " room TEXT NOT NULL DEFAULT '',"
    " room_class TEXT NOT NULL DEFAULT 'B'," /* A | B | C (GB 50174-2017) */
    " context TEXT NOT NULL DEFAULT '',"     /* physical context, '' = the profile's or room */
    " thresholds TEXT NOT NULL DEFAULT '{}'," /* JSON: per reading name, limit overrides */
    " timeout_ms BIGINT NOT NULL,"
    " enabled BIGINT NOT NULL DEFAULT 1,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    "CREATE INDEX sensors_room ON sensors (room)",
    NULL,
};

/* the environment dataset of the supervision interface: every exported sensor reading
 * (core/env_export.c), kept [environment] export_retention_days */
static const char *const m22[] = {
    "CREATE TABLE env_records ("
    " id TEXT PRIMARY KEY,"           /* env:<sensor>:<reading>:<time ms> */
    " seq BIGINT NOT NULL,"
    " time BIGINT NOT NULL,"
    " data TEXT NOT NULL)",
    "CREATE INDEX env_records_seq ON env_records (seq)",
    "CREATE INDEX env_records_time ON env_records (time)",
    NULL,
};

/* SNMP device targets: network, storage and security devices and servers whose asset is
 * discovered over SNMP (core/snmp_device.c); credentials never leave the store through the
 * API */
static const char *const m23[] = {
    "CREATE TABLE snmp_devices ("
    " id TEXT PRIMARY KEY,"
    " address TEXT NOT NULL,"
    " port BIGINT NOT NULL,"
    " credentials TEXT NOT NULL,"        /* JSON: community, or USM user and passwords */
    " kind TEXT NOT NULL,"               /* network_device | storage_device | security_device | server */
    " security_function TEXT,"           /* security devices: waf | db_audit | ... */
    " location TEXT NOT NULL DEFAULT '{}'," /* JSON: data_centre, room */
    " department_id TEXT REFERENCES departments(id),"
    " timeout_ms BIGINT NOT NULL,"
    " enabled BIGINT NOT NULL DEFAULT 1,"
    " asset_id TEXT NOT NULL,"           /* snmp:<id> */
    " last_seen_at BIGINT,"              /* the last discovery that read the device */
    " last_error TEXT,"                  /* why the last discovery failed; NULL after a success */
    " last_error_at BIGINT,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL,"
    " UNIQUE (address, port))",
    NULL,
};

/* the availability dataset of the supervision pull (docs/supervision.md): incidents carry its
 * sequence (bumped when one opens or closes), and the period figures (each completed month,
 * platform and departments) are kept with theirs, so that a figure gets a new seq only when
 * it is recomputed differently */
static const char *const m21[] = {
    "ALTER TABLE incidents ADD COLUMN seq BIGINT NOT NULL DEFAULT 0",
    /* the incidents already there, numbered in the order they started */
    "UPDATE incidents SET seq = (SELECT COUNT(*) FROM incidents i2 WHERE"
    " i2.started_at < incidents.started_at OR (i2.started_at = incidents.started_at AND"
    " i2.id <= incidents.id))",
    "INSERT INTO supervision_seq (dataset, seq)"
    " SELECT 'availability', COALESCE(MAX(seq), 0) FROM incidents WHERE 1"
    " ON CONFLICT (dataset) DO UPDATE SET seq = MAX(supervision_seq.seq, excluded.seq)",
    "CREATE INDEX incidents_seq ON incidents (seq)",
    "CREATE TABLE availability_periods ("
    " id TEXT PRIMARY KEY,"            /* availability:period:<scope>[:<id>]:<YYYY-MM> */
    " scope TEXT NOT NULL,"            /* platform | department */
    " resource_id TEXT,"               /* the department */
    " period_start BIGINT NOT NULL,"
    " data TEXT NOT NULL,"             /* the record's data (availability.json, kind period) */
    " seq BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL)",
    "CREATE UNIQUE INDEX availability_periods_seq ON availability_periods (seq)",
    /* the metric dataset: hourly aggregates of the platform's series, one row each */
    "CREATE TABLE supervision_metrics ("
    " id TEXT PRIMARY KEY,"            /* metric:<name>:<SM3 of the series key>:<hour ms> */
    " hour_ms BIGINT NOT NULL,"
    " data TEXT NOT NULL,"
    " seq BIGINT NOT NULL)",
    "CREATE UNIQUE INDEX supervision_metrics_seq ON supervision_metrics (seq)",
    "CREATE INDEX supervision_metrics_hour ON supervision_metrics (hour_ms)",
    NULL,
};

/* supervision push (a cloud's receivers and its persistent outbox) and supervisor mode
 * (registered clouds and the records received from them) (docs/supervision.md) */
static const char *const m20[] = {
    /* upstream receivers this cloud pushes to; token and secret are write-only in the API */
    "CREATE TABLE sup_receivers ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " url TEXT NOT NULL,"
    " token TEXT NOT NULL,"             /* the bearer credential the supervisor issued */
    " secret TEXT,"                     /* base64 of the 32-byte SM4 secret, or NULL */
    " datasets TEXT NOT NULL,"          /* JSON array of dataset names */
    " enabled BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    /* per receiver and dataset: what was taken into the outbox and what was delivered */
    "CREATE TABLE sup_push_state ("
    " receiver_id TEXT NOT NULL,"
    " dataset TEXT NOT NULL,"
    " cursor BIGINT NOT NULL,"          /* the last record seq put into a batch */
    " batch_seq BIGINT NOT NULL,"       /* the last batch_seq built */
    " delivered_seq BIGINT NOT NULL,"   /* the last batch_seq the receiver acknowledged */
    " last_error TEXT NOT NULL DEFAULT '',"
    " last_success_at BIGINT NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL,"
    " PRIMARY KEY (receiver_id, dataset))",
    /* the outbox: each batch stored once, with its text fixed, delivered in batch_seq order */
    "CREATE TABLE sup_outbox ("
    " receiver_id TEXT NOT NULL,"
    " dataset TEXT NOT NULL,"
    " batch_seq BIGINT NOT NULL,"
    " body TEXT NOT NULL,"
    " records BIGINT NOT NULL,"
    " first_seq BIGINT NOT NULL,"
    " last_seq BIGINT NOT NULL,"
    " oldest_at BIGINT NOT NULL,"       /* time of the oldest change it carries */
    " created_at BIGINT NOT NULL,"
    " attempts BIGINT NOT NULL DEFAULT 0,"
    " next_at BIGINT NOT NULL,"
    " delivered_at BIGINT,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " PRIMARY KEY (receiver_id, dataset, batch_seq))",
    "CREATE INDEX sup_outbox_delivered ON sup_outbox (delivered_at)",
    /* supervisor mode: the clouds allowed to push here */
    "CREATE TABLE sup_clouds ("
    " id TEXT PRIMARY KEY,"             /* the cloud's own cloud_id */
    " name TEXT NOT NULL UNIQUE,"
    " public_key_pem TEXT NOT NULL,"
    " fingerprint TEXT NOT NULL,"
    " secret TEXT,"                     /* base64 of the SM4 secret, or NULL */
    " token_hash TEXT NOT NULL UNIQUE," /* SM3 of the push token (shown once) */
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    /* per cloud and dataset: the batches seen, as one stream */
    "CREATE TABLE sup_streams ("
    " cloud_id TEXT NOT NULL,"
    " dataset TEXT NOT NULL,"
    " max_batch_seq BIGINT NOT NULL,"
    " batches BIGINT NOT NULL,"
    " accepted BIGINT NOT NULL,"
    " duplicates BIGINT NOT NULL,"
    " rejected BIGINT NOT NULL,"
    " last_batch_at BIGINT NOT NULL,"   /* when the newest batch arrived */
    " last_batch_time BIGINT NOT NULL," /* the `time` the cloud gave it */
    " PRIMARY KEY (cloud_id, dataset))",
    "CREATE TABLE sup_batches_in ("
    " cloud_id TEXT NOT NULL,"
    " dataset TEXT NOT NULL,"
    " batch_seq BIGINT NOT NULL,"
    " ids_hash TEXT NOT NULL,"          /* SM3 of the record ids: a resend must match */
    " received_at BIGINT NOT NULL,"
    " PRIMARY KEY (cloud_id, dataset, batch_seq))",
    /* missing batch_seq ranges [from_seq, to_seq] */
    "CREATE TABLE sup_gaps ("
    " cloud_id TEXT NOT NULL,"
    " dataset TEXT NOT NULL,"
    " from_seq BIGINT NOT NULL,"
    " to_seq BIGINT NOT NULL,"
    " PRIMARY KEY (cloud_id, dataset, from_seq))",
    /* every record received, its latest state (highest seq; deletes kept as tombstones) */
    "CREATE TABLE sup_records ("
    " cloud_id TEXT NOT NULL,"
    " dataset TEXT NOT NULL,"
    " record_id TEXT NOT NULL,"
    " seq BIGINT NOT NULL,"
    " time BIGINT NOT NULL,"
    " op TEXT NOT NULL,"                /* upsert | delete */
    " data TEXT,"                       /* the dataset's object as JSON text; NULL: delete */
    " received_at BIGINT NOT NULL,"
    " PRIMARY KEY (cloud_id, dataset, record_id))",
    "CREATE INDEX sup_records_dataset ON sup_records (dataset, op)",
    /* built-in rule: a receiver more than 15 minutes behind */
    "INSERT INTO alarm_rules (id, name, builtin, kind, metric, matchers, func, op, threshold,"
    " for_ms, severity, summary, created_at, updated_at, version) VALUES"
    " ('00000000-0000-7000-8000-000000000008', 'supervision-lag', 1, 'metric',"
    "  'govcloud_supervision_lag_seconds', '[]', 'value', '>', '900', 300000, 'major',"
    "  'supervision receiver {{receiver}} is {{value}} s behind on dataset {{dataset}}', 0,"
    "  0, 1)",
    NULL,
};

const struct gc_migration gc_migrations[] = {
    {1, "departments, users, tokens, audit, jobs", m1},
    {2, "hypervisor hosts", m2},
    {3, "flavors, images, virtual machines", m3},
    {4, "networks and IP address management", m4},
    {5, "placement counters on hosts", m5},
    {6, "server groups and zones in placement", m6},
    {7, "volumes", m7},
    {8, "volume formats and snapshots", m8},
    {9, "uploaded images and their copies on hosts", m9},
    {10, "zones, public IP addresses", m10},
    {11, "VM migration target", m11},
    {12, "VM user data digest", m12},
    {13, "time-series store", m13},
    {14, "service checks", m14},
    {15, "availability: incidents, VM lifetimes, maintenance windows", m15},
    {16, "notification channels and outbox", m16},
    {17, "alarm rules, alarms, silences", m17},
    {18, "asset inventory, asset history, supervision sequences", m18},
    {19, "data-centre environment sensors", m19},
    {20, "supervision push outbox, receivers, supervisor mode", m20},
    {21, "supervision: availability sequence on incidents, period figures, metric aggregates", m21},
    {22, "environment dataset of the supervision interface", m22},
    {23, "SNMP device targets of asset discovery", m23},
};
const size_t gc_nmigrations = sizeof(gc_migrations) / sizeof(gc_migrations[0]);
