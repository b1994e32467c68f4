/* ember.h compiled as strict C99 (-std=c99 -Wall -Wextra -Werror -pedantic) and used from C: the header
 * must stay pure C, and a C program must be able to link libember and run a model through it.
 * Usage: capi_c99 [MODEL.gguf]  (without a model only the model-free calls run). */
#include "ember.h"

#include <stdio.h>
#include <string.h>

static int failures = 0;

#define EXPECT(cond)                                                                   \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: EXPECT(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond, \
                    ember_last_error());                                               \
            ++failures;                                                                \
        }                                                                              \
    } while (0)

static bool count_text(const char* text, size_t len, int32_t token, void* user_data) {
    size_t* total = (size_t*)user_data;
    (void)text;
    (void)token;
    *total += len;
    return true;
}

int main(int argc, char** argv) {
    ember_model_params mp;
    ember_session_params sp;
    ember_sampler_params smp;
    ember_model* model = NULL;
    ember_session* session = NULL;
    ember_sampler* sampler = NULL;
    ember_adapter* adapter = NULL;
    const ember_tokenizer* tok;
    int32_t toks[64];
    int32_t n = 0, n_gen = 0;
    size_t text_bytes = 0, needed = 0;
    char text[256];

    EXPECT(ember_abi_version() == EMBER_ABI_VERSION);
    EXPECT(strlen(ember_version()) > 0);
    EXPECT(strcmp(ember_status_string(EMBER_OK), "ok") == 0);
    EXPECT(strcmp(ember_last_error(), "") == 0);

    EXPECT(ember_model_params_init(&mp) == EMBER_OK && mp.struct_size == sizeof mp);
    EXPECT(ember_session_params_init(&sp) == EMBER_OK && sp.struct_size == sizeof sp);
    EXPECT(ember_sampler_params_init(&smp) == EMBER_OK && smp.seed == EMBER_SEED_RANDOM);

    /* Bad input is a status, not a crash. */
    EXPECT(ember_model_load(NULL, NULL, &model) == EMBER_ERR_INVALID_ARGUMENT && model == NULL);
    EXPECT(strlen(ember_last_error()) > 0);
    EXPECT(ember_model_load("/nonexistent/model.gguf", &mp, &model) == EMBER_ERR_IO && model == NULL);
    EXPECT(ember_model_n_vocab(NULL) == -1);
    ember_model_free(NULL);
    ember_session_free(NULL);
    ember_sampler_free(NULL);
    ember_tokenizer_free(NULL);

    if (argc < 2) return failures ? 1 : 0;

    EXPECT(ember_model_load(argv[1], &mp, &model) == EMBER_OK);
    if (!model) return 1;
    tok = ember_model_tokenizer(model);
    EXPECT(tok != NULL);
    EXPECT(ember_tokenize(tok, "Once upon a time", 16, toks, 64, EMBER_TOKENIZE_ADD_SPECIAL, &n) == EMBER_OK);
    EXPECT(n == 5 && toks[0] == ember_token_bos(tok));
    EXPECT(ember_detokenize(tok, toks, n, 0, text, sizeof text, &needed) == EMBER_OK);
    EXPECT(strcmp(text, "Once upon a time") == 0 && needed == 17);

    sp.n_ctx = 64;
    sp.n_threads = 1;
    EXPECT(ember_session_create(model, &sp, &session) == EMBER_OK);
    EXPECT(ember_sampler_create_greedy(&sampler) == EMBER_OK);
    if (session && sampler) {
        EXPECT(ember_session_prefill(session, toks, n) == EMBER_OK);
        EXPECT(ember_session_generate(session, sampler, 8, count_text, &text_bytes, &n_gen) == EMBER_OK);
        EXPECT(n_gen == 8 && text_bytes > 0);
        EXPECT(ember_session_position(session) == n + 8);
        /* LoRA adapters: none to set, a missing file, NULL handles. */
        EXPECT(ember_session_set_adapters(session, NULL, NULL, 0) == EMBER_OK);
        EXPECT(ember_adapter_load(model, "/nonexistent/adapter.gguf", &adapter) == EMBER_ERR_IO && adapter == NULL);
        EXPECT(ember_adapter_rank(NULL) == -1 && ember_adapter_n_targets(NULL) == -1);
        ember_adapter_free(NULL);
    }
    ember_sampler_free(sampler);
    ember_session_free(session);
    ember_model_free(model);
    if (failures == 0) printf("capi_c99: ok\n");
    return failures ? 1 : 0;
}
