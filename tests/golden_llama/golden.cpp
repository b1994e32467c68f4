// llama.cpp's outputs for a model and a prompt, as a golden JSON in the format of tests/data/golden
// (read by tests/test_golden.cpp). Not built by CMake: it links llama.cpp's libllama, see make_yarn.sh.
//
//   golden MODEL OUT.json N_PREDICT "PROMPT" [--base BASE.gguf KEY=TYPE:VALUE ... NAME=tensor:V,V,...]
//
// With --base, MODEL is first written as BASE with the given metadata set (TYPE: str, f32 or u32) and
// 1-D F32 tensors added, by ggml's own GGUF writer, and the golden records the base's file name, the keys
// and the tensors ("base_model", "metadata_added", "tensors_added") so that a test can rebuild the same
// model from the shared base file.
//
// Settings: CPU, 1 thread, n_ctx 512, llama.cpp's default context parameters otherwise (flash attention
// auto, F16 KV cache), extra buffer types off (no AMX or repacked weights: ggml's generic kernels), BOS
// added as the vocabulary says, special tokens parsed. The golden holds the prompt tokens, the top-10
// logits at every prompt position, all last-position logits, and the greedy continuation (at most
// N_PREDICT tokens, stopping before an end-of-generation token) with its top-2 margins.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "ggml.h"
#include "gguf.h"
#include "llama.h"

namespace {

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "golden: %s\n", msg.c_str());
    std::exit(1);
}

std::string json_string(const std::string& s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += static_cast<char>(c);
        } else if (c < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", c);
            o += b;
        } else {
            o += static_cast<char>(c);
        }
    }
    return o + "\"";
}

// Bytes as UTF-8 text: each byte that does not start a valid sequence becomes U+FFFD.
std::string valid_utf8(const std::string& s) {
    std::string o;
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = n > 0 && i + n <= s.size() && !(c == 0xc0 || c == 0xc1 || c > 0xf4);
        for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
        if (ok && n == 3) {
            const auto c1 = static_cast<unsigned char>(s[i + 1]);
            ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
        }
        if (ok && n == 4) {
            const auto c1 = static_cast<unsigned char>(s[i + 1]);
            ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
        }
        if (ok) {
            o.append(s, i, n);
            i += n;
        } else {
            o += "\xef\xbf\xbd";
            ++i;
        }
    }
    return o;
}

std::string num(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return b;
}

struct Kv {
    std::string key, type, value;
};

std::vector<float> floats(const std::string& list) {
    std::vector<float> v;
    for (size_t i = 0; i < list.size();) {
        const size_t comma = std::min(list.find(',', i), list.size());
        v.push_back(std::strtof(list.substr(i, comma - i).c_str(), nullptr));
        i = comma + 1;
    }
    return v;
}

void write_variant(const std::string& base, const std::string& out, const std::vector<Kv>& kvs) {
    ggml_context* data = nullptr;
    gguf_init_params ip{/*no_alloc=*/false, &data};
    gguf_context* in = gguf_init_from_file(base.c_str(), ip);
    if (!in) die("cannot read " + base);
    gguf_context* g = gguf_init_empty();  // the base's keys, the new ones after them, the tensors in order
    gguf_set_kv(g, in);
    for (const Kv& kv : kvs) {
        if (kv.type == "tensor") continue;
        if (kv.type == "str") gguf_set_val_str(g, kv.key.c_str(), kv.value.c_str());
        else if (kv.type == "f32") gguf_set_val_f32(g, kv.key.c_str(), std::strtof(kv.value.c_str(), nullptr));
        else if (kv.type == "u32") gguf_set_val_u32(g, kv.key.c_str(), static_cast<uint32_t>(std::strtoul(kv.value.c_str(), nullptr, 10)));
        else die("unknown type " + kv.type);
    }
    for (int64_t i = 0; i < gguf_get_n_tensors(in); ++i) gguf_add_tensor(g, ggml_get_tensor(data, gguf_get_tensor_name(in, i)));
    ggml_init_params gp{1 << 20, nullptr, false};
    ggml_context* added = ggml_init(gp);
    for (const Kv& kv : kvs) {
        if (kv.type != "tensor") continue;
        const std::vector<float> v = floats(kv.value);
        ggml_tensor* t = ggml_new_tensor_1d(added, GGML_TYPE_F32, static_cast<int64_t>(v.size()));
        ggml_set_name(t, kv.key.c_str());
        std::memcpy(t->data, v.data(), v.size() * sizeof(float));
        gguf_add_tensor(g, t);
    }
    if (!gguf_write_to_file(g, out.c_str(), false)) die("cannot write " + out);
    gguf_free(g);
    gguf_free(in);
    ggml_free(added);
    ggml_free(data);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) die("usage: golden MODEL OUT.json N_PREDICT PROMPT [--base BASE.gguf KEY=TYPE:VALUE ...]");
    const std::string model_path = argv[1], out_path = argv[2], prompt = argv[4];
    const int n_predict = std::atoi(argv[3]);
    std::string base;
    std::vector<Kv> kvs;
    for (int i = 5; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--base" && i + 1 < argc) {
            base = argv[++i];
            continue;
        }
        const size_t eq = a.find('='), colon = a.find(':', eq);
        if (eq == std::string::npos || colon == std::string::npos) die("bad KEY=TYPE:VALUE " + a);
        kvs.push_back({a.substr(0, eq), a.substr(eq + 1, colon - eq - 1), a.substr(colon + 1)});
    }
    if (!base.empty()) write_variant(base, model_path, kvs);

    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.use_extra_bufts = false;
    mp.n_gpu_layers = 0;
    llama_model* model = llama_model_load_from_file(model_path.c_str(), mp);
    if (!model) die("cannot load " + model_path);
    const llama_vocab* vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 512;
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    llama_context* ctx = llama_init_from_model(model, cp);
    if (!ctx) die("cannot create a context");

    const bool add_bos = llama_vocab_get_add_bos(vocab);
    std::vector<llama_token> toks(prompt.size() + 8);
    const int n = llama_tokenize(vocab, prompt.c_str(), static_cast<int32_t>(prompt.size()), toks.data(),
                                 static_cast<int32_t>(toks.size()), add_bos, true);
    if (n <= 0) die("tokenize failed");
    toks.resize(static_cast<size_t>(n));

    llama_batch batch = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; ++i) {
        batch.token[i] = toks[static_cast<size_t>(i)];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = n;
    if (llama_decode(ctx, batch) != 0) die("prompt decode failed");

    auto top = [&](const float* l, int k) {
        std::vector<int> idx(static_cast<size_t>(n_vocab));
        std::iota(idx.begin(), idx.end(), 0);
        std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) { return l[a] > l[b]; });
        idx.resize(static_cast<size_t>(k));
        return idx;
    };

    std::string js = "{\"model\":" + json_string(model_path.substr(model_path.find_last_of('/') + 1)) +
                     ",\"prompt\":" + json_string(prompt) + ",\"add_bos\":" + (add_bos ? "true" : "false") +
                     ",\"n_vocab\":" + std::to_string(n_vocab) + ",\n";
    if (!base.empty()) {
        js += "\"base_model\":" + json_string(base.substr(base.find_last_of('/') + 1)) + ",\"metadata_added\":[";
        std::string tensors;
        for (const Kv& kv : kvs) {
            if (kv.type == "tensor") {
                tensors += (tensors.empty() ? "[" : ",[") + json_string(kv.key) + ",[";
                const std::vector<float> v = floats(kv.value);
                for (size_t k = 0; k < v.size(); ++k) tensors += (k ? "," : "") + num(v[k]);
                tensors += "]]";
                continue;
            }
            if (js.back() == ']') js += ",";
            js += "[" + json_string(kv.key) + "," + json_string(kv.type) + "," + (kv.type == "str" ? json_string(kv.value) : kv.value) + "]";
        }
        js += "],\n";
        if (!tensors.empty()) js += "\"tensors_added\":[" + tensors + "],\n";
    }
    js += "\"prompt_tokens\":[";
    for (int i = 0; i < n; ++i) js += (i ? "," : "") + std::to_string(toks[static_cast<size_t>(i)]);
    js += "],\n\"prompt_logits_top\":[\n";
    for (int i = 0; i < n; ++i) {
        const float* l = llama_get_logits_ith(ctx, i);
        js += "[";
        const auto t = top(l, 10);
        for (size_t k = 0; k < t.size(); ++k) js += (k ? ",[" : "[") + std::to_string(t[k]) + "," + num(l[t[k]]) + "]";
        js += i + 1 < n ? "],\n" : "]\n";
    }
    js += "],\n\"last_logits\":[";
    {
        const float* l = llama_get_logits_ith(ctx, n - 1);
        for (int v = 0; v < n_vocab; ++v) js += (v ? "," : "") + num(l[v]);
    }
    js += "],\n";

    std::vector<llama_token> greedy;
    std::vector<float> margins;
    std::string text;
    const float* l = llama_get_logits_ith(ctx, n - 1);
    int pos = n;
    for (int step = 0; step < n_predict; ++step) {
        const auto t = top(l, 2);
        if (llama_vocab_is_eog(vocab, t[0])) break;
        greedy.push_back(t[0]);
        margins.push_back(l[t[0]] - l[t[1]]);
        char piece[256];
        const int np = llama_token_to_piece(vocab, t[0], piece, sizeof piece, 0, true);
        if (np < 0) die("piece too long");
        text.append(piece, static_cast<size_t>(np));
        if (step + 1 == n_predict) break;
        llama_batch one = llama_batch_init(1, 0, 1);
        one.token[0] = t[0];
        one.pos[0] = pos++;
        one.n_seq_id[0] = 1;
        one.seq_id[0][0] = 0;
        one.logits[0] = 1;
        one.n_tokens = 1;
        if (llama_decode(ctx, one) != 0) die("decode failed");
        llama_batch_free(one);
        l = llama_get_logits_ith(ctx, 0);
    }
    js += "\"greedy_tokens\":[";
    for (size_t i = 0; i < greedy.size(); ++i) js += (i ? "," : "") + std::to_string(greedy[i]);
    js += "],\n\"greedy_margins\":[";
    for (size_t i = 0; i < margins.size(); ++i) {
        char b[32];
        std::snprintf(b, sizeof b, "%.4g", margins[i]);
        js += (i ? "," : "") + std::string(b);
    }
    js += "],\n\"greedy_text_hex\":\"";
    for (unsigned char c : text) {
        char b[4];
        std::snprintf(b, sizeof b, "%02x", c);
        js += b;
    }
    js += "\",\n\"greedy_text\":" + json_string(valid_utf8(text)) + "}\n";

    FILE* fp = std::fopen(out_path.c_str(), "w");
    if (!fp || std::fwrite(js.data(), 1, js.size(), fp) != js.size() || std::fclose(fp) != 0) die("cannot write " + out_path);
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
