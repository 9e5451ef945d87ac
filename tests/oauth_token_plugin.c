/* A librdkafka plugin that gives a client (kcat, whose librdkafka has no OIDC client) a signed
 * OAUTHBEARER token: loaded with plugin.library.paths, it installs a token refresh callback that
 * reads the file named by sasl.oauthbearer.config, one line "<expiry ms> <principal> <jwt>", and
 * has it served on librdkafka's background thread (kcat does not poll before its first request).
 * Declared here instead of including rdkafka.h, so no -dev package is needed; the symbols come
 * from the librdkafka the client has already loaded. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_conf_s rd_kafka_conf_t;
typedef int rd_kafka_resp_err_t;

void rd_kafka_conf_set_oauthbearer_token_refresh_cb(
    rd_kafka_conf_t *conf, void (*cb)(rd_kafka_t *rk, const char *config, void *opaque));
rd_kafka_resp_err_t rd_kafka_oauthbearer_set_token(rd_kafka_t *rk, const char *token,
                                                   int64_t lifetime_ms, const char *principal,
                                                   const char **extensions, size_t extension_size,
                                                   char *errstr, size_t errstr_size);
rd_kafka_resp_err_t rd_kafka_oauthbearer_set_token_failure(rd_kafka_t *rk, const char *errstr);
void rd_kafka_conf_enable_sasl_queue(rd_kafka_conf_t *conf, int enable);
void *rd_kafka_sasl_background_callbacks_enable(rd_kafka_t *rk);
const char *rd_kafka_error_string(const void *error);
typedef rd_kafka_resp_err_t(on_thread_start_t)(rd_kafka_t *rk, int thread_type,
                                               const char *thread_name, void *opaque);
rd_kafka_resp_err_t rd_kafka_interceptor_add_on_thread_start(rd_kafka_t *rk, const char *name,
                                                             on_thread_start_t *on_thread_start,
                                                             void *opaque);
typedef rd_kafka_resp_err_t(on_new_t)(rd_kafka_t *rk, const rd_kafka_conf_t *conf, void *opaque,
                                      char *errstr, size_t errstr_size);
rd_kafka_resp_err_t rd_kafka_conf_interceptor_add_on_new(rd_kafka_conf_t *conf, const char *name,
                                                         on_new_t *on_new, void *opaque);

static void refresh_token(rd_kafka_t *rk, const char *path, void *opaque) {
    static char token[16384], principal[256];
    long long expiry_ms = 0;
    char errstr[512];
    (void)opaque;
    FILE *f = path ? fopen(path, "r") : NULL;
    int read = f ? fscanf(f, "%lld %255s %16383s", &expiry_ms, principal, token) : 0;
    if (f)
        fclose(f);
    if (read != 3) {
        rd_kafka_oauthbearer_set_token_failure(rk, "token file unreadable");
        return;
    }
    if (rd_kafka_oauthbearer_set_token(rk, token, expiry_ms, principal, NULL, 0, errstr,
                                       sizeof(errstr)))
        rd_kafka_oauthbearer_set_token_failure(rk, errstr);
}

/* Once librdkafka's main thread starts, its SASL state exists: the refresh callback moves to the
 * background thread from there. */
static rd_kafka_resp_err_t serve_in_background(rd_kafka_t *rk, int thread_type,
                                               const char *thread_name, void *opaque) {
    (void)thread_name;
    (void)opaque;
    if (thread_type != 0 /* RD_KAFKA_THREAD_MAIN */)
        return 0;
    void *error = rd_kafka_sasl_background_callbacks_enable(rk);
    if (error) {
        fprintf(stderr, "oauth_token_plugin: %s\n", rd_kafka_error_string(error));
        return -1;
    }
    return 0;
}

static rd_kafka_resp_err_t on_new(rd_kafka_t *rk, const rd_kafka_conf_t *conf, void *opaque,
                                  char *errstr, size_t errstr_size) {
    (void)conf;
    (void)opaque;
    (void)errstr;
    (void)errstr_size;
    return rd_kafka_interceptor_add_on_thread_start(rk, "strom-oauth-token", serve_in_background,
                                                    NULL);
}

rd_kafka_resp_err_t conf_init(rd_kafka_conf_t *conf, void **plug_opaquep, char *errstr,
                              size_t errstr_size) {
    (void)plug_opaquep;
    (void)errstr;
    (void)errstr_size;
    rd_kafka_conf_set_oauthbearer_token_refresh_cb(conf, refresh_token);
    rd_kafka_conf_enable_sasl_queue(conf, 1);
    return rd_kafka_conf_interceptor_add_on_new(conf, "strom-oauth-token", on_new, NULL);
}
