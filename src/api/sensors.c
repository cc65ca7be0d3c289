/* Handlers of /v1/sensors (data-centre environment, monitor/environment.c). */
#include "api/api.h"

#include "monitor/environment.h"

static const char *const sensor_filters[] = {"driver", "room", "room_class", "profile", NULL};

void gc_api_sensor_list(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_list(req, resp, gc_sensor_list, sensor_filters);
}

void gc_api_sensor_create(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_create(req, resp, gc_sensor_create, "/v1/sensors");
}

void gc_api_sensor_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_sensor_get);
}

void gc_api_sensor_update(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_update(req, resp, gc_sensor_update);
}

void gc_api_sensor_delete(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_delete(req, resp, gc_sensor_delete);
}

void gc_api_sensor_readings(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_sensor_readings);
}

void gc_api_sensor_profile_list(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *items = NULL;
    if (gc_sensor_profile_list(&req->ctx, &items, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_api_list_response(resp, items, NULL);
}

void gc_api_sensor_profile_get(struct gc_req *req, struct gc_resp *resp)
{
    gc_api_get(req, resp, gc_sensor_profile_get);
}

void gc_api_sensor_profile_check(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    json_t *obj = NULL;
    if (gc_sensor_profile_check(&req->ctx, req->body, &obj, &err)) {
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_json(resp, 200, obj);
}
