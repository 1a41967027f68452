/*
 * journeygate — the console's HTTP side as server.c and auth.c see it (console.c: the only console
 * file that uses h2o). Everything under /.console/ on the public listener comes here before route
 * matching: the embedded front end, staff sign-in and sign-out, and the JSON API whose endpoints
 * (console_api.h) run on the worker pool's background queue.
 */
#ifndef GW_CONSOLE_H
#define GW_CONSOLE_H

#include "server_int.h"
#include "store.h"
#include "workers.h"

/**
 * Once, after auth_init() and before any loop thread runs: the store and the worker pool the
 * endpoints use (both outlive every request); with cfg's console, the figures' snapshot starts
 * building (gateway/analytics.h).
 */
void console_init(store_t *store, gw_workers_t *workers, const gw_config_t *cfg);

/** At the end, after every loop thread stopped and the workers drained: stops the figures' threads. */
void console_shutdown(void);

/** Per loop thread, after h2o_context_init(): registers the receiver of finished API calls. */
void console_thread_init(struct thread *th);

/**
 * Answers a request whose normalised path is /.console or under /.console/ (the path was checked
 * with gw_path_check()). 404 when the request's configuration has no console. Returns 0 (answered).
 */
int console_handle(h2o_req_t *req, struct gw_req *gr, const char *path, size_t path_len);

/** The largest body a /.console/ path takes (normalised path): 16 KB for the API and logout, else 0. */
uint64_t console_body_limit(const char *path, size_t len);

/**
 * On the loop, when a staff sign-in's callback finished (auth.c's complete_login): signed_in 1
 * sets the staff cookie (token) and redirects to return_to; 0 (no role allows the person) answers
 * the console's 403 page and sets nothing.
 */
void console_sign_in_done(h2o_req_t *req, int signed_in, const char *token, const char *return_to);

#endif
