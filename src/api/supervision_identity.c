/* GET /v1/supervision/public-key: this cloud's supervision id and SM2 public key, for an
 * operator who registers the cloud with a supervisor (docs/supervision-spec.md). */
#include "api/api.h"
#include "supervision/envelope.h"
#include "supervision/schema.h"

void gc_api_supervision_public_key(struct gc_req *req, struct gc_resp *resp)
{
    struct gc_error err = {0};
    const struct gc_sup_identity *id = NULL;
    if (!gc_role_is_platform(req->who.role)) {
        gc_error_set(&err, GC_EPERM, "", "the supervision identity is for platform roles only");
        gc_resp_error(resp, req, &err);
        return;
    }
    if (gc_sup_identity_get(req->ctx.cfg->data_dir, req->ctx.cfg->supervision_cloud_id, &id,
                            &err) != 0) {
        err.code = GC_EINTERNAL; /* a state directory problem, not the client's */
        gc_resp_error(resp, req, &err);
        return;
    }
    gc_resp_json(resp, 200,
                 json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "cloud_id", id->cloud_id,
                           "schema_version", GC_SUPERVISION_SCHEMA_VERSION, "algorithm", "SM2",
                           "signature_alg", GC_SIGNATURE_ALG, "sm2_id", GC_SM2_DEFAULT_ID,
                           "public_key_pem", id->public_pem, "fingerprint_sm3",
                           id->fingerprint));
}
