// grammar.cpp tells whether llama.cpp parsed a grammar. A grammar that fails
// to parse still yields a sampler, one that silently constrains nothing; the
// parse result is only visible in the sampler's private state, mirrored here
// from llama-sampling.cpp of the pinned llama.cpp (ollama v0.6.5).
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
