// The README's example: cargo run --example generate -- MODEL.gguf
use ember::{GenerateParams, Model, ModelParams, Sampler, SamplerParams, Session, SessionParams, Stream};

fn main() -> Result<(), ember::Error> {
    let model = Model::load(std::env::args().nth(1).expect("usage: generate MODEL.gguf"), ModelParams::default())?;
    println!("{} ({} parameters)", model.architecture()?, model.n_params());

    let tokens = model.tokenizer().tokenize("Once upon a time", true, false)?;
    let mut session = Session::new(&model, SessionParams::default())?; // Send: move it to a worker thread
    session.prefill(&tokens)?;

    let mut sampler = Sampler::new(SamplerParams { temperature: 0.7, seed: Some(42), ..Default::default() })?;
    let params = GenerateParams { max_tokens: 64, stop: vec!["\n\n".into()], ..Default::default() };
    let cancel = session.cancel_handle(); // Send + Sync + Clone: cancel from another thread
    let result = session.generate(&mut sampler, &params, |text, _token| {
        print!("{}", text);
        Ok::<_, ember::Error>(Stream::Continue) // Stream::Stop ends generation; Err(e) ends it and returns e
    })?;
    println!("\n[{} tokens, {:?}]", result.n_generated, result.stop);
    drop(cancel);
    Ok(())
}
