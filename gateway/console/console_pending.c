/* TEMPORARY: removed at merge. The endpoints other branches write (console_marketer.c,
 * console_figures.c, console_security.c) answer 501 here, so the console's core links and its
 * gate (session, roles, CSRF) can be tested on its own. */
#include "console_api.h"

#define PENDING(fn)                                                                                                    \
    void fn(const console_call_t *call, console_answer_t *ans)                                                         \
    {                                                                                                                  \
        (void)call;                                                                                                    \
        console_error(ans, 501, "not_implemented", #fn " is built in another branch");                                 \
    }

PENDING(console_api_customers_search)
PENDING(console_api_customer)
PENDING(console_api_journey)
PENDING(console_api_export)
PENDING(console_api_overview)
PENDING(console_api_transitions)
PENDING(console_api_paths)
PENDING(console_api_funnel)
PENDING(console_api_stages)
PENDING(console_api_inventory)
PENDING(console_api_signin_volume)
PENDING(console_api_audit)
PENDING(console_api_audit_chain)
PENDING(console_api_audit_flow)
PENDING(console_api_customer_security)
PENDING(console_api_revoke_sessions)
PENDING(console_api_unlink)
PENDING(console_api_erase)
PENDING(console_api_policies)
PENDING(console_api_explain)
