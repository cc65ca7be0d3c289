/* The notify driver table: how a notification reaches a channel. The webhook driver is
 * notify_webhook.c; another channel kind (SMS gateway, mail) is a new file that fills the
 * same table. */
#ifndef GC_NOTIFY_H
#define GC_NOTIFY_H

#include "util/error.h"

struct gc_notify_driver {
    const char *kind;
    /* Delivers body (JSON) to target; key identifies this delivery (the receiver drops a
     * repeated key). 0 when the receiver took it; otherwise err says why (retried later). */
    int (*send)(const char *target, const char *body, const char *key, struct gc_error *err);
};

extern const struct gc_notify_driver gc_notify_webhook;

const struct gc_notify_driver *gc_notify_driver_for(const char *kind);

#endif
