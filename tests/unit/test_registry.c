/* The registry operator's pure parts: image references (host, port,
 * repository, tag, digest, loopback), WWW-Authenticate challenges, Link
 * pagination, manifest media types and the sha256 digest of a manifest.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/operators/registry.h"

static void test_image_refs(void **state) {
  dagd_registry_ref r;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_registry_parse_image("127.0.0.1:5000/team/model", &r, &err), 0);
  assert_string_equal(r.host, "127.0.0.1:5000");
  assert_string_equal(r.repo, "team/model");
  assert_null(r.tag);
  assert_null(r.digest);
  assert_true(r.loopback);
  dagd_registry_ref_close(&r);

  assert_int_equal(dagd_registry_parse_image("registry.example.com/fraud:candidate", &r, &err), 0);
  assert_string_equal(r.host, "registry.example.com");
  assert_string_equal(r.repo, "fraud");
  assert_string_equal(r.tag, "candidate");
  assert_false(r.loopback);
  dagd_registry_ref_close(&r);

  /* A port is not a tag; a digest after @. */
  assert_int_equal(dagd_registry_parse_image("reg.local:5000/a/b@sha256:abcd", &r, &err), 0);
  assert_string_equal(r.host, "reg.local:5000");
  assert_string_equal(r.repo, "a/b");
  assert_null(r.tag);
  assert_string_equal(r.digest, "sha256:abcd");
  dagd_registry_ref_close(&r);

  assert_int_equal(dagd_registry_parse_image("[::1]:5000/x", &r, &err), 0);
  assert_string_equal(r.host, "[::1]:5000");
  assert_true(r.loopback);
  dagd_registry_ref_close(&r);
  assert_int_equal(dagd_registry_parse_image("localhost/x:1.2", &r, &err), 0);
  assert_true(r.loopback);
  assert_string_equal(r.tag, "1.2");
  dagd_registry_ref_close(&r);
  /* 127.0.0.1.example.com is a name, not loopback. */
  assert_int_equal(dagd_registry_parse_image("127.0.0.1.example.com/x", &r, &err), 0);
  assert_false(r.loopback);
  dagd_registry_ref_close(&r);

  static const char *bad[] = {"model", "/model", "reg:5000/", "reg/Model", "reg/a//b", "reg/a:", "reg/a:b c",
                              "re g/a", "[::1/a", "reg/a@nodigest"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dagd_err_init(&err);
    assert_int_equal(dagd_registry_parse_image(bad[i], &r, &err), DAGD_EINVAL);
    assert_non_null(strstr(err.msg, "image"));
    assert_null(r.host);
  }
}

static void test_challenges(void **state) {
  dagd_registry_challenge c;
  assert_int_equal(dagd_registry_parse_challenge(
                       "Bearer realm=\"https://auth.example.com/token\",service=\"registry.example.com\","
                       "scope=\"repository:fraud:pull,push\"",
                       &c),
                   0);
  assert_string_equal(c.scheme, "Bearer");
  assert_string_equal(c.realm, "https://auth.example.com/token");
  assert_string_equal(c.service, "registry.example.com");
  assert_string_equal(c.scope, "repository:fraud:pull,push"); /* the comma inside quotes stays */
  assert_null(c.error);
  dagd_registry_challenge_close(&c);

  assert_int_equal(dagd_registry_parse_challenge("Basic realm=\"Registry Realm\"", &c), 0);
  assert_string_equal(c.scheme, "Basic");
  assert_string_equal(c.realm, "Registry Realm");
  assert_null(c.scope);
  dagd_registry_challenge_close(&c);

  /* Unquoted values, spaces after commas, escapes, unknown params, case. */
  assert_int_equal(dagd_registry_parse_challenge(
                       "Bearer Realm=http://t/a, error=\"invalid_token\", foo=\"b\\\"ar\", service=s", &c),
                   0);
  assert_string_equal(c.realm, "http://t/a");
  assert_string_equal(c.error, "invalid_token");
  assert_string_equal(c.service, "s");
  dagd_registry_challenge_close(&c);

  assert_int_equal(dagd_registry_parse_challenge("", &c), DAGD_ESYNTAX);
  assert_int_equal(dagd_registry_parse_challenge("Bearer realm=\"unterminated", &c), DAGD_ESYNTAX);
  assert_int_equal(dagd_registry_parse_challenge("Bearer realm", &c), DAGD_ESYNTAX);
  assert_null(c.scheme);
}

static void test_link_next(void **state) {
  char *n = dagd_registry_link_next("</v2/m/tags/list?last=b&n=2>; rel=\"next\"");
  assert_string_equal(n, "/v2/m/tags/list?last=b&n=2");
  free(n);
  n = dagd_registry_link_next("<https://r/v2/m/tags/list?n=2&last=a>; rel=\"prev\", <https://r/v2/m/tags/list?n=2&last=d>; rel=next");
  assert_string_equal(n, "https://r/v2/m/tags/list?n=2&last=d");
  free(n);
  assert_null(dagd_registry_link_next("</v2/m/tags/list?last=b>; rel=\"prev\""));
  assert_null(dagd_registry_link_next("</v2/x>; rel=\"nextpage\""));
  assert_null(dagd_registry_link_next("garbage"));
  assert_null(dagd_registry_link_next(""));
}

static void test_media_types(void **state) {
  const char *accept = dagd_registry_manifest_accept();
  assert_non_null(strstr(accept, "application/vnd.oci.image.index.v1+json"));
  assert_non_null(strstr(accept, "application/vnd.oci.image.manifest.v1+json"));
  assert_non_null(strstr(accept, "application/vnd.docker.distribution.manifest.v2+json"));
  assert_non_null(strstr(accept, "application/vnd.docker.distribution.manifest.list.v2+json"));
  /* The legacy signed schema 1 is not asked for: copying it breaks its signature. */
  assert_null(strstr(accept, "prettyjws"));

  char *mt = dagd_registry_media_type("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8", "{}", 2);
  assert_string_equal(mt, "application/vnd.docker.distribution.manifest.v2+json");
  free(mt);
  /* A generic Content-Type: the body's mediaType decides. */
  const char *body = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"}";
  mt = dagd_registry_media_type("application/json", body, strlen(body));
  assert_string_equal(mt, "application/vnd.oci.image.manifest.v1+json");
  free(mt);
  assert_null(dagd_registry_media_type("application/json", "{}", 2));
  assert_null(dagd_registry_media_type(NULL, "not json", 8));
  assert_false(dagd_registry_media_type_known("application/vnd.docker.distribution.manifest.v1+prettyjws"));
  assert_true(dagd_registry_media_type_known("application/vnd.oci.image.index.v1+json"));
}

static void test_digest(void **state) {
  char d[72];
  dagd_registry_sha256("", 0, d);
  assert_string_equal(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  dagd_registry_sha256("abc", 3, d);
  assert_string_equal(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_image_refs),   cmocka_unit_test(test_challenges), cmocka_unit_test(test_link_next),
      cmocka_unit_test(test_media_types), cmocka_unit_test(test_digest),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
