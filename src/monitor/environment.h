/* Data-centre environment (机房环控): the /v1/sensors resource (platform objects: operators
 * manage them, departments see none), and the poller that reads every enabled sensor each
 * [environment] interval through its sensor driver, derives dew point, rate of change and
 * PUE, classifies readings against the GB 50174 limits and emits the govcloud_env_* series
 * (docs/environment.md). */
#ifndef GC_ENVIRONMENT_H
#define GC_ENVIRONMENT_H

#include "core/core.h"

void gc_env_describe(void);

int gc_sensor_create(const struct gc_ctx *ctx, json_t *in, json_t **out, struct gc_error *err);
int gc_sensor_get(const struct gc_ctx *ctx, const char *id, json_t **out, struct gc_error *err);
int gc_sensor_list(const struct gc_ctx *ctx, json_t *filters, int limit, const char *cursor,
                   json_t **items, char **next_cursor, struct gc_error *err);
int gc_sensor_update(const struct gc_ctx *ctx, const char *id, int64_t if_match, json_t *in,
                     json_t **out, struct gc_error *err);
int gc_sensor_delete(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                     struct gc_error *err);
/* GET /v1/sensors/{id}/readings: the latest readings with their status. */
int gc_sensor_readings(const struct gc_ctx *ctx, const char *id, json_t **out,
                       struct gc_error *err);
/* GET /v1/sensors/profiles and /v1/sensors/profiles/{name}. */
int gc_sensor_profile_list(const struct gc_ctx *ctx, json_t **items, struct gc_error *err);
int gc_sensor_profile_get(const struct gc_ctx *ctx, const char *name, json_t **out,
                          struct gc_error *err);
/* POST /v1/sensors/profiles/check: validates a profile document; *out gets it as loaded. */
int gc_sensor_profile_check(const struct gc_ctx *ctx, json_t *in, json_t **out,
                            struct gc_error *err);

/* Loads the profiles ([environment] profile_dir) and starts the poller (when [monitor]
 * enabled). */
int gc_env_start(struct gc_store *st, const struct gc_config *cfg, struct gc_error *err);
void gc_env_stop(void);

#endif
