/* Resource handlers of REST API v1: JSON in, core call, JSON out. Generic helpers for the
 * operations every resource shares (list, get, create, update, delete). */
#ifndef GC_API_H
#define GC_API_H

#include "http/http.h"

typedef int (*gc_list_fn)(const struct gc_ctx *ctx, json_t *filters, int limit,
                          const char *cursor, json_t **items, char **next_cursor,
                          struct gc_error *err);
typedef int (*gc_get_fn)(const struct gc_ctx *ctx, const char *id, json_t **out,
                         struct gc_error *err);
typedef int (*gc_create_fn)(const struct gc_ctx *ctx, json_t *in, json_t **out,
                            struct gc_error *err);
typedef int (*gc_update_fn)(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                            json_t *in, json_t **out, struct gc_error *err);
typedef int (*gc_delete_fn)(const struct gc_ctx *ctx, const char *id, int64_t if_match,
                            struct gc_error *err);

/* filters: NULL-terminated names of query parameters passed to the list function. */
void gc_api_list(struct gc_req *req, struct gc_resp *resp, gc_list_fn fn,
                 const char *const *filters);
void gc_api_get(struct gc_req *req, struct gc_resp *resp, gc_get_fn fn);
typedef int (*gc_get_body_fn)(const struct gc_ctx *ctx, const char *id, char **body,
                              int64_t *version, struct gc_error *err);
/* GET by id from a function that returns the serialised body (cached reads). */
void gc_api_get_body(struct gc_req *req, struct gc_resp *resp, gc_get_body_fn fn);
/* collection: "/v1/departments", for Location. */
void gc_api_create(struct gc_req *req, struct gc_resp *resp, gc_create_fn fn,
                   const char *collection);
void gc_api_update(struct gc_req *req, struct gc_resp *resp, gc_update_fn fn);
void gc_api_delete(struct gc_req *req, struct gc_resp *resp, gc_delete_fn fn);
/* Parses limit and cursor query parameters. */
int gc_api_paging(struct gc_req *req, int *limit, const char **cursor, struct gc_error *err);
void gc_api_list_response(struct gc_resp *resp, json_t *items, char *next_cursor);

/* handlers, by file */
void gc_api_healthz(struct gc_req *req, struct gc_resp *resp);
void gc_api_readyz(struct gc_req *req, struct gc_resp *resp);
void gc_api_metrics(struct gc_req *req, struct gc_resp *resp);
void gc_api_openapi(struct gc_req *req, struct gc_resp *resp);
void gc_api_version(struct gc_req *req, struct gc_resp *resp);

void gc_api_token_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_token_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_apikey_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_apikey_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_apikey_delete(struct gc_req *req, struct gc_resp *resp);

void gc_api_dept_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_dept_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_dept_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_dept_update(struct gc_req *req, struct gc_resp *resp);
void gc_api_dept_delete(struct gc_req *req, struct gc_resp *resp);

void gc_api_user_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_user_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_user_me(struct gc_req *req, struct gc_resp *resp);
void gc_api_user_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_user_update(struct gc_req *req, struct gc_resp *resp);
void gc_api_user_delete(struct gc_req *req, struct gc_resp *resp);

void gc_api_audit_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_audit_verify(struct gc_req *req, struct gc_resp *resp);

void gc_api_host_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_host_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_host_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_host_update(struct gc_req *req, struct gc_resp *resp);
void gc_api_host_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_zone_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_zone_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_zone_put(struct gc_req *req, struct gc_resp *resp);

void gc_api_flavor_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_flavor_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_flavor_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_flavor_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_image_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_image_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_image_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_image_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_image_upload(struct gc_req *req, struct gc_resp *resp);
extern const struct gc_stream_ops gc_api_image_upload_ops;
void gc_api_vm_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_vm_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_vm_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_vm_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_vm_start(struct gc_req *req, struct gc_resp *resp);
void gc_api_vm_stop(struct gc_req *req, struct gc_resp *resp);
void gc_api_vm_reboot(struct gc_req *req, struct gc_resp *resp);
void gc_api_vm_resize(struct gc_req *req, struct gc_resp *resp);
void gc_api_vm_migrate(struct gc_req *req, struct gc_resp *resp);
void gc_api_availability(struct gc_req *req, struct gc_resp *resp);
void gc_api_availability_report(struct gc_req *req, struct gc_resp *resp);
void gc_api_alarm_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_alarm_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_alarm_ack(struct gc_req *req, struct gc_resp *resp);
void gc_api_alarm_rule_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_alarm_rule_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_alarm_rule_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_alarm_rule_update(struct gc_req *req, struct gc_resp *resp);
void gc_api_alarm_rule_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_silence_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_silence_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_silence_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_supervision_public_key(struct gc_req *req, struct gc_resp *resp);
void gc_api_channel_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_channel_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_channel_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_mwindow_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_mwindow_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_mwindow_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_host_evacuate(struct gc_req *req, struct gc_resp *resp);
void gc_api_vm_console(struct gc_req *req, struct gc_resp *resp);
void gc_api_vm_vnc(struct gc_req *req, struct gc_resp *resp);

void gc_api_net_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_net_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_net_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_net_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_sg_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_sg_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_sg_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_sg_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_sg_rule_add(struct gc_req *req, struct gc_resp *resp);
void gc_api_sg_rule_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_sgroup_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_sgroup_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_sgroup_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_sgroup_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_volume_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_volume_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_volume_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_volume_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_volume_attach(struct gc_req *req, struct gc_resp *resp);
void gc_api_volume_detach(struct gc_req *req, struct gc_resp *resp);
void gc_api_volume_resize(struct gc_req *req, struct gc_resp *resp);
void gc_api_volume_revert(struct gc_req *req, struct gc_resp *resp);
void gc_api_volume_snapshot_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_volume_snapshot_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_volume_snapshot_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_volume_snapshot_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_pip_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_pip_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_pip_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_pip_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_pip_associate(struct gc_req *req, struct gc_resp *resp);
void gc_api_pip_disassociate(struct gc_req *req, struct gc_resp *resp);
void gc_api_quota_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_quota_set(struct gc_req *req, struct gc_resp *resp);

void gc_api_check_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_check_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_check_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_check_update(struct gc_req *req, struct gc_resp *resp);
void gc_api_check_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_metrics_query(struct gc_req *req, struct gc_resp *resp);
void gc_api_metrics_series(struct gc_req *req, struct gc_resp *resp);
void gc_api_metrics_test_samples(struct gc_req *req, struct gc_resp *resp);

void gc_api_asset_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_asset_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_asset_update(struct gc_req *req, struct gc_resp *resp);
void gc_api_asset_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_asset_history(struct gc_req *req, struct gc_resp *resp);
void gc_api_asset_import(struct gc_req *req, struct gc_resp *resp);
void gc_api_snmp_device_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_snmp_device_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_snmp_device_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_snmp_device_update(struct gc_req *req, struct gc_resp *resp);
void gc_api_snmp_device_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_snmp_device_discover(struct gc_req *req, struct gc_resp *resp);
void gc_api_supervision_pull(struct gc_req *req, struct gc_resp *resp);
void gc_api_sensor_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_sensor_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_sensor_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_sensor_update(struct gc_req *req, struct gc_resp *resp);
void gc_api_sensor_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_sensor_readings(struct gc_req *req, struct gc_resp *resp);
void gc_api_sensor_profile_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_sensor_profile_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_sensor_profile_check(struct gc_req *req, struct gc_resp *resp);
void gc_api_supervision_substitution(struct gc_req *req, struct gc_resp *resp);
void gc_api_receiver_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_receiver_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_receiver_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_receiver_update(struct gc_req *req, struct gc_resp *resp);
void gc_api_receiver_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_cloud_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_cloud_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_cloud_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_cloud_update(struct gc_req *req, struct gc_resp *resp);
void gc_api_cloud_delete(struct gc_req *req, struct gc_resp *resp);
void gc_api_cloud_records(struct gc_req *req, struct gc_resp *resp);
void gc_api_supervision_ingest(struct gc_req *req, struct gc_resp *resp);
void gc_api_supervision_overview(struct gc_req *req, struct gc_resp *resp);
void gc_api_cloud_summary(struct gc_req *req, struct gc_resp *resp);

void gc_api_job_list(struct gc_req *req, struct gc_resp *resp);
void gc_api_job_create(struct gc_req *req, struct gc_resp *resp);
void gc_api_job_get(struct gc_req *req, struct gc_resp *resp);
void gc_api_job_cancel(struct gc_req *req, struct gc_resp *resp);

#endif
