/* The pure parts of the kubectl-based operators: analysis thresholds,
 * Prometheus answers, canary replica splits, Kubernetes Job names, label
 * values, memory quantities and the Job manifest.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dagd/compare.h"
#include "../../src/operators/kube.h"

static void test_threshold(void **state) {
  dagd_cmp_expr t;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_cmp_parse("< 0.05", "threshold", false, &t, &err), 0);
  assert_int_equal(t.op, DAGD_CMP_LT);
  assert_true(dagd_cmp_compare(t.op, 0.049, t.value));
  assert_false(dagd_cmp_compare(t.op, 0.05, t.value));
  assert_false(dagd_cmp_compare(t.op, NAN, t.value)); /* no number never passes */
  assert_int_equal(dagd_cmp_parse("  >=99.5 ", "threshold", false, &t, &err), 0);
  assert_int_equal(t.op, DAGD_CMP_GE);
  assert_true(dagd_cmp_compare(t.op, 99.5, t.value));
  assert_false(dagd_cmp_compare(t.op, 99.4, t.value));
  assert_int_equal(dagd_cmp_parse("<=1e3", "threshold", false, &t, &err), 0);
  assert_int_equal(t.op, DAGD_CMP_LE);
  assert_true(t.value == 1000);
  assert_int_equal(dagd_cmp_parse("!= 0", "threshold", false, &t, &err), 0);
  assert_false(dagd_cmp_compare(t.op, 0, t.value));
  assert_int_equal(dagd_cmp_parse("0.05", "threshold", false, &t, &err), DAGD_ESYNTAX);
  assert_non_null(strstr(err.msg, "must start with"));
  dagd_err_init(&err);
  assert_int_equal(dagd_cmp_parse("< 0.05 ms", "threshold", false, &t, &err), DAGD_ESYNTAX);
  assert_non_null(strstr(err.msg, "unexpected \"ms\""));
  assert_int_equal(dagd_cmp_parse("> inf", "threshold", false, &t, NULL), DAGD_ESYNTAX);
  assert_int_equal(dagd_cmp_parse("=< 1", "threshold", false, &t, NULL), DAGD_ESYNTAX);
}

static void test_prometheus(void **state) {
  double *v;
  size_t n;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd__deploy_prom_values("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                                            "{\"metric\":{\"pod\":\"a\"},\"value\":[1.5,\"0.01\"]},"
                                            "{\"metric\":{\"pod\":\"b\"},\"value\":[1.5,\"NaN\"]}]}}",
                                            &v, &n, &err),
                   0);
  assert_int_equal(n, 2);
  assert_true(v[0] == 0.01);
  assert_true(isnan(v[1]));
  free(v);
  assert_int_equal(dagd__deploy_prom_values(
                       "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1.5,\"42\"]}}", &v, &n, &err),
                   0);
  assert_int_equal(n, 1);
  assert_true(v[0] == 42);
  free(v);
  /* No series: no data, which the analysis counts as a failure. */
  assert_int_equal(dagd__deploy_prom_values(
                       "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}", &v, &n, &err), 0);
  assert_int_equal(n, 0);
  free(v);
  assert_int_equal(dagd__deploy_prom_values("{\"status\":\"error\",\"error\":\"parse error at char 5\"}", &v, &n, &err),
                   DAGD_ESYNTAX);
  assert_non_null(strstr(err.msg, "parse error at char 5"));
  assert_null(v);
  dagd_err_init(&err);
  assert_int_equal(dagd__deploy_prom_values("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}",
                                            &v, &n, &err),
                   DAGD_ESYNTAX);
  assert_non_null(strstr(err.msg, "matrix"));
  assert_int_equal(dagd__deploy_prom_values("<html>", &v, &n, NULL), DAGD_ESYNTAX);
  assert_int_equal(dagd__deploy_prom_values("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                                            "{\"value\":[1.5,\"12abc\"]}]}}",
                                            &v, &n, NULL),
                   DAGD_ESYNTAX);
}

static void test_canary_replicas(void **state) {
  static const struct { int total, weight, canary, stable; } cases[] = {
      {10, 5, 1, 9}, {10, 25, 3, 7}, {10, 50, 5, 5}, {10, 100, 10, 0},
      {4, 5, 1, 3},  {4, 25, 1, 3},  {3, 50, 2, 1},  {1, 5, 1, 0}, {0, 50, 1, 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int c, s;
    dagd__deploy_canary_replicas(cases[i].total, cases[i].weight, &c, &s);
    assert_int_equal(c, cases[i].canary);
    assert_int_equal(s, cases[i].stable);
  }
}

static void test_names(void **state) {
  char *a = dagd__k8s_job_name("etl", "manual__2026-01-02T00:00:00+00:00", "Train_Model", 2);
  char *b = dagd__k8s_job_name("etl", "manual__2026-01-02T00:00:00+00:00", "Train_Model", 2);
  char *c = dagd__k8s_job_name("etl", "manual__2026-01-02T00:00:00+00:00", "train-model", 2);
  assert_string_equal(a, b); /* deterministic per try */
  assert_true(strncmp(a, "dagd-etl-manual-2026-01-02t00-00-00-00-00-train-", 48) == 0);
  assert_string_not_equal(a, c); /* the hash tells apart ids the name folds together */
  assert_true(strlen(a) <= 63); /* a DNS label, and the job-name label value */
  free(a);
  free(b);
  free(c);
  char longid[201];
  memset(longid, 'x', 200);
  longid[200] = '\0';
  a = dagd__k8s_job_name(longid, "r1", "t", 1);
  assert_true(strlen(a) <= 63);
  for (char *p = a; *p; p++) assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-');
  free(a);
  a = dagd__k8s_job_name("d", "r", "t", 1);
  assert_int_equal(strlen(a), strlen("dagd-d-r-t-1-") + 8);
  free(a);

  char *l = dagd__k8s_label_value("manual__2026-01-02T00:00:00+00:00");
  assert_string_equal(l, "manual__2026-01-02T00-00-00-00-00");
  free(l);
  l = dagd__k8s_label_value("__x__");
  assert_string_equal(l, "x");
  free(l);
  l = dagd__k8s_label_value("--");
  assert_string_equal(l, "x");
  free(l);
  l = dagd__k8s_label_value(longid);
  assert_int_equal(strlen(l), 63);
  free(l);

  /* A default run id and a client-given one that its label folds into:
   * the same dagd.run label, told apart by dagd.key (the name's hash). */
  char *la = dagd__k8s_label_value("manual__2026-12-02T14:18:12+00:00");
  char *lb = dagd__k8s_label_value("manual__2026-12-02T14-18-12-00-00");
  assert_string_equal(la, lb);
  free(la);
  free(lb);
  char *ka = dagd__k8s_try_key("etl", "manual__2026-12-02T14:18:12+00:00", "train", 1);
  char *kb = dagd__k8s_try_key("etl", "manual__2026-12-02T14-18-12-00-00", "train", 1);
  assert_int_equal(strlen(ka), 8);
  assert_string_not_equal(ka, kb);
  a = dagd__k8s_job_name("etl", "manual__2026-12-02T14:18:12+00:00", "train", 1);
  assert_true(dagd_str_has_suffix(a, ka)); /* the same hash ends the name */
  /* A DNS label: [a-z0-9-], alphanumeric at both ends, no raw run id. */
  assert_true(strlen(a) <= 63);
  for (char *p = a; *p; p++) assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-');
  assert_true(a[0] != '-' && a[strlen(a) - 1] != '-');
  free(a);
  free(ka);
  free(kb);
}

static void test_quantity(void **state) {
  static const struct { const char *json, *want; } cases[] = {
      {"\"512m\"", "512Mi"}, {"\"4g\"", "4Gi"}, {"\"64K\"", "64Ki"}, {"\"100b\"", "100"},
      {"\"1000\"", "1000"},  {"1048576", "1048576"}, {"\"4gb\"", NULL}, {"\"g\"", NULL}, {"\"4t\"", NULL}, {"true", NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
    char *q = dagd__k8s_quantity(v);
    if (cases[i].want) assert_string_equal(q, cases[i].want);
    else assert_null(q);
    free(q);
    json_decref(v);
  }
}

static void test_manifest(void **state) {
  json_t *config = json_loads("{\"image\": \"reg/train:1\", \"cmd\": [\"--epochs\", 3], \"entrypoint\": \"/bin/train\","
                              " \"cpus\": 0.5, \"memory\": \"2g\", \"gpus\": 2, \"pull\": \"missing\", \"user\": \"1000:100\","
                              " \"workdir\": \"/w\", \"pod_template\": {\"metadata\": {\"annotations\": {\"a\": \"b\"}},"
                              " \"spec\": {\"restartPolicy\": \"OnFailure\", \"nodeSelector\": {\"gpu\": \"a100\"}}}}",
                              0, NULL);
  json_t *env = json_pack("{s:s, s:s}", "MODE", "full", "DAGD_OUTPUT", "/dev/termination-log");
  json_t *labels = json_pack("{s:s, s:s}", "dagd.dag", "etl", "dagd.try", "1");
  json_t *m = dagd__k8s_job_manifest(config, env, "dagd-etl-1", labels);
  json_t *want = json_loads(
      "{\"apiVersion\": \"batch/v1\", \"kind\": \"Job\","
      " \"metadata\": {\"name\": \"dagd-etl-1\", \"labels\": {\"dagd.dag\": \"etl\", \"dagd.try\": \"1\"}},"
      " \"spec\": {\"backoffLimit\": 0, \"ttlSecondsAfterFinished\": 86400, \"template\": {"
      "  \"metadata\": {\"labels\": {\"dagd.dag\": \"etl\", \"dagd.try\": \"1\"}, \"annotations\": {\"a\": \"b\"}},"
      "  \"spec\": {\"restartPolicy\": \"OnFailure\", \"nodeSelector\": {\"gpu\": \"a100\"}, \"containers\": [{"
      "   \"name\": \"task\", \"image\": \"reg/train:1\", \"terminationMessagePolicy\": \"File\","
      "   \"command\": [\"/bin/train\"], \"args\": [\"--epochs\", \"3\"], \"workingDir\": \"/w\","
      "   \"imagePullPolicy\": \"IfNotPresent\","
      "   \"env\": [{\"name\": \"MODE\", \"value\": \"full\"}, {\"name\": \"DAGD_OUTPUT\", \"value\": \"/dev/termination-log\"}],"
      "   \"resources\": {\"requests\": {\"cpu\": \"0.5\", \"memory\": \"2Gi\"},"
      "                 \"limits\": {\"cpu\": \"0.5\", \"memory\": \"2Gi\", \"nvidia.com/gpu\": \"2\"}},"
      "   \"securityContext\": {\"runAsUser\": 1000, \"runAsGroup\": 100}}]}}}}",
      0, NULL);
  assert_non_null(want);
  if (!json_equal(m, want)) {
    char *got = json_dumps(m, JSON_INDENT(1));
    print_error("got %s\n", got);
    free(got);
    fail();
  }
  json_decref(want);
  json_decref(m);
  /* The smallest task: no resources, no command. */
  json_t *small = json_pack("{s:s}", "image", "busybox");
  m = dagd__k8s_job_manifest(small, env, "n", labels);
  json_t *ctr = json_array_get(json_object_get(json_object_get(json_object_get(json_object_get(m, "spec"), "template"), "spec"), "containers"), 0);
  assert_int_equal(json_object_size(json_object_get(ctr, "resources")), 0);
  assert_null(json_object_get(ctr, "args"));
  assert_null(json_object_get(ctr, "command"));
  json_decref(m);
  json_decref(small);
  json_decref(config);
  json_decref(env);
  json_decref(labels);
}

static void test_merge(void **state) {
  json_t *t = json_loads("{\"a\": {\"b\": 1, \"c\": [1, 2]}, \"d\": 1}", 0, NULL);
  json_t *p = json_loads("{\"a\": {\"c\": [3], \"e\": {\"f\": 1}}, \"d\": {\"x\": 1}}", 0, NULL);
  dagd__k8s_merge(t, p);
  json_t *want = json_loads("{\"a\": {\"b\": 1, \"c\": [3], \"e\": {\"f\": 1}}, \"d\": {\"x\": 1}}", 0, NULL);
  assert_true(json_equal(t, want));
  json_decref(t);
  json_decref(p);
  json_decref(want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_threshold), cmocka_unit_test(test_prometheus), cmocka_unit_test(test_canary_replicas),
      cmocka_unit_test(test_names),     cmocka_unit_test(test_quantity),   cmocka_unit_test(test_manifest),
      cmocka_unit_test(test_merge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
