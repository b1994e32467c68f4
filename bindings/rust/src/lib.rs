//! Safe Rust bindings for ember, an embeddable LLM library, over its stable C ABI (`capi/ember.h`, ABI 1).
//!
//! ```no_run
//! use ember::{GenerateParams, Model, ModelParams, Sampler, Session, SessionParams, Stream};
//!
//! let model = Model::load("stories260K.gguf", ModelParams::default())?;
//! let tokens = model.tokenizer().tokenize("Once upon a time", true, false)?;
//! let mut session = Session::new(&model, SessionParams::default())?;
//! session.prefill(&tokens)?;
//! let mut sampler = Sampler::greedy()?;
//! let params = GenerateParams { max_tokens: 16, ..GenerateParams::default() };
//! let result = session.generate(&mut sampler, &params, |text, _token| {
//!     print!("{}", text);
//!     Ok::<_, ember::Error>(Stream::Continue)
//! })?;
//! println!("\n{} tokens, stopped by {:?}", result.n_generated, result.stop);
//! # Ok::<(), ember::Error>(())
//! ```
//!
//! Threads: [`Model`], [`Tokenizer`] and [`Adapter`] are `Send + Sync`; [`Session`], [`Chat`] and
//! [`Sampler`] are `Send` (one thread at a time, which `&mut self` enforces); a [`CancelHandle`] cancels a
//! running call from any thread.

mod sys;

use std::any::Any;
use std::ffi::{CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The C ABI version this crate was written for (`EMBER_ABI_VERSION` of its `ember.h`).
pub const ABI_VERSION: u32 = sys::EMBER_ABI_VERSION;

// ---------------------------------------------------------------------------------------------------------
// Status and errors
// ---------------------------------------------------------------------------------------------------------

/// The status of a failed call: `ember_status` of ember.h (the numbers are the ABI's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Status {
    Ok = 0,
    InvalidArgument = 1,
    BadFile = 2,
    Unsupported = 3,
    OutOfMemory = 4,
    ContextFull = 5,
    Cancelled = 6,
    Backend = 7,
    Internal = 8,
    Io = 9,
    BufferTooSmall = 10,
    NotFound = 11,
    Callback = 12,
}

impl Status {
    /// The status for a raw `ember_status`; a number this crate does not know is `Internal`.
    pub fn from_raw(raw: i32) -> Status {
        match raw {
            0 => Status::Ok,
            1 => Status::InvalidArgument,
            2 => Status::BadFile,
            3 => Status::Unsupported,
            4 => Status::OutOfMemory,
            5 => Status::ContextFull,
            6 => Status::Cancelled,
            7 => Status::Backend,
            8 => Status::Internal,
            9 => Status::Io,
            10 => Status::BufferTooSmall,
            11 => Status::NotFound,
            12 => Status::Callback,
            _ => Status::Internal,
        }
    }

    /// The raw `ember_status` number.
    pub fn as_raw(self) -> i32 {
        self as i32
    }

    /// The library's name for the status ("invalid argument", ...).
    pub fn name(self) -> &'static str {
        // ember_status_string returns static strings.
        let p = unsafe { sys::ember_status_string(self as i32) };
        if p.is_null() {
            return "unknown status";
        }
        unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("unknown status")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error from ember: the status and the message `ember_last_error()` gave right after the failing call
/// (or a message of this crate's for errors found before calling ember).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    status: Status,
    message: String,
}

impl Error {
    /// Makes an error (for callbacks that want to fail with an ember error of their own).
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error { status, message: message.into() }
    }
    pub fn status(&self) -> Status {
        self.status
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "ember: {}", self.status)
        } else {
            write!(f, "ember: {}: {}", self.status, self.message)
        }
    }
}

impl std::error::Error for Error {}

/// `Result<T, ember::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

/// The error for a failed status; must be called right after the call, on the same thread.
fn last_error(status: i32) -> Error {
    let p = unsafe { sys::ember_last_error() };
    let mut message = if p.is_null() { String::new() } else { unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned() };
    if Status::from_raw(status) == Status::Internal && status != Status::Internal as i32 {
        message = format!("unknown status {} from libember: {}", status, message);
    }
    Error { status: Status::from_raw(status), message }
}

fn check(status: i32) -> Result<()> {
    if status == sys::EMBER_OK {
        Ok(())
    } else {
        Err(last_error(status))
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(Status::InvalidArgument, message)
}

fn c_string(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| invalid(format!("{} contains a NUL byte", what)))
}

#[cfg(unix)]
fn c_path(path: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| invalid(format!("the path {:?} contains a NUL byte", path)))
}

#[cfg(not(unix))]
fn c_path(path: &Path) -> Result<CString> {
    let s = path.to_str().ok_or_else(|| invalid(format!("the path {:?} is not UTF-8", path)))?;
    c_string(s, "the path")
}

fn len_i32(n: usize, what: &str) -> Result<i32> {
    if n > i32::MAX as usize {
        Err(invalid(format!("{} has more than {} elements", what, i32::MAX)))
    } else {
        Ok(n as i32)
    }
}

fn into_string(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// The two-call pattern for text: `f(buf, cap, needed)`; returns the text's bytes (needed - 1 of them).
fn read_bytes<F: FnMut(*mut c_char, usize, *mut usize) -> i32>(mut f: F) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        let mut needed = 0usize;
        let st = f(buf.as_mut_ptr() as *mut c_char, buf.len(), &mut needed);
        if st == sys::EMBER_ERR_BUFFER_TOO_SMALL && needed > buf.len() {
            buf.resize(needed, 0);
            continue;
        }
        check(st)?;
        buf.truncate(needed.saturating_sub(1).min(buf.len()));
        return Ok(buf);
    }
}

fn read_string<F: FnMut(*mut c_char, usize, *mut usize) -> i32>(f: F) -> Result<String> {
    read_bytes(f).map(into_string)
}

fn static_str(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

// ---------------------------------------------------------------------------------------------------------
// Library
// ---------------------------------------------------------------------------------------------------------

static ABI_CHECKED: AtomicBool = AtomicBool::new(false);

/// The C ABI version of the libember actually loaded.
pub fn abi_version() -> u32 {
    unsafe { sys::ember_abi_version() }
}

/// Checks an ABI version against [`ABI_VERSION`]: `Err` (status `Unsupported`) naming both on a mismatch.
/// Constructors call it with [`abi_version`] once per process; it is public so the check can be tested.
pub fn check_abi_version(found: u32) -> Result<()> {
    if found == ABI_VERSION {
        Ok(())
    } else {
        Err(Error::new(
            Status::Unsupported,
            format!(
                "the loaded libember has C ABI version {}, but this ember crate was written for ABI version {}: \
                 use libember.so.{} or a binding made for ABI {}",
                found, ABI_VERSION, ABI_VERSION, found
            ),
        ))
    }
}

fn ensure_abi() -> Result<()> {
    if ABI_CHECKED.load(Ordering::Acquire) {
        return Ok(());
    }
    check_abi_version(abi_version())?;
    ABI_CHECKED.store(true, Ordering::Release);
    Ok(())
}

/// The loaded library's version, "MAJOR.MINOR.PATCH".
pub fn version() -> String {
    static_str(unsafe { sys::ember_version() }).unwrap_or_default()
}

/// The loaded library's version as MAJOR * 1000000 + MINOR * 1000 + PATCH.
pub fn version_number() -> u32 {
    unsafe { sys::ember_version_number() }
}

/// The backends this library was built with, "cpu" first.
pub fn backends() -> Vec<String> {
    let n = unsafe { sys::ember_backend_count() };
    (0..n.max(0)).filter_map(|i| static_str(unsafe { sys::ember_backend_name(i) })).collect()
}

/// What a model costs in memory on the CPU backend, in bytes (see [`estimate_memory`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryEstimate {
    pub weights: u64,
    pub kv_cache: u64,
    pub scratch: u64,
    pub total: u64,
}

/// Estimates memory for a GGUF file and a session of `n_ctx` tokens from the file's header alone
/// (`n_batch` 0: the default).
pub fn estimate_memory(path: impl AsRef<Path>, n_ctx: i32, n_batch: i32) -> Result<MemoryEstimate> {
    estimate_memory_impl(path.as_ref(), n_ctx, n_batch, None)
}

/// As [`estimate_memory`] for the model loaded with [`ModelParams::quantize`] = `quantize`: the weights are
/// sized as that load holds them ("q8_0", "q4_k", ...; `None` or `Some("")`: as the file is). An unknown
/// type is `Status::InvalidArgument`, as the load is.
pub fn estimate_memory_quantized(
    path: impl AsRef<Path>,
    n_ctx: i32,
    n_batch: i32,
    quantize: Option<&str>,
) -> Result<MemoryEstimate> {
    estimate_memory_impl(path.as_ref(), n_ctx, n_batch, quantize)
}

fn estimate_memory_impl(path: &Path, n_ctx: i32, n_batch: i32, quantize: Option<&str>) -> Result<MemoryEstimate> {
    ensure_abi()?;
    let c = c_path(path)?;
    let quantize = match quantize {
        Some(q) => Some(c_string(q, "the quantize type")?),
        None => None,
    };
    let mut out = sys::ember_memory_estimate {
        struct_size: std::mem::size_of::<sys::ember_memory_estimate>() as u32,
        weights: 0,
        kv_cache: 0,
        scratch: 0,
        total: 0,
    };
    check(unsafe {
        match &quantize {
            Some(q) => sys::ember_estimate_memory_quantized(c.as_ptr(), n_ctx, n_batch, q.as_ptr(), &mut out),
            None => sys::ember_estimate_memory(c.as_ptr(), n_ctx, n_batch, &mut out),
        }
    })?;
    Ok(MemoryEstimate { weights: out.weights, kv_cache: out.kv_cache, scratch: out.scratch, total: out.total })
}

/// How to load a model. `Default` gives the library's defaults (`ember_model_params_init`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelParams {
    /// Default threads for sessions; 0: the hardware threads.
    pub n_threads: i32,
    /// "cpu", "cuda", or `None` / "auto" for the best usable one.
    pub backend: Option<String>,
    /// Map the file (zero copy); false reads it into memory once.
    pub use_mmap: bool,
    /// Quantize F32/F16/BF16 weights in memory at load: "q8_0", "q4_k", ... (`None`: as the file is).
    pub quantize: Option<String>,
}

impl Default for ModelParams {
    fn default() -> Self {
        let mut p: sys::ember_model_params = unsafe { std::mem::zeroed() };
        unsafe { sys::ember_model_params_init(&mut p) };
        ModelParams { n_threads: p.n_threads, backend: static_str(p.backend), use_mmap: p.use_mmap, quantize: None }
    }
}

struct ProgressState<F> {
    f: F,
    panic: Option<Box<dyn Any + Send>>,
}

unsafe extern "C" fn progress_trampoline<F: FnMut(f32) -> bool>(progress: f32, user_data: *mut c_void) -> bool {
    let state = &mut *(user_data as *mut ProgressState<F>);
    if state.panic.is_some() {
        return false;
    }
    let f = &mut state.f;
    match panic::catch_unwind(AssertUnwindSafe(|| f(progress))) {
        Ok(go_on) => go_on,
        Err(p) => {
            state.panic = Some(p);
            false
        }
    }
}

/// A loaded GGUF model: immutable, shared between threads. Sessions made from it keep its weights alive
/// after it is dropped.
pub struct Model {
    raw: *mut sys::ember_model,
}

unsafe impl Send for Model {}
unsafe impl Sync for Model {}

impl Drop for Model {
    fn drop(&mut self) {
        unsafe { sys::ember_model_free(self.raw) };
    }
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model").field("architecture", &self.architecture().unwrap_or_default()).finish()
    }
}

impl Model {
    fn load_impl<F: FnMut(f32) -> bool>(
        params: &ModelParams,
        progress: Option<F>,
        call: impl FnOnce(*const sys::ember_model_params, *mut *mut sys::ember_model) -> i32,
    ) -> Result<Model> {
        ensure_abi()?;
        let backend = match &params.backend {
            Some(b) => Some(c_string(b, "the backend")?),
            None => None,
        };
        let quantize = match &params.quantize {
            Some(q) => Some(c_string(q, "the quantize type")?),
            None => None,
        };
        let mut p: sys::ember_model_params = unsafe { std::mem::zeroed() };
        check(unsafe { sys::ember_model_params_init(&mut p) })?;
        p.n_threads = params.n_threads;
        p.backend = backend.as_ref().map_or(ptr::null(), |b| b.as_ptr());
        p.quantize = quantize.as_ref().map_or(ptr::null(), |q| q.as_ptr());
        p.use_mmap = params.use_mmap;
        let mut state = progress.map(|f| ProgressState { f, panic: None });
        if let Some(s) = state.as_mut() {
            p.progress = Some(progress_trampoline::<F>);
            p.progress_user_data = s as *mut ProgressState<F> as *mut c_void;
        }
        let mut raw = ptr::null_mut();
        let st = call(&p, &mut raw);
        let result = check(st);
        if let Some(p) = state.as_mut().and_then(|s| s.panic.take()) {
            unsafe { sys::ember_model_free(raw) };
            panic::resume_unwind(p);
        }
        result?;
        Ok(Model { raw })
    }

    /// Loads a GGUF file.
    pub fn load(path: impl AsRef<Path>, params: ModelParams) -> Result<Model> {
        let c = c_path(path.as_ref())?;
        Self::load_impl::<fn(f32) -> bool>(&params, None, |p, out| unsafe { sys::ember_model_load(c.as_ptr(), p, out) })
    }

    /// Loads a GGUF file, calling `progress` with values in [0, 1]; returning false cancels the load
    /// (status `Cancelled`). A panic in `progress` stops the load and resumes once ember has returned.
    pub fn load_with_progress<F: FnMut(f32) -> bool>(
        path: impl AsRef<Path>,
        params: ModelParams,
        progress: F,
    ) -> Result<Model> {
        let c = c_path(path.as_ref())?;
        Self::load_impl(&params, Some(progress), |p, out| unsafe { sys::ember_model_load(c.as_ptr(), p, out) })
    }

    /// Loads a GGUF file held in memory (the bytes are copied).
    pub fn load_from_memory(bytes: &[u8], params: ModelParams) -> Result<Model> {
        let data = bytes.as_ptr(); // never NULL, even for an empty slice (ember then reports a bad file)
        Self::load_impl::<fn(f32) -> bool>(&params, None, |p, out| unsafe {
            sys::ember_model_load_from_memory(data as *const c_void, bytes.len(), p, out)
        })
    }

    /// The model's tokenizer, borrowed from it.
    pub fn tokenizer(&self) -> Tokenizer<'_> {
        Tokenizer { raw: unsafe { sys::ember_model_tokenizer(self.raw) }, owned: false, _model: PhantomData }
    }

    pub fn n_vocab(&self) -> i32 {
        unsafe { sys::ember_model_n_vocab(self.raw) }
    }
    pub fn n_ctx_train(&self) -> i32 {
        unsafe { sys::ember_model_n_ctx_train(self.raw) }
    }
    pub fn n_embd(&self) -> i32 {
        unsafe { sys::ember_model_n_embd(self.raw) }
    }
    pub fn n_layers(&self) -> i32 {
        unsafe { sys::ember_model_n_layers(self.raw) }
    }
    /// Total parameters (elements over all tensors).
    pub fn n_params(&self) -> i64 {
        unsafe { sys::ember_model_n_params(self.raw) }
    }
    /// The tensors' bytes.
    pub fn size(&self) -> i64 {
        unsafe { sys::ember_model_size(self.raw) }
    }
    /// general.architecture ("llama", ...).
    pub fn architecture(&self) -> Result<String> {
        read_string(|b, c, n| unsafe { sys::ember_model_architecture(self.raw, b, c, n) })
    }
    /// general.name ("" when absent).
    pub fn name(&self) -> Result<String> {
        read_string(|b, c, n| unsafe { sys::ember_model_name(self.raw, b, c, n) })
    }
    /// The backend the weights live on ("cpu", ...).
    pub fn backend(&self) -> Result<String> {
        read_string(|b, c, n| unsafe { sys::ember_model_backend(self.raw, b, c, n) })
    }

    /// A metadata value as text (arrays summarised); status `NotFound` for an absent key.
    pub fn meta(&self, key: &str) -> Result<String> {
        let k = c_string(key, "the key")?;
        read_string(|b, c, n| unsafe { sys::ember_model_meta(self.raw, k.as_ptr(), b, c, n) })
    }

    /// A metadata value as JSON (arrays in full); status `NotFound` for an absent key.
    pub fn meta_json(&self, key: &str) -> Result<String> {
        let k = c_string(key, "the key")?;
        read_string(|b, c, n| unsafe { sys::ember_model_meta_json(self.raw, k.as_ptr(), b, c, n) })
    }

    /// A metadata value's GGUF type; status `NotFound` for an absent key.
    pub fn meta_type(&self, key: &str) -> Result<MetaType> {
        let k = c_string(key, "the key")?;
        let mut t = -1;
        check(unsafe { sys::ember_model_meta_type(self.raw, k.as_ptr(), &mut t) })?;
        Ok(MetaType::from_raw(t))
    }

    /// The metadata keys, in file order.
    pub fn meta_keys(&self) -> Result<Vec<String>> {
        let n = unsafe { sys::ember_model_meta_count(self.raw) };
        (0..n.max(0))
            .map(|i| read_string(|b, c, needed| unsafe { sys::ember_model_meta_key(self.raw, i, b, c, needed) }))
            .collect()
    }

    /// The chat template (tokenizer.chat_template), "" when the file has none.
    pub fn chat_template(&self) -> Result<String> {
        read_string(|b, c, n| unsafe { sys::ember_model_chat_template(self.raw, b, c, n) })
    }

    /// Renders a conversation (`json`, see [`render_chat`]) through `template_source`, or the model's own
    /// template when `None`; the model's BOS/EOS are the default bos_token/eos_token.
    pub fn render_chat(&self, template_source: Option<&str>, json: &str) -> Result<String> {
        let t = match template_source {
            Some(t) => Some(c_string(t, "the template")?),
            None => None,
        };
        let j = c_string(json, "the JSON")?;
        let tp = t.as_ref().map_or(ptr::null(), |t| t.as_ptr());
        read_string(|b, c, n| unsafe { sys::ember_chat_render(self.raw, tp, j.as_ptr(), b, c, n) })
    }
}

/// A metadata value's GGUF type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
    Unknown(i32),
}

impl MetaType {
    fn from_raw(t: i32) -> MetaType {
        use MetaType::*;
        match t {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            other => Unknown(other),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Tokenizers
// ---------------------------------------------------------------------------------------------------------

/// A token's attribute bits (llama.cpp's numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TokenAttr(pub u32);

impl TokenAttr {
    pub const UNKNOWN: TokenAttr = TokenAttr(1);
    pub const UNUSED: TokenAttr = TokenAttr(2);
    pub const NORMAL: TokenAttr = TokenAttr(4);
    pub const CONTROL: TokenAttr = TokenAttr(8);
    pub const USER_DEFINED: TokenAttr = TokenAttr(16);
    pub const BYTE: TokenAttr = TokenAttr(32);
    pub const LSTRIP: TokenAttr = TokenAttr(128);
    pub const RSTRIP: TokenAttr = TokenAttr(256);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: TokenAttr) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }
}

/// Special token roles (`EMBER_SPECIAL_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Special {
    Bos = 0,
    Eos = 1,
    Eot = 2,
    Eom = 3,
    Unk = 4,
    Sep = 5,
    Pad = 6,
    Mask = 7,
    FimPre = 8,
    FimSuf = 9,
    FimMid = 10,
    FimPad = 11,
    FimRep = 12,
    FimSep = 13,
}

fn opt_token(t: i32) -> Option<i32> {
    if t < 0 {
        None
    } else {
        Some(t)
    }
}

/// A tokenizer: borrowed from a [`Model`] (lifetime `'m`), or loaded alone with [`Tokenizer::load`].
/// Thread-safe.
pub struct Tokenizer<'m> {
    raw: *const sys::ember_tokenizer,
    owned: bool,
    _model: PhantomData<&'m Model>,
}

unsafe impl Send for Tokenizer<'_> {}
unsafe impl Sync for Tokenizer<'_> {}

impl Drop for Tokenizer<'_> {
    fn drop(&mut self) {
        if self.owned {
            unsafe { sys::ember_tokenizer_free(self.raw as *mut sys::ember_tokenizer) };
        }
    }
}

impl fmt::Debug for Tokenizer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer").field("n_vocab", &self.n_vocab()).field("owned", &self.owned).finish()
    }
}

impl Tokenizer<'static> {
    /// Loads only the vocabulary of a GGUF file.
    pub fn load(path: impl AsRef<Path>) -> Result<Tokenizer<'static>> {
        ensure_abi()?;
        let c = c_path(path.as_ref())?;
        let mut raw = ptr::null_mut();
        check(unsafe { sys::ember_tokenizer_load(c.as_ptr(), &mut raw) })?;
        Ok(Tokenizer { raw, owned: true, _model: PhantomData })
    }
}

impl<'m> Tokenizer<'m> {
    pub fn n_vocab(&self) -> i32 {
        unsafe { sys::ember_tokenizer_n_vocab(self.raw) }
    }

    /// Text to token ids. `add_special`: add BOS/EOS as the vocabulary asks; `parse_special`: text such as
    /// "<|im_start|>" becomes its special token.
    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<i32>> {
        let mut flags = 0;
        if add_special {
            flags |= sys::EMBER_TOKENIZE_ADD_SPECIAL;
        }
        if parse_special {
            flags |= sys::EMBER_TOKENIZE_PARSE_SPECIAL;
        }
        let mut out = vec![0i32; text.len().saturating_add(4).min(i32::MAX as usize)];
        loop {
            let mut n = 0i32;
            let st = unsafe {
                sys::ember_tokenize(
                    self.raw,
                    text.as_ptr() as *const c_char,
                    text.len(),
                    out.as_mut_ptr(),
                    out.len() as i32,
                    flags,
                    &mut n,
                )
            };
            if st == sys::EMBER_ERR_BUFFER_TOO_SMALL && n as usize > out.len() {
                out.resize(n as usize, 0);
                continue;
            }
            check(st)?;
            out.truncate(n.max(0) as usize);
            return Ok(out);
        }
    }

    /// Token ids to bytes (which may split a UTF-8 character at the ends).
    pub fn detokenize_bytes(&self, tokens: &[i32], render_special: bool) -> Result<Vec<u8>> {
        let n = len_i32(tokens.len(), "tokens")?;
        let flags = if render_special { sys::EMBER_DETOKENIZE_RENDER_SPECIAL } else { 0 };
        read_bytes(|b, c, needed| unsafe { sys::ember_detokenize(self.raw, tokens.as_ptr(), n, flags, b, c, needed) })
    }

    /// Token ids to text (bytes that are not UTF-8 become U+FFFD). An id outside [0, n_vocab) is
    /// `InvalidArgument`.
    pub fn detokenize(&self, tokens: &[i32], render_special: bool) -> Result<String> {
        self.detokenize_bytes(tokens, render_special).map(into_string)
    }

    /// The bytes of one token (possibly part of a UTF-8 character); a control token's piece is empty
    /// unless `render_special`.
    pub fn piece(&self, token: i32, render_special: bool) -> Result<Vec<u8>> {
        let flags = if render_special { sys::EMBER_DETOKENIZE_RENDER_SPECIAL } else { 0 };
        read_bytes(|b, c, n| unsafe { sys::ember_token_piece(self.raw, token, flags, b, c, n) })
    }

    pub fn bos(&self) -> Option<i32> {
        opt_token(unsafe { sys::ember_token_bos(self.raw) })
    }
    pub fn eos(&self) -> Option<i32> {
        opt_token(unsafe { sys::ember_token_eos(self.raw) })
    }
    /// End of turn, e.g. <|im_end|>.
    pub fn eot(&self) -> Option<i32> {
        opt_token(unsafe { sys::ember_token_eot(self.raw) })
    }
    /// The token with a special role, if the vocabulary has one.
    pub fn special(&self, which: Special) -> Option<i32> {
        opt_token(unsafe { sys::ember_token_special(self.raw, which as i32) })
    }
    /// Whether a token ends generation (EOS, EOT and the like).
    pub fn is_eog(&self, token: i32) -> bool {
        unsafe { sys::ember_token_is_eog(self.raw, token) }
    }
    /// A token's attributes (empty for an id out of range).
    pub fn attr(&self, token: i32) -> TokenAttr {
        TokenAttr(unsafe { sys::ember_token_attr(self.raw, token) })
    }
    /// Whether tokenizing with `add_special` adds BOS.
    pub fn add_bos(&self) -> bool {
        unsafe { sys::ember_tokenizer_add_bos(self.raw) == 1 }
    }
    /// Whether tokenizing with `add_special` adds EOS.
    pub fn add_eos(&self) -> bool {
        unsafe { sys::ember_tokenizer_add_eos(self.raw) == 1 }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Samplers
// ---------------------------------------------------------------------------------------------------------

/// Sampling parameters. `Default` gives the library's defaults (`ember_sampler_params_init`).
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerParams {
    /// <= 0: greedy.
    pub temperature: f32,
    /// <= 0: off.
    pub top_k: i32,
    /// >= 1: off.
    pub top_p: f32,
    /// <= 0: off.
    pub min_p: f32,
    pub repeat_penalty: f32,
    pub penalty_last_n: i32,
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    /// `None`: a seed from the OS ([`Sampler::seed`] tells which).
    pub seed: Option<u64>,
}

impl Default for SamplerParams {
    fn default() -> Self {
        let mut p: sys::ember_sampler_params = unsafe { std::mem::zeroed() };
        unsafe { sys::ember_sampler_params_init(&mut p) };
        SamplerParams {
            temperature: p.temperature,
            top_k: p.top_k,
            top_p: p.top_p,
            min_p: p.min_p,
            repeat_penalty: p.repeat_penalty,
            penalty_last_n: p.penalty_last_n,
            frequency_penalty: p.frequency_penalty,
            presence_penalty: p.presence_penalty,
            seed: if p.seed == sys::EMBER_SEED_RANDOM { None } else { Some(p.seed) },
        }
    }
}

/// Chooses tokens from logits; keeps the penalties' history and the random state. One thread at a time.
pub struct Sampler {
    raw: *mut sys::ember_sampler,
}

unsafe impl Send for Sampler {}

impl Drop for Sampler {
    fn drop(&mut self) {
        unsafe { sys::ember_sampler_free(self.raw) };
    }
}

impl fmt::Debug for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sampler").field("seed", &self.seed().ok()).finish()
    }
}

impl Sampler {
    /// Always the highest logit (lowest id on ties).
    pub fn greedy() -> Result<Sampler> {
        ensure_abi()?;
        let mut raw = ptr::null_mut();
        check(unsafe { sys::ember_sampler_create_greedy(&mut raw) })?;
        Ok(Sampler { raw })
    }

    /// A sampler with `params`; `InvalidArgument` for values out of range or not finite.
    pub fn new(params: SamplerParams) -> Result<Sampler> {
        ensure_abi()?;
        let mut p: sys::ember_sampler_params = unsafe { std::mem::zeroed() };
        check(unsafe { sys::ember_sampler_params_init(&mut p) })?;
        p.temperature = params.temperature;
        p.top_k = params.top_k;
        p.top_p = params.top_p;
        p.min_p = params.min_p;
        p.repeat_penalty = params.repeat_penalty;
        p.penalty_last_n = params.penalty_last_n;
        p.frequency_penalty = params.frequency_penalty;
        p.presence_penalty = params.presence_penalty;
        p.seed = params.seed.unwrap_or(sys::EMBER_SEED_RANDOM);
        let mut raw = ptr::null_mut();
        check(unsafe { sys::ember_sampler_create(&p, &mut raw) })?;
        Ok(Sampler { raw })
    }

    /// The seed in use (the one drawn from the OS for a random seed): pass it back to repeat a run.
    pub fn seed(&self) -> Result<u64> {
        let mut s = 0u64;
        check(unsafe { sys::ember_sampler_seed(self.raw, &mut s) })?;
        Ok(s)
    }

    /// Picks a token from one position's logits and records it for the penalties.
    pub fn sample(&mut self, logits: &[f32]) -> Result<i32> {
        let n = len_i32(logits.len(), "logits")?;
        let mut t = -1;
        check(unsafe { sys::ember_sampler_sample(self.raw, logits.as_ptr(), n, &mut t) })?;
        Ok(t)
    }

    /// Records a token chosen elsewhere so the penalties see it.
    pub fn accept(&mut self, token: i32) -> Result<()> {
        check(unsafe { sys::ember_sampler_accept(self.raw, token) })
    }

    /// Forgets the history and reseeds with the seed in use (and restarts a grammar).
    pub fn reset(&mut self) -> Result<()> {
        check(unsafe { sys::ember_sampler_reset(self.raw) })
    }

    /// Constrains sampling to a GBNF grammar (llama.cpp's format) matched against `model`'s vocabulary: only
    /// tokens that continue it are drawn, and generation ends ([`StopReason::Eog`]) once it is complete.
    /// `None` (or `Some("")`) removes it. A bad grammar is `InvalidArgument` with a message naming the line
    /// and column, and the sampler keeps the grammar it had. The sampler does not borrow `model` afterwards.
    pub fn set_grammar(&mut self, model: &Model, gbnf: Option<&str>) -> Result<()> {
        let g = gbnf.map(|g| c_string(g, "the grammar")).transpose()?;
        let gp = g.as_ref().map_or(ptr::null(), |g| g.as_ptr());
        check(unsafe { sys::ember_sampler_set_grammar(self.raw, model.raw, gp) })
    }

    /// As [`Sampler::set_grammar`], with the grammar of the JSON documents a JSON Schema accepts (a subset:
    /// type, properties/required, items, enum, const, anyOf/oneOf, lengths...). `None`: any JSON value.
    pub fn set_json_schema(&mut self, model: &Model, schema_json: Option<&str>) -> Result<()> {
        let j = schema_json.map(|j| c_string(j, "the schema")).transpose()?;
        let jp = j.as_ref().map_or(ptr::null(), |j| j.as_ptr());
        check(unsafe { sys::ember_sampler_set_json_schema(self.raw, model.raw, jp) })
    }
}

/// The GBNF grammar of a JSON Schema, as [`Sampler::set_json_schema`] uses it.
pub fn json_schema_to_grammar(schema_json: &str) -> Result<String> {
    ensure_abi()?;
    let j = c_string(schema_json, "the schema")?;
    read_string(|b, c, n| unsafe { sys::ember_json_schema_to_grammar(j.as_ptr(), b, c, n) })
}

// ---------------------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------------------

/// What a streaming callback tells the generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Continue,
    /// End generation normally (stop reason [`StopReason::Callback`]).
    Stop,
}

impl From<bool> for Stream {
    /// `true`: continue.
    fn from(go_on: bool) -> Stream {
        if go_on {
            Stream::Continue
        } else {
            Stream::Stop
        }
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `max_tokens` reached.
    Length,
    /// An end-of-generation token was sampled (not evaluated).
    Eog,
    /// The callback returned [`Stream::Stop`].
    Callback,
    /// No room left in the context.
    ContextFull,
    /// The text reached a stop string ([`GenerateResult::stop_index`] says which).
    StopString,
    /// A reason this crate does not know (a newer library).
    Other(i32),
}

impl StopReason {
    fn from_raw(r: i32) -> StopReason {
        match r {
            0 => StopReason::Length,
            1 => StopReason::Eog,
            2 => StopReason::Callback,
            3 => StopReason::ContextFull,
            4 => StopReason::StopString,
            other => StopReason::Other(other),
        }
    }
}

/// Generation options. `Default` gives the library's defaults (`ember_generate_params_init`).
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateParams {
    /// Default 256; < 0: until the context is full.
    pub max_tokens: i32,
    /// Default true; false: end-of-generation tokens are generated like any other.
    pub stop_at_eog: bool,
    /// Stop strings (non-empty, at most 64): generation ends where the text first contains one; neither it
    /// nor what follows is streamed.
    pub stop: Vec<String>,
    /// (token, bias) pairs added to the logits before sampling (`f32::NEG_INFINITY` forbids a token).
    pub logit_bias: Vec<(i32, f32)>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        let mut p: sys::ember_generate_params = unsafe { std::mem::zeroed() };
        unsafe { sys::ember_generate_params_init(&mut p) };
        GenerateParams { max_tokens: p.max_tokens, stop_at_eog: p.stop_at_eog != 0, stop: Vec::new(), logit_bias: Vec::new() }
    }
}

/// How a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenerateResult {
    /// Tokens sampled, including the one that ended generation.
    pub n_generated: i32,
    pub stop: StopReason,
    /// With [`StopReason::StopString`], the index into [`GenerateParams::stop`].
    pub stop_index: Option<usize>,
}

struct StreamState<F, E> {
    f: F,
    error: Option<E>,
    panic: Option<Box<dyn Any + Send>>,
}

unsafe extern "C" fn stream_trampoline<F, E>(text: *const c_char, len: usize, token: i32, user_data: *mut c_void) -> i32
where
    F: FnMut(&str, i32) -> std::result::Result<Stream, E>,
{
    let state = &mut *(user_data as *mut StreamState<F, E>);
    if state.error.is_some() || state.panic.is_some() {
        return sys::EMBER_STREAM_ERROR;
    }
    let bytes: &[u8] = if len == 0 || text.is_null() { &[] } else { std::slice::from_raw_parts(text as *const u8, len) };
    let text = String::from_utf8_lossy(bytes);
    let f = &mut state.f;
    match panic::catch_unwind(AssertUnwindSafe(|| f(&text, token))) {
        Ok(Ok(Stream::Continue)) => sys::EMBER_STREAM_CONTINUE,
        Ok(Ok(Stream::Stop)) => sys::EMBER_STREAM_STOP,
        Ok(Err(e)) => {
            state.error = Some(e);
            sys::EMBER_STREAM_ERROR
        }
        Err(p) => {
            state.panic = Some(p);
            sys::EMBER_STREAM_ERROR
        }
    }
}

/// Runs `call` (generate_ex or chat_say_ex) with `params` and `callback` bridged to C. A panic in the
/// callback is caught in the trampoline and resumed here, after the C call has returned; an `Err` the
/// callback returned is returned as is.
fn run_generate<F, E>(
    params: &GenerateParams,
    callback: Option<F>,
    call: impl FnOnce(*const sys::ember_generate_params, *mut sys::ember_generate_result) -> i32,
) -> std::result::Result<GenerateResult, E>
where
    F: FnMut(&str, i32) -> std::result::Result<Stream, E>,
    E: From<Error>,
{
    let stop_c = params
        .stop
        .iter()
        .map(|s| c_string(s, "a stop string"))
        .collect::<Result<Vec<CString>>>()?;
    let stop_ptrs: Vec<*const c_char> = stop_c.iter().map(|s| s.as_ptr()).collect();
    let bias_tokens: Vec<i32> = params.logit_bias.iter().map(|b| b.0).collect();
    let bias_values: Vec<f32> = params.logit_bias.iter().map(|b| b.1).collect();

    let mut p: sys::ember_generate_params = unsafe { std::mem::zeroed() };
    check(unsafe { sys::ember_generate_params_init(&mut p) })?;
    p.max_tokens = params.max_tokens;
    p.stop_at_eog = params.stop_at_eog as i32;
    if !stop_ptrs.is_empty() {
        p.stop = stop_ptrs.as_ptr();
        p.n_stop = len_i32(stop_ptrs.len(), "stop strings")?;
    }
    if !bias_tokens.is_empty() {
        p.bias_tokens = bias_tokens.as_ptr();
        p.bias_values = bias_values.as_ptr();
        p.n_bias = len_i32(bias_tokens.len(), "logit bias")?;
    }
    let mut state = callback.map(|f| StreamState { f, error: None, panic: None });
    if let Some(s) = state.as_mut() {
        p.stream = Some(stream_trampoline::<F, E>);
        p.stream_user_data = s as *mut StreamState<F, E> as *mut c_void;
    }
    let mut r = sys::ember_generate_result {
        struct_size: std::mem::size_of::<sys::ember_generate_result>() as u32,
        n_generated: 0,
        stop_reason: 0,
        stop_index: -1,
    };
    let st = call(&p, &mut r);
    let result = check(st); // the last error, read right after the call
    if let Some(s) = state.as_mut() {
        if let Some(payload) = s.panic.take() {
            panic::resume_unwind(payload);
        }
        if let Some(e) = s.error.take() {
            return Err(e);
        }
    }
    result?;
    Ok(GenerateResult {
        n_generated: r.n_generated,
        stop: StopReason::from_raw(r.stop_reason),
        stop_index: if r.stop_index >= 0 { Some(r.stop_index as usize) } else { None },
    })
}

type NoCallback = fn(&str, i32) -> Result<Stream>;

// ---------------------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------------------

/// Session options. `Default` gives the library's defaults (`ember_session_params_init`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionParams {
    /// KV cache size in tokens; 0: the model's training context, at most 4096.
    pub n_ctx: i32,
    /// Prompt tokens per forward pass.
    pub n_batch: i32,
    /// 0: the model's default.
    pub n_threads: i32,
}

impl Default for SessionParams {
    fn default() -> Self {
        let mut p: sys::ember_session_params = unsafe { std::mem::zeroed() };
        unsafe { sys::ember_session_params_init(&mut p) };
        SessionParams { n_ctx: p.n_ctx, n_batch: p.n_batch, n_threads: p.n_threads }
    }
}

impl SessionParams {
    fn to_raw(&self) -> Result<sys::ember_session_params> {
        let mut p: sys::ember_session_params = unsafe { std::mem::zeroed() };
        check(unsafe { sys::ember_session_params_init(&mut p) })?;
        p.n_ctx = self.n_ctx;
        p.n_batch = self.n_batch;
        p.n_threads = self.n_threads;
        Ok(p)
    }
}

struct SessionPtr(*mut sys::ember_session);
unsafe impl Send for SessionPtr {} // ember_session_cancel / clear_cancel are thread-safe

#[derive(Clone)]
enum CancelTarget {
    // The session's pointer, nulled (under the lock) when the session is dropped.
    Session(Arc<Mutex<SessionPtr>>),
    // A flag the chat's abort callback polls.
    Flag(Arc<AtomicBool>),
}

/// Cancels the running (and every later) call of a session or chat from any thread, until
/// `clear_cancel`. Cancelling after the session is gone does nothing.
#[derive(Clone)]
pub struct CancelHandle {
    target: CancelTarget,
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CancelHandle")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl CancelHandle {
    /// Stops the running call with `Cancelled`, and every later one until `clear_cancel`.
    pub fn cancel(&self) -> Result<()> {
        match &self.target {
            CancelTarget::Session(s) => {
                let g = lock(s);
                if g.0.is_null() {
                    return Ok(());
                }
                check(unsafe { sys::ember_session_cancel(g.0) })
            }
            CancelTarget::Flag(f) => {
                f.store(true, Ordering::SeqCst);
                Ok(())
            }
        }
    }

    /// Lets the session run again.
    pub fn clear_cancel(&self) -> Result<()> {
        match &self.target {
            CancelTarget::Session(s) => {
                let g = lock(s);
                if g.0.is_null() {
                    return Ok(());
                }
                check(unsafe { sys::ember_session_clear_cancel(g.0) })
            }
            CancelTarget::Flag(f) => {
                f.store(false, Ordering::SeqCst);
                Ok(())
            }
        }
    }
}

/// One conversation over a model: KV cache, position, logits. `Send`; one thread at a time. It keeps the
/// model's weights alive, so it may outlive the [`Model`] it was made from.
pub struct Session {
    raw: *mut sys::ember_session,
    shared: Arc<Mutex<SessionPtr>>,
}

unsafe impl Send for Session {}

impl Drop for Session {
    fn drop(&mut self) {
        lock(&self.shared).0 = ptr::null_mut();
        unsafe { sys::ember_session_free(self.raw) };
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").field("position", &self.position()).field("n_ctx", &self.n_ctx()).finish()
    }
}

impl Session {
    /// A session over `model`.
    pub fn new(model: &Model, params: SessionParams) -> Result<Session> {
        let p = params.to_raw()?;
        let mut raw = ptr::null_mut();
        check(unsafe { sys::ember_session_create(model.raw, &p, &mut raw) })?;
        Ok(Session { raw, shared: Arc::new(Mutex::new(SessionPtr(raw))) })
    }

    /// Evaluates `tokens` at the current position; afterwards [`Session::logits`] belongs to the last one.
    /// `ContextFull` when they do not fit; on any failure the session is as it was.
    pub fn prefill(&mut self, tokens: &[i32]) -> Result<()> {
        let n = len_i32(tokens.len(), "tokens")?;
        check(unsafe { sys::ember_session_prefill(self.raw, tokens.as_ptr(), n) })
    }

    /// As [`Session::prefill`], keeping every token's logits for [`Session::logits_at`].
    pub fn prefill_all_logits(&mut self, tokens: &[i32]) -> Result<()> {
        let n = len_i32(tokens.len(), "tokens")?;
        check(unsafe { sys::ember_session_prefill_ex(self.raw, tokens.as_ptr(), n, sys::EMBER_PREFILL_ALL_LOGITS) })
    }

    /// Evaluates one token.
    pub fn decode(&mut self, token: i32) -> Result<()> {
        check(unsafe { sys::ember_session_decode(self.raw, token) })
    }

    /// The logits of the last evaluated position (n_vocab of them).
    pub fn logits(&self) -> Result<&[f32]> {
        let mut p: *const f32 = ptr::null();
        let mut n = 0i32;
        check(unsafe { sys::ember_session_logits(self.raw, &mut p, &mut n) })?;
        Ok(if p.is_null() || n <= 0 { &[] } else { unsafe { std::slice::from_raw_parts(p, n as usize) } })
    }

    /// The logits of the i-th token of the last [`Session::prefill_all_logits`].
    pub fn logits_at(&self, i: usize) -> Result<&[f32]> {
        let i = len_i32(i, "the index")?;
        let mut p: *const f32 = ptr::null();
        let mut n = 0i32;
        check(unsafe { sys::ember_session_logits_at(self.raw, i, &mut p, &mut n) })?;
        Ok(if p.is_null() || n <= 0 { &[] } else { unsafe { std::slice::from_raw_parts(p, n as usize) } })
    }

    /// Tokens in the cache.
    pub fn position(&self) -> i32 {
        unsafe { sys::ember_session_position(self.raw) }
    }

    /// The context size.
    pub fn n_ctx(&self) -> i32 {
        unsafe { sys::ember_session_n_ctx(self.raw) }
    }

    /// Forgets the tokens from `position` on (logits too).
    pub fn rewind(&mut self, position: i32) -> Result<()> {
        check(unsafe { sys::ember_session_rewind(self.raw, position) })
    }

    /// Forgets every token.
    pub fn reset(&mut self) -> Result<()> {
        check(unsafe { sys::ember_session_reset(self.raw) })
    }

    /// A handle that cancels this session's calls from another thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle { target: CancelTarget::Session(self.shared.clone()) }
    }

    /// Sticky cancel (see [`CancelHandle::cancel`]).
    pub fn cancel(&self) -> Result<()> {
        check(unsafe { sys::ember_session_cancel(self.raw) })
    }

    /// Lets the session run again after a cancel.
    pub fn clear_cancel(&self) -> Result<()> {
        check(unsafe { sys::ember_session_clear_cancel(self.raw) })
    }

    /// Samples, evaluates and streams tokens from the current logits (so prefill first). `callback` gets each
    /// piece of text as it completes and the token that completed it; it returns [`Stream::Stop`] to end
    /// generation, or an `Err` that ends it and is returned as is. A panic in the callback ends generation
    /// and is resumed after ember has returned. The token that ended generation is not evaluated.
    pub fn generate<F, E>(
        &mut self,
        sampler: &mut Sampler,
        params: &GenerateParams,
        callback: F,
    ) -> std::result::Result<GenerateResult, E>
    where
        F: FnMut(&str, i32) -> std::result::Result<Stream, E>,
        E: From<Error>,
    {
        let (s, sm) = (self.raw, sampler.raw);
        run_generate(params, Some(callback), |p, r| unsafe { sys::ember_session_generate_ex(s, sm, p, r) })
    }

    /// [`Session::generate`] without a callback.
    pub fn generate_quiet(&mut self, sampler: &mut Sampler, params: &GenerateParams) -> Result<GenerateResult> {
        let (s, sm) = (self.raw, sampler.raw);
        run_generate::<NoCallback, Error>(params, None, |p, r| unsafe { sys::ember_session_generate_ex(s, sm, p, r) })
    }

    /// [`Session::generate`], collecting the text.
    pub fn generate_text(&mut self, sampler: &mut Sampler, params: &GenerateParams) -> Result<(String, GenerateResult)> {
        let mut text = String::new();
        let r = self.generate(sampler, params, |piece, _| {
            text.push_str(piece);
            Ok::<_, Error>(Stream::Continue)
        })?;
        Ok((text, r))
    }

    /// Saves the state (tokens, KV cache, last logits) atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let c = c_path(path.as_ref())?;
        check(unsafe { sys::ember_session_save(self.raw, c.as_ptr()) })
    }

    /// Restores a state saved by [`Session::save`]; on failure the session is as it was.
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let c = c_path(path.as_ref())?;
        check(unsafe { sys::ember_session_load(self.raw, c.as_ptr()) })
    }

    /// Applies LoRA adapters, each with its scale, to every token evaluated from now on; an empty slice
    /// removes them. A scale of 0 gives the base model's logits exactly. Tokens already cached keep what they
    /// were computed with: [`Session::reset`] or [`Session::rewind`] to recompute them. Each adapter must be
    /// loaded for this session's model and appear once, scales finite in [-1000, 1000]: else
    /// `InvalidArgument`, and the session keeps its adapters. The session keeps the adapters alive, so they
    /// may be dropped while it uses them.
    pub fn set_adapters(&mut self, adapters: &[(&Adapter, f32)]) -> Result<()> {
        let n = len_i32(adapters.len(), "adapters")?;
        let raws: Vec<*const sys::ember_adapter> = adapters.iter().map(|(a, _)| a.raw as *const _).collect();
        let scales: Vec<f32> = adapters.iter().map(|&(_, s)| s).collect();
        check(unsafe { sys::ember_session_set_adapters(self.raw, raws.as_ptr(), scales.as_ptr(), n) })
    }
}

// ---------------------------------------------------------------------------------------------------------
// LoRA adapters
// ---------------------------------------------------------------------------------------------------------

/// A LoRA adapter loaded for a model; applied per session with [`Session::set_adapters`]. Immutable,
/// `Send + Sync`. It keeps the model's weights alive, so it may outlive the [`Model`] it was loaded for.
pub struct Adapter {
    raw: *mut sys::ember_adapter,
}

unsafe impl Send for Adapter {}
unsafe impl Sync for Adapter {}

impl Drop for Adapter {
    fn drop(&mut self) {
        unsafe { sys::ember_adapter_free(self.raw) };
    }
}

impl fmt::Debug for Adapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Adapter").field("rank", &self.rank()).field("n_targets", &self.n_targets()).finish()
    }
}

impl Adapter {
    /// Loads an adapter for `model` from a GGUF adapter file (llama.cpp's `convert_lora_to_gguf.py`) or a
    /// PEFT folder (`adapter_config.json` + `adapter_model.safetensors`). Fails with `Io`, `BadFile` (a
    /// malformed adapter), `InvalidArgument` (an adapter made for another model) or `Unsupported`.
    pub fn load(model: &Model, path: impl AsRef<Path>) -> Result<Adapter> {
        let c = c_path(path.as_ref())?;
        let mut raw = ptr::null_mut();
        check(unsafe { sys::ember_adapter_load(model.raw, c.as_ptr(), &mut raw) })?;
        Ok(Adapter { raw })
    }

    /// The largest rank of its projections.
    pub fn rank(&self) -> i32 {
        unsafe { sys::ember_adapter_rank(self.raw) }
    }

    /// How many projections it changes.
    pub fn n_targets(&self) -> i32 {
        unsafe { sys::ember_adapter_n_targets(self.raw) }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Chats
// ---------------------------------------------------------------------------------------------------------

/// What a chat does when the conversation outgrows its context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatStrategy {
    /// Leave out the oldest turns down to half the room, then keep that start.
    Window = 0,
    /// Keep as many recent turns as fit.
    Budget = 1,
    /// As Window, and the model summarises the turns left out into a kept note.
    Summary = 2,
}

/// Chat options. `Default` gives the library's defaults (`ember_chat_params_init`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatParams {
    /// System message; `None` or "": none.
    pub system: Option<String>,
    /// False answers each turn alone.
    pub history: bool,
    /// Context positions kept for the reply.
    pub reserve: i32,
    pub strategy: ChatStrategy,
}

impl Default for ChatParams {
    fn default() -> Self {
        let mut p: sys::ember_chat_params = unsafe { std::mem::zeroed() };
        unsafe { sys::ember_chat_params_init(&mut p) };
        ChatParams {
            system: static_str(p.system).filter(|s| !s.is_empty()),
            history: p.history,
            reserve: p.reserve,
            strategy: match p.strategy {
                1 => ChatStrategy::Budget,
                2 => ChatStrategy::Summary,
                _ => ChatStrategy::Window,
            },
        }
    }
}

unsafe extern "C" fn abort_trampoline(user_data: *mut c_void) -> bool {
    (*(user_data as *const AtomicBool)).load(Ordering::SeqCst)
}

/// A conversation over its own session with the model's chat template; the KV cache is reused across turns.
pub struct Chat {
    raw: *mut sys::ember_chat,
    cancel: Arc<AtomicBool>, // polled by the session's abort callback; outlives `raw`
}

unsafe impl Send for Chat {}

impl Drop for Chat {
    fn drop(&mut self) {
        unsafe { sys::ember_chat_free(self.raw) };
    }
}

impl fmt::Debug for Chat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chat").field("n_messages", &self.n_messages()).finish()
    }
}

impl Chat {
    pub fn new(model: &Model, session: SessionParams, params: ChatParams) -> Result<Chat> {
        let cancel = Arc::new(AtomicBool::new(false));
        let mut sp = session.to_raw()?;
        sp.abort = Some(abort_trampoline);
        sp.abort_user_data = Arc::as_ptr(&cancel) as *mut c_void;
        let system = match &params.system {
            Some(s) => Some(c_string(s, "the system message")?),
            None => None,
        };
        let mut p: sys::ember_chat_params = unsafe { std::mem::zeroed() };
        check(unsafe { sys::ember_chat_params_init(&mut p) })?;
        p.system = system.as_ref().map_or(ptr::null(), |s| s.as_ptr());
        p.history = params.history;
        p.reserve = params.reserve;
        p.strategy = params.strategy as i32;
        let mut raw = ptr::null_mut();
        check(unsafe { sys::ember_chat_create(model.raw, &sp, &p, &mut raw) })?;
        Ok(Chat { raw, cancel })
    }

    /// One turn: adds `user`, streams the reply through `callback` (as [`Session::generate`]) and adds it to
    /// the conversation. On failure the conversation is as it was.
    pub fn say<F, E>(
        &mut self,
        sampler: &mut Sampler,
        user: &str,
        params: &GenerateParams,
        callback: F,
    ) -> std::result::Result<GenerateResult, E>
    where
        F: FnMut(&str, i32) -> std::result::Result<Stream, E>,
        E: From<Error>,
    {
        let u = c_string(user, "the message")?;
        let (c, sm) = (self.raw, sampler.raw);
        run_generate(params, Some(callback), |p, r| unsafe { sys::ember_chat_say_ex(c, sm, u.as_ptr(), p, r) })
    }

    /// [`Chat::say`], collecting the reply.
    pub fn say_text(&mut self, sampler: &mut Sampler, user: &str, params: &GenerateParams) -> Result<(String, GenerateResult)> {
        let mut text = String::new();
        let r = self.say(sampler, user, params, |piece, _| {
            text.push_str(piece);
            Ok::<_, Error>(Stream::Continue)
        })?;
        Ok((text, r))
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) -> Result<()> {
        check(unsafe { sys::ember_chat_reset(self.raw) })
    }

    /// Messages in the conversation (user and assistant turns).
    pub fn n_messages(&self) -> i32 {
        unsafe { sys::ember_chat_n_messages(self.raw) }
    }

    /// A handle that cancels this chat's turns from another thread (sticky until `clear_cancel`).
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle { target: CancelTarget::Flag(self.cancel.clone()) }
    }

    /// Saves the conversation and its KV cache atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let c = c_path(path.as_ref())?;
        check(unsafe { sys::ember_chat_save(self.raw, c.as_ptr()) })
    }

    /// Restores a conversation saved by [`Chat::save`].
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let c = c_path(path.as_ref())?;
        check(unsafe { sys::ember_chat_load(self.raw, c.as_ptr()) })
    }
}

#[cfg(test)]
mod layout_tests {
    use super::sys::*;
    use std::mem::size_of;

    #[test]
    fn struct_sizes_match_the_header() {
        // x86_64 / aarch64 LP64 sizes of ember.h's structs.
        if size_of::<usize>() == 8 {
            assert_eq!(size_of::<ember_model_params>(), 48);
            assert_eq!(size_of::<ember_session_params>(), 32);
            assert_eq!(size_of::<ember_generate_params>(), 88);
            assert_eq!(size_of::<ember_generate_result>(), 16);
            assert_eq!(size_of::<ember_chat_params>(), 32);
            assert_eq!(size_of::<ember_sampler_params>(), 48);
            assert_eq!(size_of::<ember_memory_estimate>(), 40);
        }
    }
}
