/* A C program over ember.h alone: loads the model named on the command line and greedily generates 8
 * tokens after "Once upon a time". Built out of tree against an installed ember (find_package, pkg-config,
 * Conan: tests/consumers/run.sh). Prints the text, then "tokens: N". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ember.h>

#define N_PREDICT 8

int main(int argc, char** argv) {
    const char* prompt = "Once upon a time";
    ember_model_params mp;
    ember_session_params sesp;
    ember_model* model = NULL;
    ember_session* session = NULL;
    const ember_tokenizer* tok;
    int32_t ids[256], n_prompt = 0, n_generated = 0;
    char piece[256];
    ember_status st = EMBER_OK;
    int rc = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    if (ember_abi_version() != EMBER_ABI_VERSION) {
        fprintf(stderr, "error: libember has ABI %u, ember.h says %u\n", (unsigned)ember_abi_version(),
                (unsigned)EMBER_ABI_VERSION);
        return 1;
    }
    ember_model_params_init(&mp);
    if ((st = ember_model_load(argv[1], &mp, &model)) != EMBER_OK) goto done;
    tok = ember_model_tokenizer(model);
    st = ember_tokenize(tok, prompt, strlen(prompt), ids, 256, EMBER_TOKENIZE_ADD_SPECIAL | EMBER_TOKENIZE_PARSE_SPECIAL,
                        &n_prompt);
    if (st != EMBER_OK) goto done;
    ember_session_params_init(&sesp);
    if ((st = ember_session_create(model, &sesp, &session)) != EMBER_OK) goto done;
    if ((st = ember_session_prefill(session, ids, n_prompt)) != EMBER_OK) goto done;

    fputs(prompt, stdout);
    while (n_generated < N_PREDICT && ember_session_position(session) < ember_session_n_ctx(session)) {
        const float* logits;
        int32_t n_vocab, t = 0, i;
        size_t needed = 0;
        if ((st = ember_session_logits(session, &logits, &n_vocab)) != EMBER_OK) goto done;
        for (i = 1; i < n_vocab; ++i)
            if (logits[i] > logits[t]) t = i; /* greedy */
        if (ember_token_is_eog(tok, t)) break;
        ++n_generated;
        if ((st = ember_token_piece(tok, t, 0, piece, sizeof piece, &needed)) != EMBER_OK) goto done;
        fwrite(piece, 1, needed - 1, stdout);
        if ((st = ember_session_decode(session, t)) != EMBER_OK) goto done;
    }
    printf("\ntokens: %d\n", (int)n_generated);
    rc = 0;

done:
    if (st != EMBER_OK) fprintf(stderr, "error (%s): %s\n", ember_status_string(st), ember_last_error());
    ember_session_free(session);
    ember_model_free(model);
    return rc;
}
