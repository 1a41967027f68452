/*
 * journeygate — attaches the policy engine's set (policies/) to a configuration snapshot,
 * so a reload swaps policies atomically with the rest of the configuration.
 */
#ifndef GW_POLICY_GLUE_H
#define GW_POLICY_GLUE_H

#include "config.h"

/**
 * Loads cfg's policies (inline or from files) and checks that their provider and channel names
 * exist. On failure returns GW_EINVAL and appends every problem to errs ("FILE: policies.NAME...").
 */
gw_status_t gw_policies_attach(gw_config_t *cfg, gw_config_errors_t *errs);

#endif
