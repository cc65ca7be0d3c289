/* The job runner: worker threads that claim queued jobs from the store and run them, plus
 * the periodic housekeeping of the daemon (one timer thread, Redis' serverCron idea). */
#ifndef GC_RUNNER_H
#define GC_RUNNER_H

#include "store/store.h"
#include "util/config.h"

struct gc_runner;

/* Settles jobs left running by a previous process (crash or kill): a resumable kind is
 * queued again, any other is failed with an explanation. Call before gc_runner_start. */
int gc_jobs_recover(struct gc_store *st, struct gc_error *err);

struct gc_runner *gc_runner_start(struct gc_store *st, const struct gc_config *cfg);
/* Stops claiming, asks running jobs to stop, waits for the workers. Jobs interrupted this
 * way are queued again (resumable) or failed. */
void gc_runner_stop(struct gc_runner *r);

/* Registers the job kinds of images and virtual machines (vmjobs.c). */
void gc_register_vm_job_kinds(const struct gc_config *cfg, struct gc_store *st);
/* The VNC console of domain uuid on host host_id (gc_vm_vnc_probe). */
int gc_vmjobs_vnc(const char *host_id, const char *uuid, char *listen, int *port, char *password,
                  struct gc_error *err);

/* Registers the job kinds that exist only for tests (test.sleep, test.sleep_once). */
void gc_register_test_job_kinds(void);

#endif
