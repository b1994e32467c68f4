//! bindings/SPEC.md, item by item (one test per item, `item_NN_...`). The model comes from EMBER_TEST_MODEL.

use ember::{
    Adapter, Chat, ChatParams, Error, GenerateParams, GenerateResult, Model, ModelParams, Sampler, SamplerParams, Session,
    SessionParams, Status, StopReason, Stream,
};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;

const PROMPT: &str = "Once upon a time";
const PROMPT_TOKENS: [i32; 5] = [1, 403, 407, 261, 378];
// hf/llama-lora/golden.json: its prompt, and the first logits peft gives after it with the adapter at scale 1.
const LORA_PROMPT: &str = "Once upon a time, the quick robot counted 12345 tokens.";
const LORA_FIRST_LOGITS: [f32; 8] = [-0.628006, -0.624651, -0.801815, -0.77162, -0.501407, -0.247845, -0.116984, -0.388983];
const GOLDEN: [i32; 16] = [432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337];

fn model_path() -> PathBuf {
    PathBuf::from(std::env::var_os("EMBER_TEST_MODEL").expect("set EMBER_TEST_MODEL to tests/data/models/stories260K.gguf"))
}

/// tests/data/hf: EMBER_TEST_HF, else `../hf` next to the model's folder.
fn hf_path(name: &str) -> PathBuf {
    let root = match std::env::var_os("EMBER_TEST_HF") {
        Some(p) => PathBuf::from(p),
        None => std::fs::canonicalize(model_path()).unwrap().parent().unwrap().parent().unwrap().join("hf"),
    };
    root.join(name)
}

fn params() -> ModelParams {
    ModelParams { n_threads: 1, ..ModelParams::default() }
}

fn session_params() -> SessionParams {
    SessionParams { n_threads: 1, ..SessionParams::default() }
}

fn load() -> Model {
    Model::load(model_path(), params()).expect("the test model loads")
}

fn prefilled(model: &Model) -> Session {
    let mut s = Session::new(model, session_params()).unwrap();
    s.prefill(&PROMPT_TOKENS).unwrap();
    s
}

fn greedy_params(max_tokens: i32) -> GenerateParams {
    GenerateParams { max_tokens, stop_at_eog: false, ..GenerateParams::default() }
}

/// Greedy generation of 16 tokens from the prompt: (tokens streamed, text streamed, result).
fn greedy_run(model: &Model) -> (Vec<i32>, String, GenerateResult) {
    let mut session = prefilled(model);
    let mut sampler = Sampler::greedy().unwrap();
    let mut tokens = Vec::new();
    let mut text = String::new();
    let r = session
        .generate(&mut sampler, &greedy_params(16), |piece, token| {
            tokens.push(token);
            text.push_str(piece);
            Ok::<_, Error>(Stream::Continue)
        })
        .unwrap();
    (tokens, text, r)
}

fn reference_text(model: &Model) -> String {
    model.tokenizer().detokenize(&GOLDEN, false).unwrap()
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ember-rust-{}-{}", std::process::id(), name))
}

fn assert_status<T: std::fmt::Debug>(r: Result<T, Error>, status: Status) -> Error {
    let e = r.expect_err("an error");
    assert_eq!(e.status(), status, "{}", e);
    assert!(!e.message().is_empty(), "the error carries a message: {:?}", e);
    // Display and std::error::Error.
    let boxed: Box<dyn std::error::Error> = Box::new(e.clone());
    assert!(boxed.to_string().contains(e.message()));
    e
}

/// A JSON array of strings to its strings (enough JSON for item 3).
fn parse_json_string_array(json: &str) -> Vec<String> {
    let mut chars = json.trim().chars().peekable();
    assert_eq!(chars.next(), Some('['));
    let mut out = Vec::new();
    loop {
        while chars.peek().map_or(false, |c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            Some(']') => break,
            Some(',') => continue,
            Some('"') => {
                let mut s = String::new();
                loop {
                    match chars.next().expect("unterminated string") {
                        '"' => break,
                        '\\' => match chars.next().unwrap() {
                            'n' => s.push('\n'),
                            't' => s.push('\t'),
                            'r' => s.push('\r'),
                            'b' => s.push('\u{8}'),
                            'f' => s.push('\u{c}'),
                            'u' => {
                                let hex: String = (0..4).map(|_| chars.next().unwrap()).collect();
                                let cp = u32::from_str_radix(&hex, 16).unwrap();
                                s.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                            }
                            c => s.push(c),
                        },
                        c => s.push(c),
                    }
                }
                out.push(s);
            }
            other => panic!("not a JSON array of strings: {:?}", other),
        }
    }
    out
}

#[test]
fn item_01_abi_check_at_load() {
    assert_eq!(ember::abi_version(), 1);
    assert_eq!(ember::ABI_VERSION, 1);
    assert!(ember::check_abi_version(1).is_ok());
    let e = ember::check_abi_version(2).unwrap_err();
    assert_eq!(e.status(), Status::Unsupported);
    assert!(e.message().contains("version 2") && e.message().contains("version 1"), "{}", e);
    let v = ember::version();
    let parts: Vec<&str> = v.split('.').collect();
    assert_eq!(parts.len(), 3, "{}", v);
    assert!(parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())), "{}", v);
    let n: Vec<u32> = parts.iter().map(|p| p.parse().unwrap()).collect();
    assert_eq!(ember::version_number(), n[0] * 1_000_000 + n[1] * 1000 + n[2]);
    load(); // the check runs at the first load and passes
}

#[test]
fn item_02_load_and_facts() {
    let model = load();
    assert_eq!(model.n_vocab(), 512);
    assert_eq!(model.architecture().unwrap(), "llama");
    assert!(model.n_params() > 0);
    assert!(model.size() > 0);
    assert_eq!(model.backend().unwrap(), "cpu");
    assert!(ember::backends().iter().any(|b| b == "cpu"));
    assert!(model.n_layers() > 0 && model.n_embd() > 0 && model.n_ctx_train() > 0);
    // Model: Send + Sync, used from threads at once.
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Model>();
    let m = &model;
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(move || assert_eq!(m.tokenizer().tokenize(PROMPT, true, false).unwrap(), PROMPT_TOKENS));
        }
    });
}

#[test]
fn item_03_metadata() {
    let model = load();
    let keys = model.meta_keys().unwrap();
    assert!(keys.iter().any(|k| k == "general.architecture"));
    assert!(keys.iter().any(|k| k == "tokenizer.ggml.tokens"));
    assert_eq!(model.meta("general.architecture").unwrap(), "llama");
    assert_eq!(model.meta_type("tokenizer.ggml.tokens").unwrap(), ember::MetaType::Array);
    let tokens = parse_json_string_array(&model.meta_json("tokenizer.ggml.tokens").unwrap());
    assert_eq!(tokens.len(), 512);
    assert_status(model.meta("no.such.key"), Status::NotFound);
    assert_status(model.meta_json("no.such.key"), Status::NotFound);
    assert_status(model.meta_type("no.such.key"), Status::NotFound);
}

#[test]
fn item_04_tokenize_detokenize() {
    let model = load();
    let tok = model.tokenizer();
    assert_eq!(tok.tokenize(PROMPT, true, false).unwrap(), PROMPT_TOKENS);
    assert_eq!(tok.detokenize(&PROMPT_TOKENS, false).unwrap(), PROMPT);
    assert_status(tok.detokenize(&[512], false), Status::InvalidArgument);
    assert_eq!(tok.tokenize("", true, false).unwrap(), vec![1]);
    assert_eq!(tok.bos(), Some(1));
    assert_eq!(tok.special(ember::Special::Bos), Some(1));
    assert!(tok.attr(1).contains(ember::TokenAttr::CONTROL));
    assert!(tok.piece(403, false).is_ok());
    assert_eq!(tok.n_vocab(), 512);
}

#[test]
fn item_05_greedy_generation() {
    let model = load();
    let (tokens, text, r) = greedy_run(&model);
    assert_eq!(tokens, GOLDEN);
    assert_eq!(text, reference_text(&model));
    assert_eq!(r.stop, StopReason::Length);
    assert_eq!(r.n_generated, 16);
}

#[test]
fn item_06_streaming_early_stop() {
    let model = load();
    let mut session = prefilled(&model);
    let mut sampler = Sampler::greedy().unwrap();
    let mut pieces = 0;
    let r = session
        .generate(&mut sampler, &greedy_params(16), |_piece, _token| {
            pieces += 1;
            Ok::<_, Error>(if pieces == 3 { Stream::Stop } else { Stream::Continue })
        })
        .unwrap();
    assert_eq!(pieces, 3);
    assert_eq!(r.stop, StopReason::Callback);
    assert_eq!(session.position(), 5 + 3 - 1);
}

#[test]
fn item_07_stop_strings() {
    let model = load();
    let reference = reference_text(&model);
    let stop = reference[10..14].to_string();
    let expected = &reference[..reference.find(&stop).unwrap()];
    let mut session = prefilled(&model);
    let mut sampler = Sampler::greedy().unwrap();
    let params = GenerateParams { stop: vec![stop.clone()], ..greedy_params(16) };
    let (text, r) = session.generate_text(&mut sampler, &params).unwrap();
    assert_eq!(text, expected);
    assert_eq!(r.stop, StopReason::StopString);
    assert_eq!(r.stop_index, Some(0));
}

#[test]
fn item_08_cancel_from_another_thread() {
    let model = load();
    let mut session = prefilled(&model);
    let mut sampler = Sampler::greedy().unwrap();
    let handle = session.cancel_handle();
    let (first_tx, first_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let canceller = thread::spawn(move || {
        first_rx.recv().unwrap();
        handle.cancel().unwrap();
        done_tx.send(()).unwrap();
    });
    let mut pieces = 0;
    let r = session.generate(&mut sampler, &greedy_params(-1), |_piece, _token| {
        pieces += 1;
        if pieces == 1 {
            first_tx.send(()).unwrap();
            done_rx.recv().unwrap(); // the cancel has been made before the next token
        }
        Ok::<_, Error>(Stream::Continue)
    });
    canceller.join().unwrap();
    assert_status(r, Status::Cancelled);
    assert!(pieces >= 1);
    // Sticky until cleared.
    assert_status(session.generate_quiet(&mut sampler, &greedy_params(4)), Status::Cancelled);
    session.clear_cancel().unwrap();
    let r = session.generate_quiet(&mut sampler, &greedy_params(4)).unwrap();
    assert_eq!(r.n_generated, 4);
    assert_eq!(r.stop, StopReason::Length);
}

#[test]
fn item_09_errors_reach_rust() {
    let missing = temp_path("missing.gguf");
    let e = assert_status(Model::load(&missing, params()), Status::Io);
    assert!(e.message().contains(missing.to_str().unwrap()), "{}", e);

    let not_gguf = temp_path("not-gguf.gguf");
    std::fs::write(&not_gguf, b"this is not a GGUF file, only some text to read").unwrap();
    let r = Model::load(&not_gguf, params());
    std::fs::remove_file(&not_gguf).ok();
    assert_status(r, Status::BadFile);

    assert_status(Model::load(model_path(), ModelParams { n_threads: -1, ..params() }), Status::InvalidArgument);
    assert_status(Model::load(model_path(), ModelParams { quantize: Some("q7".into()), ..params() }), Status::InvalidArgument);
    let q = Model::load(model_path(), ModelParams { quantize: Some("q8_0".into()), ..params() }).unwrap();
    assert_eq!(q.meta("general.file_type").unwrap(), "7");
    let model = load();
    assert_status(Session::new(&model, SessionParams { n_threads: -1, ..session_params() }), Status::InvalidArgument);

    assert_status(Sampler::new(SamplerParams { temperature: f32::NAN, ..SamplerParams::default() }), Status::InvalidArgument);

    let e = Session::new(&model, SessionParams { n_ctx: 1 << 30, ..session_params() }).unwrap_err();
    assert!(matches!(e.status(), Status::OutOfMemory | Status::InvalidArgument), "{}", e);
    assert!(!e.message().is_empty());

    let mut session = Session::new(&model, session_params()).unwrap();
    assert_status(session.decode(-1), Status::InvalidArgument);
    // Errors found by the binding itself carry a status and message too.
    assert_status(model.meta("a\0b"), Status::InvalidArgument);
}

#[test]
fn item_10_callback_that_fails() {
    let model = load();

    // A panic in the callback: generation ends, the panic resumes in the caller, no further piece.
    let mut session = prefilled(&model);
    let mut sampler = Sampler::greedy().unwrap();
    let mut pieces = 0;
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        session.generate(&mut sampler, &greedy_params(16), |_piece, _token| -> Result<Stream, Error> {
            pieces += 1;
            panic!("callback panic {}", 42);
        })
    }));
    let payload = caught.expect_err("the panic reaches the caller");
    let msg = match payload.downcast_ref::<String>() {
        Some(s) => s.clone(),
        None => payload.downcast_ref::<&str>().map(|s| s.to_string()).unwrap_or_default(),
    };
    assert_eq!(msg, "callback panic 42");
    assert_eq!(pieces, 1);
    assert_eq!(session.position(), 5, "the failing token is not evaluated");

    // An error of the caller's own type comes back as is.
    #[derive(Debug, PartialEq)]
    enum MyError {
        Mine(&'static str),
        Ember(Status),
    }
    impl From<Error> for MyError {
        fn from(e: Error) -> Self {
            MyError::Ember(e.status())
        }
    }
    let mut session = prefilled(&model);
    let mut pieces = 0;
    let r = session.generate(&mut sampler, &greedy_params(16), |_piece, _token| {
        pieces += 1;
        if pieces == 2 {
            Err(MyError::Mine("stop it"))
        } else {
            Ok(Stream::Continue)
        }
    });
    assert_eq!(r, Err(MyError::Mine("stop it")));
    assert_eq!(pieces, 2);

    // An ember::Error from the callback, boxed errors work too.
    let mut session = prefilled(&model);
    let r: Result<GenerateResult, Box<dyn std::error::Error + Send + Sync>> =
        session.generate(&mut sampler, &greedy_params(16), |_piece, _token| Err("boxed failure".into()));
    assert_eq!(r.unwrap_err().to_string(), "boxed failure");
}

#[test]
fn item_11_freeing_in_any_order() {
    let model = load();
    let mut session = prefilled(&model);
    let handle = session.cancel_handle();
    drop(model); // the session keeps the weights alive
    let mut sampler = Sampler::greedy().unwrap();
    let mut tokens = Vec::new();
    session
        .generate(&mut sampler, &greedy_params(16), |_p, t| {
            tokens.push(t);
            Ok::<_, Error>(Stream::Continue)
        })
        .unwrap();
    assert_eq!(tokens, GOLDEN);
    drop(session); // dropped exactly once: Rust has no second close
    handle.cancel().unwrap(); // a handle outliving its session does nothing
    handle.clear_cancel().unwrap();
    drop(sampler);

    // Objects left to go out of scope together, in declaration-reverse order, and a session moved to
    // another thread and dropped there.
    let model = load();
    let session = prefilled(&model);
    let t = thread::spawn(move || drop(session));
    drop(model);
    t.join().unwrap();
    let model = load();
    let _chat = Chat::new(&model, session_params(), ChatParams::default()).unwrap();
    let _tok = model.tokenizer();
    let _sampler = Sampler::greedy().unwrap();
}

fn seeded_tokens(model: &Model, sampler: &mut Sampler) -> Vec<i32> {
    let mut session = prefilled(model);
    let mut tokens = Vec::new();
    session
        .generate(sampler, &greedy_params(12), |_p, t| {
            tokens.push(t);
            Ok::<_, Error>(Stream::Continue)
        })
        .unwrap();
    assert_eq!(tokens.len(), 12);
    tokens
}

#[test]
fn item_12_seeds() {
    let model = load();
    let p = SamplerParams { temperature: 1.0, seed: Some(1234), ..SamplerParams::default() };
    let mut a = Sampler::new(p.clone()).unwrap();
    let mut b = Sampler::new(p).unwrap();
    assert_eq!(a.seed().unwrap(), 1234);
    assert_eq!(seeded_tokens(&model, &mut a), seeded_tokens(&model, &mut b));

    let random = SamplerParams { temperature: 1.0, seed: None, ..SamplerParams::default() };
    let mut r = Sampler::new(random.clone()).unwrap();
    let seed = r.seed().unwrap();
    assert_ne!(seed, u64::MAX);
    let first = seeded_tokens(&model, &mut r);
    let mut again = Sampler::new(SamplerParams { seed: Some(seed), ..random }).unwrap();
    assert_eq!(seeded_tokens(&model, &mut again), first);
}

#[test]
fn item_13_all_logits() {
    let model = load();
    let mut session = Session::new(&model, session_params()).unwrap();
    session.prefill_all_logits(&PROMPT_TOKENS).unwrap();
    let at4 = session.logits_at(4).unwrap().to_vec();
    let last = session.logits().unwrap();
    assert_eq!(at4.len(), 512);
    assert_eq!(at4, last);
    assert_status(session.logits_at(5), Status::InvalidArgument);
}

#[test]
fn item_14_chat() {
    let model = load();
    let mut chat = Chat::new(&model, session_params(), ChatParams::default()).unwrap();
    let mut sampler = Sampler::greedy().unwrap();
    let params = GenerateParams { max_tokens: 8, ..GenerateParams::default() };
    let (text, r) = chat.say_text(&mut sampler, "Hello", &params).unwrap();
    assert!(!text.is_empty());
    assert!(r.n_generated <= 8 && r.n_generated > 0);
    assert_eq!(chat.n_messages(), 2);
}

#[test]
fn item_15_load_from_memory() {
    let bytes = std::fs::read(model_path()).unwrap();
    let model = Model::load_from_memory(&bytes, params()).unwrap();
    drop(bytes);
    let (tokens, _text, r) = greedy_run(&model);
    assert_eq!(tokens, GOLDEN);
    assert_eq!(r.stop, StopReason::Length);
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn item_16_lora_adapters() {
    let model = Model::load(hf_path("llama"), params()).unwrap();
    let peft = Adapter::load(&model, hf_path("llama-lora")).unwrap();
    let gguf = Adapter::load(&model, hf_path("llama-lora/adapter.gguf")).unwrap();
    for a in [&peft, &gguf] {
        assert_eq!(a.rank(), 4);
        assert_eq!(a.n_targets(), 14);
    }
    let tokens = model.tokenizer().tokenize(LORA_PROMPT, true, false).unwrap();
    assert_eq!(tokens.len(), 29);
    let mut s = Session::new(&model, session_params()).unwrap();
    let logits = |s: &mut Session, adapters: Option<&[(&Adapter, f32)]>| -> Vec<f32> {
        if let Some(a) = adapters {
            s.set_adapters(a).unwrap();
        }
        s.reset().unwrap();
        s.prefill(&tokens).unwrap();
        s.logits().unwrap().to_vec()
    };

    let argmax = |v: &[f32]| (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best });
    let base = logits(&mut s, None);
    assert_eq!(argmax(&base), 161);
    let with_peft = logits(&mut s, Some(&[(&peft, 1.0)]));
    assert_eq!(argmax(&with_peft), 263);
    assert!(max_diff(&with_peft[..8], &LORA_FIRST_LOGITS) < 3e-3, "{:?}", &with_peft[..8]);
    assert_eq!(logits(&mut s, Some(&[(&gguf, 1.0)])), with_peft);
    assert_eq!(logits(&mut s, Some(&[(&peft, 1.0), (&gguf, 0.0)])), with_peft);
    assert!(max_diff(&logits(&mut s, Some(&[(&peft, 0.5), (&gguf, 0.5)])), &with_peft) < 1e-3);
    assert_eq!(logits(&mut s, Some(&[(&peft, 0.0)])), base);
    assert_eq!(logits(&mut s, Some(&[])), base);

    let e = assert_status(Adapter::load(&model, hf_path("no-such-adapter")), Status::Io);
    assert!(e.message().contains("no-such-adapter"), "{}", e);
    let stories = load();
    assert_status(Adapter::load(&stories, hf_path("llama-lora")), Status::InvalidArgument);
    s.set_adapters(&[(&peft, 1.0)]).unwrap();
    assert_status(s.set_adapters(&[(&peft, f32::NAN)]), Status::InvalidArgument);
    assert_status(s.set_adapters(&[(&peft, 1.0), (&peft, 1.0)]), Status::InvalidArgument);
    assert_eq!(logits(&mut s, None), with_peft, "a failed set_adapters keeps the session's adapters");

    // The session keeps its adapters, and they their model, past drop (a dropped adapter cannot be passed).
    drop(peft);
    drop(gguf);
    drop(model);
    assert_eq!(logits(&mut s, None), with_peft);
    assert_eq!(logits(&mut s, Some(&[])), base);

    // An adapter outlives its Model and may move to another thread.
    let model = Model::load(hf_path("llama"), params()).unwrap();
    let adapter = Adapter::load(&model, hf_path("llama-lora")).unwrap();
    drop(model);
    let adapter = thread::spawn(move || adapter).join().unwrap();
    assert_eq!(format!("{:?}", adapter), "Adapter { rank: 4, n_targets: 14 }");
}

// Beyond the list: the rest of the API, exercised once.

/// Item 17's model: SmolLM2-135M-Instruct, where scripts/setup.sh fetches it (the C++ tests look there too);
/// `None` (the item is skipped) when it is absent.
fn smollm2_path() -> Option<PathBuf> {
    let dir = match std::env::var_os("EMBER_MODELS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/ember/models"),
    };
    let p = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("item 17 skipped: {} is absent (scripts/setup.sh fetches it)", p.display());
        None
    }
}

/// A JSON value, as far as item 17 needs one.
#[derive(Debug, PartialEq)]
enum Json {
    Str(String),
    Int(i64),
    Other(String),
}

/// A flat JSON object (no nested objects or arrays) to its members; `None` when it is not one.
fn parse_flat_json_object(text: &str) -> Option<Vec<(String, Json)>> {
    fn skip_ws(s: &mut std::iter::Peekable<std::str::Chars<'_>>) {
        while s.peek().map_or(false, |c| c.is_whitespace()) {
            s.next();
        }
    }
    fn string(s: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
        let mut out = String::new();
        loop {
            match s.next()? {
                '"' => return Some(out),
                '\\' => match s.next()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'u' => {
                        let hex: String = (0..4).map(|_| s.next()).collect::<Option<_>>()?;
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    c => out.push(c),
                },
                c => out.push(c),
            }
        }
    }
    let mut s = text.chars().peekable();
    skip_ws(&mut s);
    if s.next()? != '{' {
        return None;
    }
    let mut members = Vec::new();
    skip_ws(&mut s);
    if s.peek() == Some(&'}') {
        s.next();
    } else {
        loop {
            skip_ws(&mut s);
            if s.next()? != '"' {
                return None;
            }
            let key = string(&mut s)?;
            skip_ws(&mut s);
            if s.next()? != ':' {
                return None;
            }
            skip_ws(&mut s);
            let value = if s.peek() == Some(&'"') {
                s.next();
                Json::Str(string(&mut s)?)
            } else {
                let mut raw = String::new();
                while let Some(&c) = s.peek() {
                    if c == ',' || c == '}' || c.is_whitespace() {
                        break;
                    }
                    raw.push(c);
                    s.next();
                }
                match raw.parse::<i64>() {
                    Ok(i) => Json::Int(i),
                    Err(_) if ["true", "false", "null"].contains(&raw.as_str()) || raw.parse::<f64>().is_ok() => {
                        Json::Other(raw)
                    }
                    Err(_) => return None,
                }
            };
            members.push((key, value));
            skip_ws(&mut s);
            match s.next()? {
                ',' => continue,
                '}' => break,
                _ => return None,
            }
        }
    }
    skip_ws(&mut s);
    if s.next().is_some() {
        return None;
    }
    Some(members)
}

#[test]
fn item_17_grammar_and_json_schema() {
    const YES_NO: &str = r#"root ::= ("yes" | "no")"#;
    const ANSWER_PROMPT: &str = "Question: Is the sky blue? Answer yes or no.\nAnswer: ";
    const PERSON_PROMPT: &str = "A JSON object describing a person's age and favourite colour: ";
    const PERSON_SCHEMA: &str = r#"{"type": "object", "properties": {"age": {"type": "integer"},
        "color": {"type": "string", "enum": ["red", "green", "blue"]}},
        "required": ["age", "color"], "additionalProperties": false}"#;

    let grammar = ember::json_schema_to_grammar(PERSON_SCHEMA).unwrap();
    assert!(grammar.contains("root ::="), "{}", grammar);
    assert_status(ember::json_schema_to_grammar("["), Status::InvalidArgument);

    let path = match smollm2_path() {
        Some(p) => p,
        None => return,
    };
    let model = Model::load(path, params()).unwrap();
    let mut session = Session::new(&model, session_params()).unwrap();
    let mut run = |sampler: &mut Sampler, prompt: &str, max_tokens: i32, stop_at_eog: bool| {
        let ids = model.tokenizer().tokenize(prompt, true, true).unwrap();
        sampler.reset().unwrap(); // restarts the grammar, complete after the last run
        session.reset().unwrap();
        session.prefill(&ids).unwrap();
        let p = GenerateParams { max_tokens, stop_at_eog, ..GenerateParams::default() };
        session.generate_text(sampler, &p).unwrap()
    };

    // Hot sampling cannot leave the grammar, and generation ends once it is complete.
    for seed in 1..=6u64 {
        let p = SamplerParams { temperature: 1.5, top_k: 0, top_p: 1.0, min_p: 0.0, seed: Some(seed), ..SamplerParams::default() };
        let mut sampler = Sampler::new(p).unwrap();
        sampler.set_grammar(&model, Some(YES_NO)).unwrap();
        let (text, r) = run(&mut sampler, ANSWER_PROMPT, 8, false);
        assert!(text == "yes" || text == "no", "seed {}: {:?}", seed, text);
        assert_eq!(r.stop, StopReason::Eog);
        // A bad grammar is refused with its position and leaves the old one in place.
        let e = assert_status(sampler.set_grammar(&model, Some(r#"root ::= ("yes" | "no""#)), Status::InvalidArgument);
        let m = e.message();
        let at = m.find("line ").and_then(|i| m[i..].find(", column ").map(|j| i + j));
        assert!(at.map_or(false, |j| m[j + 9..].starts_with(|c: char| c.is_ascii_digit())), "{}", m);
        let (text, _) = run(&mut sampler, ANSWER_PROMPT, 8, false);
        assert!(text == "yes" || text == "no", "seed {} after a bad grammar: {:?}", seed, text);
        // Cleared, the sampler is free again: 8 tokens, the length limit.
        sampler.set_grammar(&model, None).unwrap();
        let (_, r) = run(&mut sampler, ANSWER_PROMPT, 8, false);
        assert_eq!((r.n_generated, r.stop), (8, StopReason::Length));
    }

    let mut sampler = Sampler::new(SamplerParams { temperature: 0.7, seed: Some(7), ..SamplerParams::default() }).unwrap();
    sampler.set_json_schema(&model, Some(PERSON_SCHEMA)).unwrap();
    let (text, r) = run(&mut sampler, PERSON_PROMPT, 96, true);
    assert_eq!(r.stop, StopReason::Eog, "{:?}", text);
    let mut doc = parse_flat_json_object(&text).unwrap_or_else(|| panic!("not a flat JSON object: {:?}", text));
    doc.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(doc.len(), 2, "{:?}", text);
    assert_eq!(doc[0].0, "age");
    assert!(matches!(doc[0].1, Json::Int(_)), "{:?}", text);
    assert_eq!(doc[1].0, "color");
    assert!(["red", "green", "blue"].iter().any(|c| doc[1].1 == Json::Str(c.to_string())), "{:?}", text);
    let mut greedy = Sampler::greedy().unwrap();
    assert_status(greedy.set_json_schema(&model, Some(r#"{"type": "#)), Status::InvalidArgument);
}

#[test]
fn item_18_memory_estimates() {
    let plain = ember::estimate_memory(model_path(), 256, 0).unwrap();
    assert!(plain.weights > 0);
    assert_eq!(plain.total, plain.weights + plain.kv_cache + plain.scratch);
    assert_eq!(ember::estimate_memory_quantized(model_path(), 256, 0, None).unwrap(), plain);
    let q8 = ember::estimate_memory_quantized(model_path(), 256, 0, Some("Q8_0")).unwrap();
    // The model's F32 weights at about a quarter of the bytes; the session's share is the same.
    assert!(q8.weights < plain.weights && q8.weights > 0, "{:?} vs {:?}", q8, plain);
    assert_eq!((q8.kv_cache, q8.scratch), (plain.kv_cache, plain.scratch));
    assert_eq!(q8.total, q8.weights + q8.kv_cache + q8.scratch);
    assert_eq!(ember::estimate_memory_quantized(model_path(), 256, 0, Some("q8_0")).unwrap(), q8);
    assert_eq!(ember::estimate_memory_quantized(model_path(), 256, 0, Some("")).unwrap(), plain);
    let e = assert_status(ember::estimate_memory_quantized(model_path(), 256, 0, Some("Q9_9")), Status::InvalidArgument);
    assert!(e.message().contains("ember_estimate_memory_quantized"), "{}", e);
    let long = "q".repeat(65);
    let e = assert_status(ember::estimate_memory_quantized(model_path(), 256, 0, Some(&long)), Status::InvalidArgument);
    assert!(e.message().contains("64 bytes"), "{}", e);
    assert_status(ember::estimate_memory_quantized(model_path(), 256, 0, Some("q8_0\0")), Status::InvalidArgument);
    // The function called names itself, not the one it shares code with.
    let e = assert_status(ember::estimate_memory(model_path(), 0, 0), Status::InvalidArgument);
    assert!(!e.message().contains("_quantized"), "{}", e);
}

#[test]
fn item_19_input_refused_not_cut() {
    let inval = |r: Result<(), Error>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.status(), Status::InvalidArgument, "{}: {}", what, e);
        assert!(e.message().contains("NUL"), "{}: the message says why: {}", what, e);
    };
    // A NUL byte in a string C takes NUL-terminated: refused before C would read only up to it.
    let mut bad_path = model_path().into_os_string();
    bad_path.push("\0x");
    inval(Model::load(&bad_path, params()).map(drop), "a path with a NUL");
    inval(ember::Tokenizer::load(&bad_path).map(drop), "a tokenizer path with a NUL");
    inval(ember::estimate_memory(&bad_path, 256, 0).map(drop), "an estimate's path with a NUL");
    let with = |f: fn(&mut ModelParams)| {
        let mut p = params();
        f(&mut p);
        p
    };
    inval(Model::load(model_path(), with(|p| p.backend = Some("cpu\0x".into()))).map(drop), "a backend with a NUL");
    inval(Model::load(model_path(), with(|p| p.quantize = Some("q8_0\0".into()))).map(drop), "a quantize type with a NUL");
    inval(
        ember::estimate_memory_quantized(model_path(), 256, 0, Some("q8_0\0")).map(drop),
        "an estimate's quantize type with a NUL",
    );
    inval(ember::json_schema_to_grammar("{\"type\": \"object\"}\0").map(drop), "a schema with a NUL");
    let model = load();
    inval(model.meta("general.architecture\0x").map(drop), "a metadata key with a NUL");
    inval(model.meta_json("general.architecture\0x").map(drop), "a metadata key with a NUL (JSON)");
    inval(model.meta_type("general.architecture\0x").map(drop), "a metadata key with a NUL (type)");
    let mut session = prefilled(&model);
    let mut sampler = Sampler::greedy().unwrap();
    let params = GenerateParams { stop: vec!["x".into(), "ti\0me".into()], ..greedy_params(4) };
    inval(session.generate_quiet(&mut sampler, &params).map(drop), "a stop string with a NUL");
    inval(session.save(temp_path("state\0x")), "a state path with a NUL");
    inval(session.load(temp_path("state\0x")), "a state path with a NUL (load)");
    inval(sampler.set_grammar(&model, Some("root ::= \"yes\"\0 | \"no\"")), "a grammar with a NUL");
    inval(sampler.set_json_schema(&model, Some("{\"type\": \"object\"}\0")), "a schema with a NUL");
    assert_eq!(session.position(), 5, "the refused calls changed nothing");
    let system = ChatParams { system: Some("Be\0 brief".into()), ..ChatParams::default() };
    inval(Chat::new(&model, session_params(), system).map(drop), "a system message with a NUL");
    let mut chat = Chat::new(&model, session_params(), ChatParams::default()).unwrap();
    inval(chat.say_text(&mut sampler, "Hel\0lo", &greedy_params(2)).map(drop), "a chat message with a NUL");
    assert_eq!(chat.n_messages(), 0);
    // Text to tokenize crosses with its length: a NUL in it is text.
    let tok = model.tokenizer();
    let with_nul = tok.tokenize("a\0b", false, false).unwrap();
    assert!(with_nul.len() > tok.tokenize("a", false, false).unwrap().len(), "{:?}", with_nul);
    // Rust's numbers here are i32 already: nothing can wrap.
}

#[test]
fn extra_save_load_rewind_and_standalone_tokenizer() {
    let model = load();
    let mut session = prefilled(&model);
    let mut sampler = Sampler::greedy().unwrap();
    session.generate_quiet(&mut sampler, &greedy_params(4)).unwrap();
    let pos = session.position();
    let path = temp_path("session.state");
    session.save(&path).unwrap();
    let logits = session.logits().unwrap().to_vec();
    session.rewind(5).unwrap();
    assert_eq!(session.position(), 5);
    assert_status(session.logits(), Status::InvalidArgument);
    session.load(&path).unwrap();
    assert_eq!(session.position(), pos);
    assert_eq!(session.logits().unwrap(), &logits[..]);
    session.reset().unwrap();
    assert_eq!(session.position(), 0);
    std::fs::write(&path, b"garbage").unwrap();
    assert_status(session.load(&path), Status::BadFile);
    std::fs::remove_file(&path).ok();

    let tok = ember::Tokenizer::load(model_path()).unwrap();
    assert_eq!(tok.tokenize(PROMPT, true, false).unwrap(), PROMPT_TOKENS);
    let est = ember::estimate_memory(model_path(), 256, 0).unwrap();
    assert!(est.total >= est.weights && est.weights > 0);
    let sampled = Sampler::greedy().unwrap().sample(&logits).unwrap();
    assert!((0..512).contains(&sampled));
}

#[test]
fn extra_chat_cancel_and_logit_bias() {
    let model = load();
    let mut chat = Chat::new(&model, session_params(), ChatParams::default()).unwrap();
    let mut sampler = Sampler::greedy().unwrap();
    let handle = chat.cancel_handle();
    handle.cancel().unwrap();
    let params = GenerateParams { max_tokens: 4, ..GenerateParams::default() };
    assert_status(chat.say_text(&mut sampler, "Hello", &params), Status::Cancelled);
    assert_eq!(chat.n_messages(), 0);
    handle.clear_cancel().unwrap();
    chat.say_text(&mut sampler, "Hello", &params).unwrap();
    assert_eq!(chat.n_messages(), 2);

    // Forbidding the first golden token changes the first token generated.
    let mut session = prefilled(&model);
    let params = GenerateParams { logit_bias: vec![(GOLDEN[0], f32::NEG_INFINITY)], ..greedy_params(1) };
    let mut first = -1;
    session
        .generate(&mut sampler, &params, |_p, t| {
            first = t;
            Ok::<_, Error>(Stream::Continue)
        })
        .unwrap();
    assert!(first >= 0 && first != GOLDEN[0]);
}
