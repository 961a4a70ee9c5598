/* aws.h — small SigV4-signed clients for AWS Lambda (Invoke) and AWS Step
 * Functions (StartExecution, DescribeExecution), used by the serverless
 * architecture when functions run on AWS (docs/aws.md).
 *
 * Settings (a zeroed pl_aws_opts means every default):
 *   region       opts->region, else AWS_REGION, else AWS_DEFAULT_REGION,
 *                else us-east-1
 *   endpoint     opts->endpoint ("http[s]://HOST[:PORT]", no path), else
 *                https://lambda.REGION.amazonaws.com /
 *                https://states.REGION.amazonaws.com. An override points
 *                the same signed request at another server, e.g. the local
 *                function platform (which ignores the signature).
 *   credentials  as the S3 store (store.h): AWS_ACCESS_KEY_ID +
 *                AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), else the
 *                shared credentials file. Never from source code.
 * Every request is signed with SigV4 (service "lambda" or "states") and has
 * a connect and a total timeout. Functions are prefixed pl_aws_.
 */
#ifndef PEERLESS_AWS_H
#define PEERLESS_AWS_H

#include <stddef.h>

#include "peerless/status.h"

typedef struct pl_aws_opts {
    const char *region;    /* NULL: see above */
    const char *endpoint;  /* NULL: the service's AWS endpoint */
    long timeout_ms;       /* whole request; 0: 900000 (Lambda's maximum) */
} pl_aws_opts;

/* An HTTP answer. Strings are malloc'd, owned by the caller
 * (pl_aws_response_free). */
typedef struct pl_aws_response {
    long http_status;
    char *body;            /* NUL-terminated (never NULL after PL_OK) */
    size_t len;
    char *function_error;  /* X-Amz-Function-Error ("Unhandled") or NULL */
    char *error_type;      /* x-amzn-ErrorType or NULL */
} pl_aws_response;

void pl_aws_response_free(pl_aws_response *r);

/* Lambda Invoke (RequestResponse): POST /2015-03-31/functions/FN/invocations
 * with `payload`. FN is a function name or ARN (URI-encoded). PL_OK for any
 * HTTP answer (inspect res: 200 with function_error set means the function
 * failed); PL_ERR_IO for transport failures, PL_ERR_ARG for bad arguments or
 * missing credentials. res is zeroed first. */
int pl_aws_lambda_invoke(const pl_aws_opts *opts, const char *function, const void *payload, size_t len,
                         pl_aws_response *res, pl_err *err);

/* Step Functions StartExecution (JSON 1.0, X-Amz-Target
 * AWSStepFunctions.StartExecution) of `state_machine_arn` with `input_json`
 * and an optional execution `name` (NULL: AWS picks one). On success
 * *execution_arn is malloc'd (caller frees). Non-200 answers are PL_ERR_IO
 * (PL_ERR_ARG for 400) with AWS's __type and message in err. */
int pl_aws_sfn_start_execution(const pl_aws_opts *opts, const char *state_machine_arn, const char *name,
                               const char *input_json, char **execution_arn, pl_err *err);

/* DescribeExecution: status "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT",
 * "ABORTED"; output (SUCCEEDED), error and cause (FAILED) or NULL. Strings
 * malloc'd; free with pl_aws_execution_free. */
typedef struct pl_aws_execution {
    char *status, *output, *error, *cause;
} pl_aws_execution;

int pl_aws_sfn_describe_execution(const pl_aws_opts *opts, const char *execution_arn, pl_aws_execution *out,
                                  pl_err *err);
void pl_aws_execution_free(pl_aws_execution *e);

#endif
