/*
 * journeygate — the worker pool: blocking work (identity-provider calls, synced
 * store writes) runs here, never on an event-loop thread.
 */
#ifndef GW_WORKERS_H
#define GW_WORKERS_H

#include "gw.h"

#include <pthread.h>
#include <stddef.h>

/**
 * pthread_create(tid, NULL, fn, arg) with every signal blocked in the new thread: signals belong to
 * the main thread (SIGTERM, SIGHUP). Returns pthread_create()'s result (0 when the thread runs).
 */
int gw_thread_start(pthread_t *tid, void *(*fn)(void *), void *arg);

typedef struct gw_workers gw_workers_t;
typedef void (*gw_job_fn)(void *arg);

/** Starts n threads with a queue of at most max_queue waiting jobs. */
gw_workers_t *gw_workers_create(unsigned n, size_t max_queue);

/** Queues fn(arg); GW_EUNAVAIL when the queue is full (the caller answers 503). Thread-safe. */
gw_status_t gw_workers_submit(gw_workers_t *w, gw_job_fn fn, void *arg);

/**
 * Queues fn(arg) as background work (session touches, records of events that change nothing):
 * a queue of its own (max_queue jobs), taken only when no gw_workers_submit() job waits, and by
 * at most n - 1 workers at once, so one worker is always there for the jobs a person waits on.
 * GW_EUNAVAIL when that queue is full. Thread-safe.
 */
gw_status_t gw_workers_submit_background(gw_workers_t *w, gw_job_fn fn, void *arg);

/**
 * Waits until no job is queued or running (at most timeout_ms). Call at shutdown so the process
 * never exits while a job is half done. Returns GW_OK, or GW_ETIMEOUT.
 */
gw_status_t gw_workers_drain(gw_workers_t *w, unsigned timeout_ms);

#endif
