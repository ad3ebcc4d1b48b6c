// engine.h declares the llama.cpp functions and structs that jetai calls
// directly: the ones github.com/ollama/ollama/llama does not wrap, or wraps
// in a way jetai cannot use. The symbols are linked in by that package.
#ifndef JETAI_ENGINE_H
#define JETAI_ENGINE_H
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

// Opaque llama.cpp types: only pointers cross this boundary.
struct llama_model;
struct llama_context;
struct llama_vocab;
struct llama_sampler;
struct common_sampler;

// Mirror of struct llama_model_params in the pinned llama.cpp (ollama
// v0.6.5, include/llama.h). The ollama wrapper has no way to abort a load, so
// jetai calls llama_model_load_from_file itself. TestModelParamsLayout checks
// the mirror against llama_model_default_params.
typedef bool (*jetai_progress_cb)(float progress, void * user_data);
struct jetai_model_params {
	void ** devices;
	int32_t n_gpu_layers;
	int32_t split_mode;
	int32_t main_gpu;
	const float * tensor_split;
	jetai_progress_cb progress_callback;
	void * progress_callback_user_data;
	const void * kv_overrides;
	bool vocab_only;
	bool use_mmap;
	bool use_mlock;
	bool check_tensors;
};
struct jetai_model_params llama_model_default_params(void);
struct llama_model * llama_model_load_from_file(const char * path, struct jetai_model_params params);

typedef struct { const char * role; const char * content; } jetai_chat_message;
const char * llama_model_chat_template(const struct llama_model * model, const char * name);
int32_t llama_chat_apply_template(const char * tmpl, const jetai_chat_message * chat, size_t n_msg, bool add_ass, char * buf, int32_t length);

int32_t  llama_model_meta_val_str(const struct llama_model * model, const char * key, char * buf, size_t buf_size);
int32_t  llama_model_desc(const struct llama_model * model, char * buf, size_t buf_size);
uint64_t llama_model_size(const struct llama_model * model);
uint64_t llama_model_n_params(const struct llama_model * model);
int32_t  llama_model_n_ctx_train(const struct llama_model * model);
int32_t  llama_model_n_embd(const struct llama_model * model);
int32_t  llama_model_n_layer(const struct llama_model * model);
int32_t  llama_model_n_head(const struct llama_model * model);
int32_t  llama_model_n_head_kv(const struct llama_model * model);
bool     llama_model_has_encoder(const struct llama_model * model);
const struct llama_vocab * llama_model_get_vocab(const struct llama_model * model);
int32_t  llama_vocab_n_tokens(const struct llama_vocab * vocab);
int32_t  llama_vocab_bos(const struct llama_vocab * vocab);
int32_t  llama_vocab_eos(const struct llama_vocab * vocab);
int32_t  llama_vocab_sep(const struct llama_vocab * vocab);
int      llama_vocab_type(const struct llama_vocab * vocab);
bool     llama_vocab_get_add_bos(const struct llama_vocab * vocab);
bool     llama_vocab_get_add_eos(const struct llama_vocab * vocab);
const char * llama_vocab_get_text(const struct llama_vocab * vocab, int32_t token);
uint32_t llama_vocab_get_attr(const struct llama_vocab * vocab, int32_t token);
int32_t  llama_tokenize(const struct llama_vocab * vocab, const char * text, int32_t text_len, int32_t * tokens, int32_t n_tokens_max, bool add_special, bool parse_special);

uint32_t llama_n_ctx(const struct llama_context * ctx);
int      llama_pooling_type(const struct llama_context * ctx);
void     llama_set_n_threads(struct llama_context * ctx, int32_t n_threads, int32_t n_threads_batch);
void     llama_set_embeddings(struct llama_context * ctx, bool embeddings);
float *  llama_get_logits_ith(struct llama_context * ctx, int32_t i);
size_t   llama_state_seq_save_file(struct llama_context * ctx, const char * filepath, int32_t seq_id, const int32_t * tokens, size_t n_token_count);
size_t   llama_state_seq_load_file(struct llama_context * ctx, const char * filepath, int32_t dest_seq_id, int32_t * tokens_out, size_t n_token_capacity, size_t * n_token_count_out);
int32_t  llama_kv_cache_seq_pos_max(struct llama_context * ctx, int32_t seq_id);
size_t   llama_state_seq_get_size(struct llama_context * ctx, int32_t seq_id);
size_t   llama_state_seq_get_data(struct llama_context * ctx, uint8_t * dst, size_t size, int32_t seq_id);
size_t   llama_state_seq_set_data(struct llama_context * ctx, const uint8_t * src, size_t size, int32_t dest_seq_id);

struct llama_sampler * llama_sampler_init_grammar(const struct llama_vocab * vocab, const char * grammar_str, const char * grammar_root);
void llama_sampler_free(struct llama_sampler * smpl);
bool jetai_grammar_parsed(const void * sampler); // grammar.cpp
bool jetai_grammar_allows_one(struct llama_sampler * g, const float * logits, int32_t n_vocab); // grammar.cpp
bool jetai_grammar_allows(struct llama_sampler * g, int32_t id); // grammar.cpp
void llama_sampler_accept(struct llama_sampler * smpl, int32_t token);

// Mirror of struct common_sampler_cparams from ollama's llama/sampling_ext.h.
// jetai calls these itself because the wrapper passes the frequency penalty
// as the presence penalty.
struct jetai_sampler_cparams {
	int32_t top_k;
	float top_p;
	float min_p;
	float typical_p;
	float temp;
	int32_t penalty_last_n;
	float penalty_repeat;
	float penalty_freq;
	float penalty_present;
	int32_t mirostat;
	float mirostat_tau;
	float mirostat_eta;
	uint32_t seed;
	char * grammar;
};
struct common_sampler * common_sampler_cinit(const struct llama_model * model, struct jetai_sampler_cparams * params);
void    common_sampler_cfree(struct common_sampler * s);
void    common_sampler_creset(struct common_sampler * s);
void    common_sampler_caccept(struct common_sampler * s, int32_t id, bool apply_grammar);
int32_t common_sampler_csample(struct common_sampler * s, struct llama_context * ctx, int idx);

typedef void (*jetai_log_cb)(int level, const char * text, void * user_data);
void llama_log_set(jetai_log_cb cb, void * user_data);

// Interrupting a decode: ggml's CPU backend asks the abort callback before
// each graph node. flags[0] is set while an interruptible decode runs,
// flags[1] when an interrupt is asked for, flags[2] by the callback when it
// stops the graph.
void llama_set_abort_callback(struct llama_context * ctx, bool (*cb)(void * data), void * data);
static inline bool jetai_abort_check(void * data) {
	int32_t * f = (int32_t *) data;
	if (__atomic_load_n(&f[0], __ATOMIC_RELAXED) && __atomic_load_n(&f[1], __ATOMIC_RELAXED)) {
		__atomic_store_n(&f[2], 1, __ATOMIC_RELAXED);
		return true;
	}
	return false;
}
static inline void jetai_set_abort(struct llama_context * ctx, int32_t * flags) { llama_set_abort_callback(ctx, jetai_abort_check, flags); }

void llama_model_free(struct llama_model * model);
void llama_free(struct llama_context * ctx);

// Go callbacks (callbacks.go).
extern bool jetaiProgress(float progress, void * user_data);
extern void jetaiLog(int level, char * text, void * user_data);
static inline jetai_progress_cb jetai_progress_trampoline(void) { return (jetai_progress_cb)jetaiProgress; }
static inline void jetai_install_log(void) { llama_log_set((jetai_log_cb)jetaiLog, 0); }

// Mirror of struct ggml_threadpool_params (ggml.h, GGML_MAX_N_THREADS 512).
// jetai makes its own thread pool to turn off the workers' busy polling
// between graphs: on a small box that spinning starves the runner's other
// threads and stalls the compute barriers (measured: 200 tokens in 22 s
// instead of 0.1 s on 2 cores). TestThreadpoolParamsLayout checks it.
struct ggml_threadpool;
struct jetai_threadpool_params {
	bool cpumask[512];
	int n_threads;
	int prio;
	uint32_t poll;
	bool strict_cpu;
	bool paused;
};
void ggml_threadpool_params_init(struct jetai_threadpool_params * p, int n_threads);
struct ggml_threadpool * ggml_threadpool_new(struct jetai_threadpool_params * params);
void ggml_threadpool_free(struct ggml_threadpool * threadpool);
void llama_attach_threadpool(struct llama_context * ctx, struct ggml_threadpool * threadpool, struct ggml_threadpool * threadpool_batch);
void llama_detach_threadpool(struct llama_context * ctx);
#endif
