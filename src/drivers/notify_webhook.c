/* The webhook notify driver: an HTTP POST of the JSON event with libcurl. */
#include "drivers/notify.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static size_t discard(char *p, size_t size, size_t n, void *opaque)
{
    (void)p;
    (void)opaque;
    return size * n;
}

static int webhook_send(const char *target, const char *body, const char *key,
                        struct gc_error *err)
{
    CURL *h = curl_easy_init();
    if (!h)
        return gc_error_set(err, GC_EINTERNAL, "", "cannot start an HTTP client");
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    char k[128];
    snprintf(k, sizeof(k), "Idempotency-Key: %s", key);
    hdr = curl_slist_append(hdr, k);
    curl_easy_setopt(h, CURLOPT_URL, target);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "govcloud-notify/1");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    CURLcode c = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    int rc = 0;
    if (c != CURLE_OK)
        rc = gc_error_set(err, GC_EBUSY, "", "%s", curl_easy_strerror(c));
    else if (status < 200 || status > 299)
        rc = gc_error_set(err, GC_EBUSY, "", "the receiver answered HTTP %ld", status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return rc;
}

const struct gc_notify_driver gc_notify_webhook = {.kind = "webhook", .send = webhook_send};

const struct gc_notify_driver *gc_notify_driver_for(const char *kind)
{
    static const struct gc_notify_driver *const drivers[] = {&gc_notify_webhook};
    for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
        if (strcmp(drivers[i]->kind, kind) == 0)
            return drivers[i];
    return NULL;
}
