/* Helpers shared by the API's handler files.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_API_INTERNAL_H
#define DAGD_API_INTERNAL_H

#include <jansson.h>

#include "dagd/api.h"
#include "dagd/err.h"

/* JSON text of user values (conf, payloads): 15 significant digits read
 * back every decimal of up to 15 digits exactly and print 0.3 as 0.3. */
#define DAGD_API_DUMP (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* Sets an error response: the problem document of dagd_problem_write
 * (application/problem+json) with the formatted detail; returns status. */
int dagd__api_error(dagd_api_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets a JSON response (takes the reference). */
int dagd__api_json(dagd_api_response *resp, int status, json_t *doc);
/* Maps a store failure: busy or full -> 503 (retry), else 500. */
int dagd__api_store_error(dagd_api_response *resp, const dagd_err *err);
/* Parses the body as a JSON object: 415 for another content type, 400
 * for bad JSON or a non-object, with the reason. */
int dagd__api_body(const dagd_api_request *req, dagd_api_response *resp, json_t **out);
/* 400 naming the first member of body that is not in fields (a
 * space-separated list), with a "did you mean"; 0 when all are known. */
int dagd__api_body_fields(dagd_api_response *resp, const json_t *body, const char *fields);
/* Reads an optional boolean member (def when absent or null); 400 when
 * it is another type. */
int dagd__api_body_bool(dagd_api_response *resp, const json_t *body, const char *name, bool def, bool *out);
/* A query parameter, decoded, or NULL (the first, if repeated). Heap string. */
char *dagd__api_query(const dagd_api_request *req, const char *name);
/* Every value of a query parameter that may repeat (state=a&state=b),
 * decoded, in order; *n of them (0: NULL). Free with dagd__api_strv_free. */
char **dagd__api_query_all(const dagd_api_request *req, const char *name, size_t *n);
void dagd__api_strv_free(char **v, size_t n);
/* Reads an integer query parameter within [lo, hi] (def when absent);
 * sets a 400 and returns -1 when malformed. */
int dagd__api_query_int(const dagd_api_request *req, dagd_api_response *resp, const char *name, int64_t def,
                        int64_t lo, int64_t hi, int64_t *out);
/* JSON of an instant (RFC 3339 UTC) or null for 0. */
json_t *dagd__api_time(double t);
/* The DAG of a path parameter, or a 404 set in resp (with the closest
 * loaded id as a "did you mean" hint). */
const dagd_dag *dagd__api_dag(dagd_api *api, const char *dag_id, dagd_api_response *resp);
/* Like dagd__api_dag, for what stays available when a DAG's file was
 * removed or no longer loads: its runs, task instances and logs. 0 with
 * *dag the loaded model, or NULL for a DAG the store knows that is not
 * loaded now; else the status set in resp (404, 5xx). */
int dagd__api_dag_known(dagd_api *api, const char *dag_id, dagd_api_response *resp, const dagd_dag **dag);
/* JSON of a run (Airflow's DAGRun shape). */
json_t *dagd__api_run_json(const dagd_store_run *r);
/* Creates a run of dag now, of the given type, with conf (an object,
 * borrowed), in the caller's transaction. run_id NULL makes Airflow 3's
 * "<type>__<now to the microsecond>", stepped to the next microsecond
 * while taken, so it never conflicts (DAGD_ELIMIT if no id is free
 * nearby); a given run_id that exists is DAGD_EEXIST (409). On success
 * *out is the run. */
int dagd__api_create_run(dagd_api *api, const dagd_dag *dag, dagd_run_type type, int64_t logical_date,
                         const char *run_id, const json_t *conf, int64_t event_id, double now,
                         dagd_store_run *out, dagd_err *err);

/* The same with the run's data interval given. */
int dagd__api_create_run_in(dagd_api *api, const dagd_dag *dag, dagd_run_type type, int64_t logical_date,
                            const dagd_interval *interval, const char *run_id, const json_t *conf, int64_t event_id,
                            double now, dagd_store_run *out, dagd_err *err);
/* Parses a time given to the API: RFC 3339 with Z or an offset, or
 * YYYY-MM-DD[THH:MM[:SS]] without one, read in dag's zone (the earlier of
 * two readings in a DST overlap). -1 when malformed. */
int dagd__api_parse_time(const dagd_dag *dag, const char *text, int64_t *out);

/* Makes a task instance run again: state none, its retries available
 * again after the tries it used (as Airflow's clear does). */
void dagd__api_reset_ti(dagd_store_ti *ti, const dagd_task *task);
/* Ends a durable transaction: rolled back when rc < 0 or for a dry run,
 * else committed. Returns the first failure. */
int dagd__api_end(dagd_api *api, bool dry_run, int rc, dagd_err *err);

int dagd__api_health(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_metrics(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_openapi(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_dags_list(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_dag_get(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_dag_patch(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_dag_tasks(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_runs_post(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_runs_list(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_run_get(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_run_patch(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_tis_list(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_ti_patch(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_ti_log(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_clear(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_backfill_post(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_backfill_get(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_events_post(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_events_list(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_hook_alertmanager(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);
int dagd__api_hook_grafana(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);

#endif
