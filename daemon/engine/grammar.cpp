// grammar.cpp tells whether llama.cpp parsed a grammar, and whether a
// grammar allows any token at all at the present step. A grammar that fails
// to parse still yields a sampler, one that silently constrains nothing; the
// parse result is only visible in the sampler's private state, mirrored here
// from llama-sampling.cpp of the pinned llama.cpp (ollama v0.6.5).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

struct llama_sampler_i;
struct jetai_sampler_mirror {
    const llama_sampler_i * iface;
    void * ctx;
};
struct jetai_grammar_mirror {
    const void * vocab;
    std::string grammar_str;
    std::string grammar_root;
    void * grammar;
};

extern "C" bool jetai_grammar_parsed(const void * sampler) {
    const auto * s = static_cast<const jetai_sampler_mirror *>(sampler);
    if (s == nullptr || s->ctx == nullptr) {
        return false;
    }
    return static_cast<const jetai_grammar_mirror *>(s->ctx)->grammar != nullptr;
}

// The token arrays of include/llama.h, which this file does not include.
struct jetai_token_data {
    int32_t id;
    float logit;
    float p;
};
struct jetai_token_data_array {
    jetai_token_data * data;
    size_t size;
    int64_t selected;
    bool sorted;
};
struct llama_sampler;
extern "C" void llama_sampler_apply(llama_sampler * smpl, jetai_token_data_array * cur_p);

// jetai_grammar_allows_one reports whether the grammar sampler g, in its
// present state, allows some token whose logit is not -inf. llama.cpp's
// sampler aborts the whole process when it does not (a grammar that no
// token of the vocabulary can continue, or one that can only end while
// end-of-generation is banned). Tokens are tried one at a time from the
// lowest id, so the usual case, where a byte or single-character token
// fits, stops after a few; only a grammar that is stuck tries them all.
extern "C" bool jetai_grammar_allows_one(llama_sampler * g, const float * logits, int32_t n_vocab) {
    for (int32_t id = 0; id < n_vocab; id++) {
        if (logits[id] == -INFINITY) {
            continue;
        }
        jetai_token_data td = {id, logits[id], 0.0f};
        jetai_token_data_array arr = {&td, 1, -1, false};
        llama_sampler_apply(g, &arr);
        if (td.logit != -INFINITY) {
            return true;
        }
    }
    return false;
}

// jetai_grammar_allows reports whether g allows token id now.
extern "C" bool jetai_grammar_allows(llama_sampler * g, int32_t id) {
    jetai_token_data td = {id, 0.0f, 0.0f};
    jetai_token_data_array arr = {&td, 1, -1, false};
    llama_sampler_apply(g, &arr);
    return td.logit != -INFINITY;
}
