/*
 * journeygate — the HTTP server: listeners, event-loop threads, the gateway
 * handler in front of h2o's reverse proxy, the admin listener, signals.
 * The only module that calls h2o.
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include "config.h"
#include "gw.h"

typedef struct gw_server_opts {
    const char *config_path;  /* file re-read on SIGHUP, or NULL (demo: nothing to reload) */
    int demo_upstream_port;   /* > 0: also serve the built-in demo upstream page on 127.0.0.1:port */
    struct prov_dev *dev_idp; /* demo only: development sign-in stand-ins served on 127.0.0.1:dev_idp_port */
    int dev_idp_port;
} gw_server_opts_t;

/**
 * Runs the gateway in the foreground until SIGTERM or SIGINT, then drains
 * in-flight requests and returns GW_OK. SIGHUP reloads opts->config_path.
 * Takes over the caller's reference to cfg.
 * Returns GW_EIO when a listener cannot be opened (logged).
 */
gw_status_t gw_server_run(gw_config_t *cfg, const gw_server_opts_t *opts);

#endif
