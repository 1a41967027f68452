/* Unit tests: metrics registry and Prometheus rendering. */
#include "metrics.h"

#include "../check_run.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_metrics_route_index_is_stable)
{
    unsigned a = gw_metrics_route_index("alpha"), b = gw_metrics_route_index("beta");
    ck_assert_uint_ne(a, 0);
    ck_assert_uint_ne(a, b);
    ck_assert_uint_eq(gw_metrics_route_index("alpha"), a);
}
END_TEST

START_TEST(test_metrics_render_sums_threads)
{
    unsigned r = gw_metrics_route_index("gamma");
    gw_metrics_thread_t *t0 = gw_metrics_thread(0), *t1 = gw_metrics_thread(1);
    size_t len;
    char *text;

    gw_metrics_request(t0, r, 200, 500);
    gw_metrics_request(t1, r, 204, 3000000);
    gw_metrics_request(t1, r, 503, 20000);
    gw_metrics_upstream_error(t1, r, GW_UPERR_TIMEOUT);
    gw_metrics_count(t0, GW_CTR_HEADER_REJECTED);
    gw_metrics_count(t1, GW_CTR_RATE_LIMITED_INGEST);
    gw_metrics_count(t0, GW_CTR_RATE_LIMITED_INGEST);
    text = gw_metrics_render(&len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(strlen(text), len);
    ck_assert_ptr_nonnull(strstr(text, "journeygate_requests_total{route=\"gamma\",code=\"2xx\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(text, "journeygate_requests_total{route=\"gamma\",code=\"5xx\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "journeygate_upstream_errors_total{route=\"gamma\",kind=\"timeout\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "journeygate_request_duration_seconds_bucket{le=\"0.001\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "journeygate_request_duration_seconds_bucket{le=\"0.025\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(text, "journeygate_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(text, "journeygate_request_duration_seconds_count 3\n"));
    ck_assert_ptr_nonnull(strstr(text, "journeygate_header_limit_rejected_total 1\n"));
    /* a labelled family: one HELP and TYPE, then each series */
    ck_assert_ptr_nonnull(strstr(text, "# TYPE journeygate_rate_limited_total counter\n"
                                       "journeygate_rate_limited_total{bucket=\"signin\"} 0\n"
                                       "journeygate_rate_limited_total{bucket=\"ingest\"} 2\n"));
    ck_assert_ptr_null(
        strstr(strstr(text, "# TYPE journeygate_rate_limited_total") + 1, "# TYPE journeygate_rate_limited_total"));
    ck_assert_ptr_nonnull(strstr(text, "# TYPE journeygate_config_reloads_total counter\n"
                                       "journeygate_config_reloads_total{result=\"ok\"} 0\n"
                                       "journeygate_config_reloads_total{result=\"failed\"} 0\n"));
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_metrics_route_index_is_stable);
    tcase_add_test(tc, test_metrics_render_sums_threads);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
