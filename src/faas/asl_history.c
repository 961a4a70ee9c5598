/* asl_history.c — an execution's event list (GetExecutionHistory-like),
 * appended to from the interpreter's threads under one mutex. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "faas/asl_internal.h"

struct asl_history {
    pthread_mutex_t mu;
    cJSON *events; /* array; NULL after an allocation failure */
    int next_id;
};

int asl_history_create(asl_history **out)
{
    asl_history *h = calloc(1, sizeof *h);
    if (!h || !(h->events = cJSON_CreateArray())) {
        free(h);
        return PL_ERR_NOMEM;
    }
    pthread_mutex_init(&h->mu, NULL);
    *out = h;
    return PL_OK;
}

void asl_history_destroy(asl_history *h)
{
    if (!h)
        return;
    pthread_mutex_destroy(&h->mu);
    cJSON_Delete(h->events);
    free(h);
}

void asl_now_iso(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03dZ", (int)(ts.tv_nsec / 1000000L) % 1000);
}

void asl_history_add(asl_history *h, const char *type, cJSON *details)
{
    char now[32];
    asl_now_iso(now, sizeof now);
    cJSON *ev = cJSON_CreateObject();
    pthread_mutex_lock(&h->mu);
    int id = ++h->next_id;
    if (ev && cJSON_AddNumberToObject(ev, "id", id) && cJSON_AddStringToObject(ev, "timestamp", now) &&
        cJSON_AddStringToObject(ev, "type", type)) {
        if (details)
            cJSON_AddItemToObject(ev, "details", details);
        details = NULL;
        cJSON_AddItemToArray(h->events, ev);
        ev = NULL;
    }
    pthread_mutex_unlock(&h->mu);
    cJSON_Delete(ev);
    cJSON_Delete(details);
}

char *asl_history_json(asl_history *h)
{
    pthread_mutex_lock(&h->mu);
    cJSON *root = cJSON_CreateObject();
    char *text = NULL;
    if (root && cJSON_AddItemReferenceToObject(root, "events", h->events))
        text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    pthread_mutex_unlock(&h->mu);
    return text;
}

int asl_history_count(asl_history *h, const char *type)
{
    int n = 0;
    pthread_mutex_lock(&h->mu);
    const cJSON *ev;
    cJSON_ArrayForEach(ev, h->events) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev, "type");
        n += cJSON_IsString(t) && !strcmp(t->valuestring, type);
    }
    pthread_mutex_unlock(&h->mu);
    return n;
}
