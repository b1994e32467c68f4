/* ember-generate-c: ember-generate written in C99 over ember.h alone — the C ABI's tour.
 *   ember-generate-c -m MODEL.gguf -p "Once upon a time" -n 64
 *   ember-generate-c -m MODEL.gguf -p "Once upon a time" --temp 0 --json
 * For the same arguments, its --json token ids equal ember-generate's (the C++ example). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

static void usage(const char* argv0) {
    fprintf(stderr,
            "usage: %s [-m MODEL] (-p PROMPT | -f FILE) [options]\n"
            "  -m FILE            GGUF model (default: $EMBER_MODELS or ~/.cache/ember/models,\n"
            "                     SmolLM2-135M-Instruct.Q4_1.gguf)\n"
            "  -p TEXT | -f FILE  prompt; special tokens such as <|im_start|> are parsed\n"
            "  -n N               tokens to generate (default 128, -1: until the context is full)\n"
            "  -c N               context size (default: the model's, at most 4096)\n"
            "  -t N               threads (default: all cores)\n"
            "  --temp T --top-k K --top-p P --min-p P --repeat-penalty R --seed S\n"
            "  --no-bos           do not add BOS even if the vocabulary asks for it\n"
            "  --chat             wrap the prompt in ChatML\n"
            "  --system TEXT      system message for --chat\n"
            "  --backend NAME     cpu, cuda or auto (default)\n"
            "  --json             print {\"prompt_token_ids\":[...],\"generated_token_ids\":[...]} at the end\n"
            "                     instead of streaming\n",
            argv0);
}

/* The value after flag argv[*i] (advancing *i), or NULL when there is none. */
static const char* value(int* i, int argc, char** argv) { return *i + 1 < argc ? argv[++*i] : NULL; }

/* Number parsing that refuses trailing junk. */
static int parse_long(const char* s, long* out) {
    char* end = NULL;
    errno = 0;
    *out = strtol(s, &end, 10);
    return errno == 0 && end != s && *end == '\0';
}
static int parse_float(const char* s, float* out) {
    char* end = NULL;
    errno = 0;
    *out = strtof(s, &end);
    return errno == 0 && end != s && *end == '\0';
}
static int parse_u64(const char* s, uint64_t* out) {
    char* end = NULL;
    errno = 0;
    *out = (uint64_t)strtoull(s, &end, 10);
    return errno == 0 && end != s && *end == '\0' && s[0] != '-';
}

/* The whole file as a NUL-terminated string (malloc'd), or NULL. */
static char* read_file(const char* path) {
    FILE* f = fopen(path, "rb");
    char* buf = NULL;
    size_t len = 0, cap = 0, got;
    if (!f) return NULL;
    do {
        if (cap - len < 4096) {
            char* grown = (char*)realloc(buf, cap * 2 + 4096);
            if (!grown) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
            cap = cap * 2 + 4096;
        }
        got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
    } while (got > 0);
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* Concatenation into a fresh malloc'd string; the last argument must be NULL. */
static char* concat(const char* first, ...) {
    va_list ap;
    const char* s;
    size_t len = 0;
    char* out;
    va_start(ap, first);
    for (s = first; s; s = va_arg(ap, const char*)) len += strlen(s);
    va_end(ap);
    out = (char*)malloc(len + 1);
    if (!out) return NULL;
    out[0] = '\0';
    va_start(ap, first);
    for (s = first; s; s = va_arg(ap, const char*)) strcat(out, s);
    va_end(ap);
    return out;
}

static void print_ids(const int32_t* ids, int32_t n) {
    int32_t i;
    putchar('[');
    for (i = 0; i < n; ++i) printf(i ? ",%d" : "%d", (int)ids[i]);
    putchar(']');
}

#define OUT_OF_MEMORY()                         \
    do {                                        \
        fprintf(stderr, "error: out of memory\n"); \
        goto done;                              \
    } while (0)

int main(int argc, char** argv) {
    const char* model_path = NULL;
    const char* prompt_arg = NULL;
    const char* prompt_file = NULL;
    const char* system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
    const char* backend = "auto";
    char* default_model = NULL;
    char* prompt = NULL; /* owned */
    long n_predict = 128, n_ctx = 0, n_threads = 0;
    int no_bos = 0, json = 0, chat = 0, i, rc = 1;
    ember_model_params mp;
    ember_session_params sesp;
    ember_sampler_params sp;
    ember_model* model = NULL;
    ember_session* session = NULL;
    ember_sampler* sampler = NULL;
    const ember_tokenizer* tok;
    int32_t* prompt_ids = NULL;
    int32_t n_prompt = 0;
    int32_t* generated = NULL;
    int32_t n_generated = 0, generated_cap = 0;
    char* piece = NULL;
    size_t piece_cap = 0;
    ember_status st = EMBER_OK;
    uint32_t flags;

    piece_cap = 64; /* grown on demand; never NULL, so ember_token_piece never takes it for a size query */
    if (!(piece = (char*)malloc(piece_cap))) return 1;
    ember_sampler_params_init(&sp); /* temp 0.8, top-k 40, top-p 0.95, min-p 0.05, repeat 1.0 over 64, random seed */

    for (i = 1; i < argc; ++i) {
        const char* a = argv[i];
        const char* v = NULL;
        long l = 0;
        int ok = 1;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) ok = (model_path = value(&i, argc, argv)) != NULL;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) ok = (prompt_arg = value(&i, argc, argv)) != NULL;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) ok = (prompt_file = value(&i, argc, argv)) != NULL;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict"))
            ok = (v = value(&i, argc, argv)) && parse_long(v, &n_predict);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size"))
            ok = (v = value(&i, argc, argv)) && parse_long(v, &n_ctx) && n_ctx >= 0;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads"))
            ok = (v = value(&i, argc, argv)) && parse_long(v, &n_threads) && n_threads >= 0;
        else if (!strcmp(a, "--temp")) ok = (v = value(&i, argc, argv)) && parse_float(v, &sp.temperature);
        else if (!strcmp(a, "--top-k")) {
            ok = (v = value(&i, argc, argv)) && parse_long(v, &l);
            sp.top_k = (int32_t)l;
        } else if (!strcmp(a, "--top-p")) ok = (v = value(&i, argc, argv)) && parse_float(v, &sp.top_p);
        else if (!strcmp(a, "--min-p")) ok = (v = value(&i, argc, argv)) && parse_float(v, &sp.min_p);
        else if (!strcmp(a, "--repeat-penalty")) ok = (v = value(&i, argc, argv)) && parse_float(v, &sp.repeat_penalty);
        else if (!strcmp(a, "--seed")) ok = (v = value(&i, argc, argv)) && parse_u64(v, &sp.seed);
        else if (!strcmp(a, "--system")) ok = (system = value(&i, argc, argv)) != NULL;
        else if (!strcmp(a, "--backend")) ok = (backend = value(&i, argc, argv)) != NULL;
        else if (!strcmp(a, "--no-bos")) no_bos = 1;
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--chat")) chat = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(argv[0]);
            return 0;
        } else {
            fprintf(stderr, "error: unknown argument %s\n", a);
            usage(argv[0]);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "error: %s needs a valid value\n", a);
            return 2;
        }
    }
    if (!model_path) {
        const char* dir = getenv("EMBER_MODELS");
        const char* home = getenv("HOME");
        default_model = dir ? concat(dir, "/SmolLM2-135M-Instruct.Q4_1.gguf", (const char*)NULL)
                            : concat(home ? home : ".", "/.cache/ember/models/SmolLM2-135M-Instruct.Q4_1.gguf",
                                     (const char*)NULL);
        model_path = default_model;
    }
    if (prompt_file) {
        prompt = read_file(prompt_file);
        if (!prompt) {
            fprintf(stderr, "error: cannot read the prompt file %s\n", prompt_file);
            goto done;
        }
    } else if (prompt_arg && *prompt_arg) {
        if (!(prompt = concat(prompt_arg, (const char*)NULL))) OUT_OF_MEMORY();
    }
    if (!model_path) OUT_OF_MEMORY();
    if (!prompt || !*prompt) {
        usage(argv[0]);
        rc = 2;
        goto done;
    }
    if (chat) { /* ChatML, as ember-generate --chat does */
        char* wrapped = concat("<|im_start|>system\n", system, "<|im_end|>\n<|im_start|>user\n", prompt,
                               "<|im_end|>\n<|im_start|>assistant\n", (const char*)NULL);
        if (*system == '\0') {
            free(wrapped);
            wrapped = concat("<|im_start|>user\n", prompt, "<|im_end|>\n<|im_start|>assistant\n", (const char*)NULL);
        }
        free(prompt);
        prompt = wrapped;
        if (!prompt) OUT_OF_MEMORY();
    }

    /* Load. */
    ember_model_params_init(&mp);
    mp.backend = backend;
    mp.n_threads = (int32_t)n_threads;
    if ((st = ember_model_load(model_path, &mp, &model)) != EMBER_OK) goto done;
    tok = ember_model_tokenizer(model); /* borrowed: lives as long as the model */

    /* Tokenize: ask for the size, then fill. Special tokens in the text are always parsed. */
    flags = EMBER_TOKENIZE_PARSE_SPECIAL | (no_bos ? 0u : EMBER_TOKENIZE_ADD_SPECIAL);
    if ((st = ember_tokenize(tok, prompt, strlen(prompt), NULL, 0, flags, &n_prompt)) != EMBER_OK) goto done;
    prompt_ids = (int32_t*)malloc(sizeof(int32_t) * (size_t)(n_prompt > 0 ? n_prompt : 1));
    if (!prompt_ids) OUT_OF_MEMORY();
    st = ember_tokenize(tok, prompt, strlen(prompt), prompt_ids, n_prompt, flags, &n_prompt);
    if (st != EMBER_OK) goto done;

    /* A session and a sampler. */
    ember_session_params_init(&sesp);
    sesp.n_ctx = (int32_t)n_ctx;
    if ((st = ember_session_create(model, &sesp, &session)) != EMBER_OK) goto done;
    if ((st = ember_sampler_create(&sp, &sampler)) != EMBER_OK) goto done;

    /* Prefill the prompt, then: sample → stop at end of generation → evaluate, until n tokens or a full context.
     * (ember_session_generate does the same in one call; this loop shows the pieces.) */
    if ((st = ember_session_prefill(session, prompt_ids, n_prompt)) != EMBER_OK) goto done;
    while (n_predict < 0 || n_generated < n_predict) {
        const float* logits;
        int32_t n_vocab, t;
        size_t needed;
        if (ember_session_position(session) >= ember_session_n_ctx(session)) break;
        if ((st = ember_session_logits(session, &logits, &n_vocab)) != EMBER_OK) goto done;
        if ((st = ember_sampler_sample(sampler, logits, n_vocab, &t)) != EMBER_OK) goto done;
        if (n_generated == generated_cap) {
            int32_t* grown = (int32_t*)realloc(generated, sizeof(int32_t) * (size_t)(generated_cap * 2 + 64));
            if (!grown) OUT_OF_MEMORY();
            generated = grown;
            generated_cap = generated_cap * 2 + 64;
        }
        generated[n_generated++] = t;
        if (ember_token_is_eog(tok, t)) break;
        if (!json) { /* the token's bytes; a character split across tokens completes with the next ones */
            st = ember_token_piece(tok, t, 0, piece, piece_cap, &needed);
            if (st != EMBER_OK && needed > piece_cap) { /* too small: grow to what it said, ask again */
                char* grown = (char*)realloc(piece, needed);
                if (!grown) OUT_OF_MEMORY();
                piece = grown;
                piece_cap = needed;
                st = ember_token_piece(tok, t, 0, piece, piece_cap, &needed);
            }
            if (st != EMBER_OK) goto done;
            fwrite(piece, 1, needed - 1, stdout);
            fflush(stdout);
        }
        if ((st = ember_session_decode(session, t)) != EMBER_OK) goto done;
    }

    if (json) {
        printf("{\"prompt_token_ids\":");
        print_ids(prompt_ids, n_prompt);
        printf(",\"generated_token_ids\":");
        print_ids(generated, n_generated);
        printf("}\n");
    } else {
        fprintf(stderr, "\n\nprompt: %d tokens | generated: %d tokens\n", (int)n_prompt, (int)n_generated);
    }
    rc = 0;

done:
    if (st != EMBER_OK) {
        fprintf(stderr, "error (%s): %s\n", ember_status_string(st), ember_last_error());
        rc = 1;
    }
    free(piece);
    free(generated);
    free(prompt_ids);
    free(prompt);
    free(default_model);
    ember_sampler_free(sampler);
    ember_session_free(session);
    ember_model_free(model); /* NULL is fine for all three */
    return rc;
}
