//! Hand-written declarations of the parts of `capi/ember.h` (ABI 1) this crate uses. The structs mirror the
//! header field for field; fill them with the `*_params_init` functions.
#![allow(non_camel_case_types, dead_code)]

use std::os::raw::{c_char, c_void};

pub const EMBER_ABI_VERSION: u32 = 1;

pub type ember_status = i32; // a C enum: int-sized; kept as an integer so unknown values are no UB

pub const EMBER_OK: i32 = 0;
pub const EMBER_ERR_BUFFER_TOO_SMALL: i32 = 10;

pub const EMBER_STREAM_CONTINUE: i32 = 0;
pub const EMBER_STREAM_STOP: i32 = 1;
pub const EMBER_STREAM_ERROR: i32 = 2;

pub const EMBER_TOKENIZE_ADD_SPECIAL: u32 = 1;
pub const EMBER_TOKENIZE_PARSE_SPECIAL: u32 = 2;
pub const EMBER_DETOKENIZE_RENDER_SPECIAL: u32 = 1;
pub const EMBER_PREFILL_ALL_LOGITS: u32 = 1;

pub const EMBER_SEED_RANDOM: u64 = u64::MAX;

#[repr(C)]
pub struct ember_model {
    _private: [u8; 0],
}
#[repr(C)]
pub struct ember_tokenizer {
    _private: [u8; 0],
}
#[repr(C)]
pub struct ember_session {
    _private: [u8; 0],
}
#[repr(C)]
pub struct ember_sampler {
    _private: [u8; 0],
}
#[repr(C)]
pub struct ember_chat {
    _private: [u8; 0],
}
#[repr(C)]
pub struct ember_adapter {
    _private: [u8; 0],
}

pub type ember_log_fn = Option<unsafe extern "C" fn(level: i32, message: *const c_char, user_data: *mut c_void)>;
pub type ember_progress_fn = Option<unsafe extern "C" fn(progress: f32, user_data: *mut c_void) -> bool>;
pub type ember_abort_fn = Option<unsafe extern "C" fn(user_data: *mut c_void) -> bool>;
pub type ember_stream_fn =
    Option<unsafe extern "C" fn(text: *const c_char, len: usize, token: i32, user_data: *mut c_void) -> i32>;

#[repr(C)]
pub struct ember_model_params {
    pub struct_size: u32,
    pub n_threads: i32,
    pub backend: *const c_char,
    pub progress: ember_progress_fn,
    pub progress_user_data: *mut c_void,
    pub use_mmap: bool, // C99 _Bool: one byte
    pub quantize: *const c_char,
}

#[repr(C)]
pub struct ember_memory_estimate {
    pub struct_size: u32,
    pub weights: u64,
    pub kv_cache: u64,
    pub scratch: u64,
    pub total: u64,
}

#[repr(C)]
pub struct ember_session_params {
    pub struct_size: u32,
    pub n_ctx: i32,
    pub n_batch: i32,
    pub n_threads: i32,
    pub abort: ember_abort_fn,
    pub abort_user_data: *mut c_void,
}

#[repr(C)]
pub struct ember_generate_params {
    pub struct_size: u32,
    pub max_tokens: i32,
    pub stop_at_eog: i32,
    pub stream: ember_stream_fn,
    pub stream_user_data: *mut c_void,
    pub stop: *const *const c_char,
    pub n_stop: i32,
    pub bias_tokens: *const i32,
    pub bias_values: *const f32,
    pub n_bias: i32,
    pub tokens: *mut i32,
    pub tokens_cap: i32,
}

#[repr(C)]
pub struct ember_generate_result {
    pub struct_size: u32,
    pub n_generated: i32,
    pub stop_reason: i32,
    pub stop_index: i32,
}

#[repr(C)]
pub struct ember_chat_params {
    pub struct_size: u32,
    pub system: *const c_char,
    pub history: bool,
    pub reserve: i32,
    pub strategy: i32,
}

#[repr(C)]
pub struct ember_sampler_params {
    pub struct_size: u32,
    pub temperature: f32,
    pub top_k: i32,
    pub top_p: f32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    pub penalty_last_n: i32,
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    pub seed: u64,
}

extern "C" {
    pub fn ember_status_string(status: ember_status) -> *const c_char;
    pub fn ember_last_error() -> *const c_char;
    pub fn ember_version() -> *const c_char;
    pub fn ember_abi_version() -> u32;
    pub fn ember_version_number() -> u32;
    pub fn ember_set_log_callback(callback: ember_log_fn, user_data: *mut c_void);
    pub fn ember_backend_count() -> i32;
    pub fn ember_backend_name(index: i32) -> *const c_char;

    pub fn ember_model_params_init_sized(params: *mut ember_model_params, size: usize) -> ember_status;
    pub fn ember_model_load(path: *const c_char, params: *const ember_model_params, out: *mut *mut ember_model)
        -> ember_status;
    pub fn ember_model_load_from_memory(
        data: *const c_void,
        size: usize,
        params: *const ember_model_params,
        out: *mut *mut ember_model,
    ) -> ember_status;
    pub fn ember_model_free(model: *mut ember_model);
    pub fn ember_model_tokenizer(model: *const ember_model) -> *const ember_tokenizer;
    pub fn ember_model_n_vocab(model: *const ember_model) -> i32;
    pub fn ember_model_n_ctx_train(model: *const ember_model) -> i32;
    pub fn ember_model_n_embd(model: *const ember_model) -> i32;
    pub fn ember_model_n_layers(model: *const ember_model) -> i32;
    pub fn ember_model_n_params(model: *const ember_model) -> i64;
    pub fn ember_model_size(model: *const ember_model) -> i64;
    pub fn ember_model_architecture(model: *const ember_model, buf: *mut c_char, cap: usize, needed: *mut usize)
        -> ember_status;
    pub fn ember_model_name(model: *const ember_model, buf: *mut c_char, cap: usize, needed: *mut usize)
        -> ember_status;
    pub fn ember_model_backend(model: *const ember_model, buf: *mut c_char, cap: usize, needed: *mut usize)
        -> ember_status;
    pub fn ember_model_meta(
        model: *const ember_model,
        key: *const c_char,
        buf: *mut c_char,
        cap: usize,
        needed: *mut usize,
    ) -> ember_status;
    pub fn ember_model_meta_count(model: *const ember_model) -> i32;
    pub fn ember_model_meta_key(
        model: *const ember_model,
        index: i32,
        buf: *mut c_char,
        cap: usize,
        needed: *mut usize,
    ) -> ember_status;
    pub fn ember_model_meta_type(model: *const ember_model, key: *const c_char, type_: *mut i32) -> ember_status;
    pub fn ember_model_meta_json(
        model: *const ember_model,
        key: *const c_char,
        buf: *mut c_char,
        cap: usize,
        needed: *mut usize,
    ) -> ember_status;
    pub fn ember_model_chat_template(model: *const ember_model, buf: *mut c_char, cap: usize, needed: *mut usize)
        -> ember_status;
    pub fn ember_estimate_memory(path: *const c_char, n_ctx: i32, n_batch: i32, out: *mut ember_memory_estimate)
        -> ember_status;
    pub fn ember_estimate_memory_quantized(
        path: *const c_char,
        n_ctx: i32,
        n_batch: i32,
        quantize: *const c_char,
        out: *mut ember_memory_estimate,
    ) -> ember_status;
    pub fn ember_chat_render(
        model: *const ember_model,
        template_source: *const c_char,
        json: *const c_char,
        buf: *mut c_char,
        cap: usize,
        needed: *mut usize,
    ) -> ember_status;

    pub fn ember_tokenizer_load(path: *const c_char, out: *mut *mut ember_tokenizer) -> ember_status;
    pub fn ember_tokenizer_free(tokenizer: *mut ember_tokenizer);
    pub fn ember_tokenizer_n_vocab(tokenizer: *const ember_tokenizer) -> i32;
    pub fn ember_tokenize(
        tokenizer: *const ember_tokenizer,
        text: *const c_char,
        len: usize,
        out: *mut i32,
        cap: i32,
        flags: u32,
        n_out: *mut i32,
    ) -> ember_status;
    pub fn ember_detokenize(
        tokenizer: *const ember_tokenizer,
        tokens: *const i32,
        n: i32,
        flags: u32,
        buf: *mut c_char,
        cap: usize,
        needed: *mut usize,
    ) -> ember_status;
    pub fn ember_token_piece(
        tokenizer: *const ember_tokenizer,
        token: i32,
        flags: u32,
        buf: *mut c_char,
        cap: usize,
        needed: *mut usize,
    ) -> ember_status;
    pub fn ember_token_bos(tokenizer: *const ember_tokenizer) -> i32;
    pub fn ember_token_eos(tokenizer: *const ember_tokenizer) -> i32;
    pub fn ember_token_eot(tokenizer: *const ember_tokenizer) -> i32;
    pub fn ember_token_is_eog(tokenizer: *const ember_tokenizer, token: i32) -> bool;
    pub fn ember_token_attr(tokenizer: *const ember_tokenizer, token: i32) -> u32;
    pub fn ember_token_special(tokenizer: *const ember_tokenizer, which: i32) -> i32;
    pub fn ember_tokenizer_add_bos(tokenizer: *const ember_tokenizer) -> i32;
    pub fn ember_tokenizer_add_eos(tokenizer: *const ember_tokenizer) -> i32;

    pub fn ember_session_params_init_sized(params: *mut ember_session_params, size: usize) -> ember_status;
    pub fn ember_session_create(
        model: *const ember_model,
        params: *const ember_session_params,
        out: *mut *mut ember_session,
    ) -> ember_status;
    pub fn ember_session_free(session: *mut ember_session);
    pub fn ember_session_prefill(session: *mut ember_session, tokens: *const i32, n: i32) -> ember_status;
    pub fn ember_session_prefill_ex(session: *mut ember_session, tokens: *const i32, n: i32, flags: u32)
        -> ember_status;
    pub fn ember_session_decode(session: *mut ember_session, token: i32) -> ember_status;
    pub fn ember_session_logits(session: *const ember_session, out: *mut *const f32, n_vocab: *mut i32)
        -> ember_status;
    pub fn ember_session_logits_at(
        session: *const ember_session,
        i: i32,
        out: *mut *const f32,
        n_vocab: *mut i32,
    ) -> ember_status;
    pub fn ember_session_position(session: *const ember_session) -> i32;
    pub fn ember_session_n_ctx(session: *const ember_session) -> i32;
    pub fn ember_session_rewind(session: *mut ember_session, position: i32) -> ember_status;
    pub fn ember_session_reset(session: *mut ember_session) -> ember_status;
    pub fn ember_session_cancel(session: *mut ember_session) -> ember_status;
    pub fn ember_session_clear_cancel(session: *mut ember_session) -> ember_status;
    pub fn ember_generate_params_init_sized(params: *mut ember_generate_params, size: usize) -> ember_status;
    pub fn ember_session_generate_ex(
        session: *mut ember_session,
        sampler: *mut ember_sampler,
        params: *const ember_generate_params,
        result: *mut ember_generate_result,
    ) -> ember_status;
    pub fn ember_session_save(session: *const ember_session, path: *const c_char) -> ember_status;
    pub fn ember_session_load(session: *mut ember_session, path: *const c_char) -> ember_status;

    pub fn ember_adapter_load(model: *const ember_model, path: *const c_char, out: *mut *mut ember_adapter)
        -> ember_status;
    pub fn ember_adapter_free(adapter: *mut ember_adapter);
    pub fn ember_adapter_rank(adapter: *const ember_adapter) -> i32;
    pub fn ember_adapter_n_targets(adapter: *const ember_adapter) -> i32;
    pub fn ember_session_set_adapters(
        session: *mut ember_session,
        adapters: *const *const ember_adapter,
        scales: *const f32,
        n: i32,
    ) -> ember_status;

    pub fn ember_chat_params_init_sized(params: *mut ember_chat_params, size: usize) -> ember_status;
    pub fn ember_chat_create(
        model: *const ember_model,
        session_params: *const ember_session_params,
        params: *const ember_chat_params,
        out: *mut *mut ember_chat,
    ) -> ember_status;
    pub fn ember_chat_free(chat: *mut ember_chat);
    pub fn ember_chat_say_ex(
        chat: *mut ember_chat,
        sampler: *mut ember_sampler,
        user: *const c_char,
        params: *const ember_generate_params,
        result: *mut ember_generate_result,
    ) -> ember_status;
    pub fn ember_chat_reset(chat: *mut ember_chat) -> ember_status;
    pub fn ember_chat_n_messages(chat: *const ember_chat) -> i32;
    pub fn ember_chat_save(chat: *const ember_chat, path: *const c_char) -> ember_status;
    pub fn ember_chat_load(chat: *mut ember_chat, path: *const c_char) -> ember_status;

    pub fn ember_sampler_params_init_sized(params: *mut ember_sampler_params, size: usize) -> ember_status;
    pub fn ember_sampler_create(params: *const ember_sampler_params, out: *mut *mut ember_sampler) -> ember_status;
    pub fn ember_sampler_create_greedy(out: *mut *mut ember_sampler) -> ember_status;
    pub fn ember_sampler_free(sampler: *mut ember_sampler);
    pub fn ember_sampler_sample(sampler: *mut ember_sampler, logits: *const f32, n: i32, token: *mut i32)
        -> ember_status;
    pub fn ember_sampler_accept(sampler: *mut ember_sampler, token: i32) -> ember_status;
    pub fn ember_sampler_reset(sampler: *mut ember_sampler) -> ember_status;
    pub fn ember_sampler_seed(sampler: *const ember_sampler, seed: *mut u64) -> ember_status;
    pub fn ember_sampler_set_grammar(sampler: *mut ember_sampler, model: *const ember_model, gbnf: *const c_char)
        -> ember_status;
    pub fn ember_sampler_set_json_schema(
        sampler: *mut ember_sampler,
        model: *const ember_model,
        schema_json: *const c_char,
    ) -> ember_status;
    pub fn ember_json_schema_to_grammar(schema_json: *const c_char, buf: *mut c_char, cap: usize, needed: *mut usize)
        -> ember_status;
}

/// As ember.h's `ember_model_params_init` macro: exactly `size_of` our struct is written, so a newer library
/// never writes past it.
pub unsafe fn ember_model_params_init(params: *mut ember_model_params) -> ember_status {
    ember_model_params_init_sized(params, std::mem::size_of::<ember_model_params>())
}

/// As ember.h's `ember_session_params_init` macro: exactly `size_of` our struct is written, so a newer library
/// never writes past it.
pub unsafe fn ember_session_params_init(params: *mut ember_session_params) -> ember_status {
    ember_session_params_init_sized(params, std::mem::size_of::<ember_session_params>())
}

/// As ember.h's `ember_generate_params_init` macro: exactly `size_of` our struct is written, so a newer library
/// never writes past it.
pub unsafe fn ember_generate_params_init(params: *mut ember_generate_params) -> ember_status {
    ember_generate_params_init_sized(params, std::mem::size_of::<ember_generate_params>())
}

/// As ember.h's `ember_chat_params_init` macro: exactly `size_of` our struct is written, so a newer library
/// never writes past it.
pub unsafe fn ember_chat_params_init(params: *mut ember_chat_params) -> ember_status {
    ember_chat_params_init_sized(params, std::mem::size_of::<ember_chat_params>())
}

/// As ember.h's `ember_sampler_params_init` macro: exactly `size_of` our struct is written, so a newer library
/// never writes past it.
pub unsafe fn ember_sampler_params_init(params: *mut ember_sampler_params) -> ember_status {
    ember_sampler_params_init_sized(params, std::mem::size_of::<ember_sampler_params>())
}
