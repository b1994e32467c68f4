// bindings/SPEC.md run against the C# binding: one method per item, a tiny runner (no NUnit here).
// Usage: mono SpecTests.exe   (EMBER_TEST_MODEL: the path of tests/data/models/stories260K.gguf)
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using Ember;

static class SpecTests
{
    static readonly int[] Prompt = { 1, 403, 407, 261, 378 };
    static readonly int[] Golden = { 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337 };
    // hf/llama-lora/golden.json: its prompt, and the first logits peft gives after it with the adapter at scale 1.
    const string LoraPrompt = "Once upon a time, the quick robot counted 12345 tokens.";
    static readonly float[] LoraFirstLogits = { -0.628006f, -0.624651f, -0.801815f, -0.77162f, -0.501407f, -0.247845f, -0.116984f, -0.388983f };
    static string ModelPath;

    sealed class AssertionFailed : Exception { public AssertionFailed(string m) : base(m) { } }

    static void Check(bool cond, string what) { if (!cond) throw new AssertionFailed(what); }
    static void Eq<T>(T expected, T actual, string what)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual))
            throw new AssertionFailed(what + ": expected <" + expected + ">, got <" + actual + ">");
    }
    static void SeqEq(IList<int> expected, IList<int> actual, string what)
    {
        if (!expected.SequenceEqual(actual))
            throw new AssertionFailed(what + ": expected [" + string.Join(", ", expected) + "], got [" + string.Join(", ", actual) + "]");
    }
    static EmberException Throws(Action a, string what)
    {
        try { a(); }
        catch (EmberException e) { return e; }
        throw new AssertionFailed(what + ": no EmberException");
    }

    // tests/data/hf: EMBER_TEST_HF, else ../hf next to the model's folder.
    static string HfPath(string name)
    {
        string root = Environment.GetEnvironmentVariable("EMBER_TEST_HF");
        if (string.IsNullOrEmpty(root)) root = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(ModelPath))), "hf");
        return Path.Combine(root, name);
    }

    static Model LoadModel() { return Model.Load(ModelPath, new ModelParams { NThreads = 1 }); }
    static Session NewSession(Model m) { return new Session(m, new SessionParams { NThreads = 1 }); }
    static GenerateOptions GreedyOptions(int maxTokens) { return new GenerateOptions { MaxTokens = maxTokens, StopAtEog = false }; }

    // Greedy generation of 16 tokens after the prompt: the tokens (from the stream callback) and the text.
    static GenerateResult GreedyRun(Model m, List<int> tokens)
    {
        using (var s = NewSession(m))
        using (var g = Sampler.Greedy())
        {
            s.Prefill(Prompt);
            return s.Generate(g, GreedyOptions(16), (text, tok) => { if (tokens != null) tokens.Add(tok); return true; });
        }
    }

    // --- 1
    static void Item01_AbiCheck()
    {
        Eq(1u, Library.AbiVersion, "ember_abi_version()");
        Library.EnsureCompatible();  // the real check passes
        var e = Throws(() => Library.CheckAbi(2), "a mismatched ABI");
        Check(e.Message.Contains("2") && e.Message.Contains("1") && e.Message.Contains("ABI"), "the mismatch message names both versions: " + e.Message);
        Check(System.Text.RegularExpressions.Regex.IsMatch(Library.Version, @"^\d+\.\d+\.\d+$"), "version is MAJOR.MINOR.PATCH: " + Library.Version);
        var parts = Library.Version.Split('.').Select(uint.Parse).ToArray();
        Eq(parts[0] * 1000000 + parts[1] * 1000 + parts[2], Library.VersionNumber, "version number");
        // The binding's structs are the size of the library's (same header): a drifted layout shows here.
        Eq(Interop.NativeStructSize(NativeMethods.ember_model_params_init), (uint)Marshal.SizeOf(typeof(ModelParamsNative)), "ember_model_params size");
        Eq(Interop.NativeStructSize(NativeMethods.ember_session_params_init), (uint)Marshal.SizeOf(typeof(SessionParamsNative)), "ember_session_params size");
        Eq(Interop.NativeStructSize(NativeMethods.ember_generate_params_init), (uint)Marshal.SizeOf(typeof(GenerateParamsNative)), "ember_generate_params size");
        Eq(Interop.NativeStructSize(NativeMethods.ember_chat_params_init), (uint)Marshal.SizeOf(typeof(ChatParamsNative)), "ember_chat_params size");
        Eq(Interop.NativeStructSize(NativeMethods.ember_sampler_params_init), (uint)Marshal.SizeOf(typeof(SamplerParamsNative)), "ember_sampler_params size");
    }

    // --- 2
    static void Item02_LoadAndFacts()
    {
        using (var m = LoadModel())
        {
            Eq(512, m.NVocab, "n_vocab");
            Eq("llama", m.Architecture, "architecture");
            Check(m.NParams > 0, "n_params > 0");
            Check(m.Size > 0, "size > 0");
            Eq("cpu", m.Backend, "backend");
            Check(Library.Backends.Contains("cpu"), "backends contain cpu: " + string.Join(",", Library.Backends));
            Eq("cpu", Library.Backends[0], "cpu first");
            Check(m.NLayers > 0 && m.NEmbd > 0 && m.NCtxTrain > 0, "layers, embd, ctx_train");
            Check(m.Name != null, "name");
        }
    }

    // --- 3
    static void Item03_Metadata()
    {
        using (var m = LoadModel())
        {
            var keys = m.MetaKeys;
            Check(keys.Contains("general.architecture"), "keys include general.architecture");
            Check(keys.Contains("tokenizer.ggml.tokens"), "keys include tokenizer.ggml.tokens");
            Eq("llama", m.Meta("general.architecture"), "meta(general.architecture)");
            Eq(MetaType.Array, m.MetaType("tokenizer.ggml.tokens"), "meta type of the tokens");
            var tokens = MiniJson.ParseStringArray(m.MetaJson("tokenizer.ggml.tokens"));
            Eq(512, tokens.Count, "JSON tokens count");
            Eq("\"llama\"", m.MetaJson("general.architecture"), "meta_json(general.architecture)");
            var e = Throws(() => m.Meta("no.such.key"), "absent key");
            Eq(Status.NotFound, e.Status, "absent key status");
            Check(e.Message.Length > 0, "absent key message");
            Eq(Status.NotFound, Throws(() => m.MetaJson("no.such.key"), "absent key json").Status, "absent key json status");
        }
    }

    // --- 4
    static void Item04_TokenizeDetokenize()
    {
        using (var m = LoadModel())
        {
            var tok = m.Tokenizer;
            SeqEq(Prompt, tok.Tokenize("Once upon a time"), "tokenize");
            Eq("Once upon a time", tok.Detokenize(Prompt), "detokenize");
            var e = Throws(() => tok.Detokenize(new[] { 512 }), "id 512");
            Eq(Status.InvalidArgument, e.Status, "id 512 status");
            SeqEq(new[] { 1 }, tok.Tokenize(""), "empty text");
            Eq(1, tok.Bos, "bos");
            Eq(512, tok.NVocab, "tokenizer n_vocab");
            // A standalone tokenizer agrees, and a multi-byte round trip survives UTF-8 marshalling.
            using (var t2 = Tokenizer.Load(ModelPath))
            {
                SeqEq(Prompt, t2.Tokenize("Once upon a time"), "standalone tokenize");
            }
        }
    }

    // --- 5
    static void Item05_GreedyGeneration()
    {
        using (var m = LoadModel())
        {
            var tokens = new List<int>();
            var r = GreedyRun(m, tokens);
            SeqEq(Golden, tokens, "greedy tokens");
            Eq(16, r.NGenerated, "n_generated");
            Eq(StopReason.Length, r.Stop, "stop reason");
            Eq(m.Tokenizer.Detokenize(Golden), r.Text, "streamed text");
        }
    }

    // --- 6
    static void Item06_StreamEarlyStop()
    {
        using (var m = LoadModel())
        using (var g = Sampler.Greedy())
        {
            // The enumerable: break out after 3 pieces.
            using (var s = NewSession(m))
            {
                s.Prefill(Prompt);
                var pieces = new List<string>();
                var stream = s.Stream(g, GreedyOptions(16));
                foreach (var piece in stream)
                {
                    pieces.Add(piece);
                    if (pieces.Count == 3) break;
                }
                Eq(3, pieces.Count, "pieces");
                Check(stream.Result != null, "result after the loop");
                Eq(StopReason.Callback, stream.Result.Stop, "stop reason (enumerable)");
                Eq(5 + 3 - 1, s.Position, "position (enumerable)");
                Eq(3, stream.Result.NGenerated, "n_generated (enumerable)");
            }
            // The callback: return false on the 3rd piece.
            using (var s = NewSession(m))
            {
                s.Prefill(Prompt);
                int calls = 0;
                var r = s.Generate(g, GreedyOptions(16), (text, tok) => ++calls < 3);
                Eq(3, calls, "no piece after the stop");
                Eq(StopReason.Callback, r.Stop, "stop reason (callback)");
                Eq(5 + 3 - 1, s.Position, "position (callback)");
            }
            // A stream enumerated to its end gives the whole text.
            using (var s = NewSession(m))
            {
                s.Prefill(Prompt);
                var stream = s.Stream(g, GreedyOptions(16));
                string all = string.Concat(stream);
                Eq(m.Tokenizer.Detokenize(Golden), all, "full stream text");
                Eq(StopReason.Length, stream.Result.Stop, "full stream stop reason");
            }
        }
    }

    // --- 7
    static void Item07_StopStrings()
    {
        using (var m = LoadModel())
        {
            string reference = GreedyRun(m, null).Text;
            string stop = reference.Substring(10, 4);
            string expected = reference.Substring(0, reference.IndexOf(stop, StringComparison.Ordinal));
            using (var s = NewSession(m))
            using (var g = Sampler.Greedy())
            {
                s.Prefill(Prompt);
                var streamed = new StringBuilder();
                var opts = GreedyOptions(16);
                opts.Stop = new[] { stop };
                var r = s.Generate(g, opts, (text, tok) => { streamed.Append(text); return true; });
                Eq(expected, streamed.ToString(), "text cut before the stop string");
                Eq(StopReason.StopString, r.Stop, "stop reason");
                Eq(0, r.StopIndex, "stop index");
            }
        }
    }

    // --- 8
    static void Item08_CancelFromAnotherThread()
    {
        using (var m = LoadModel())
        using (var s = NewSession(m))
        using (var g = Sampler.Greedy())
        {
            s.Prefill(Prompt);
            var firstPiece = new ManualResetEventSlim(false);
            var cancelled = new ManualResetEventSlim(false);
            var canceller = new Thread(() => { firstPiece.Wait(); s.Cancel(); cancelled.Set(); });
            canceller.Start();
            int pieces = 0;
            var e = Throws(() => s.Generate(g, new GenerateOptions { MaxTokens = -1, StopAtEog = false }, (text, tok) =>
            {
                if (++pieces == 1) { firstPiece.Set(); cancelled.Wait(); }  // the cancel lands while the call runs
                return true;
            }), "cancelled generation");
            canceller.Join();
            Eq(Status.Cancelled, e.Status, "status");
            Check(e.Message.Length > 0, "message");
            Check(pieces >= 1 && pieces < s.NCtx, "stopped early");
            // Sticky until cleared.
            Eq(Status.Cancelled, Throws(() => s.Decode(Golden[0]), "decode while cancelled").Status, "sticky cancel");
            s.ClearCancel();
            s.Reset();
            s.Prefill(Prompt);
            var r = s.Generate(g, GreedyOptions(4));
            Eq(4, r.NGenerated, "generates again after clear_cancel");
            Eq(m.Tokenizer.Detokenize(Golden.Take(4).ToArray()), r.Text, "and the same text");

            // The enumerable variant: cancel from another thread surfaces from MoveNext.
            s.Reset();
            s.Prefill(Prompt);
            int n = 0;
            var e2 = Throws(() =>
            {
                foreach (var piece in s.Stream(g, new GenerateOptions { MaxTokens = -1, StopAtEog = false }))
                    if (++n == 1) { var t = new Thread(s.Cancel); t.Start(); t.Join(); }
            }, "cancelled stream");
            Eq(Status.Cancelled, e2.Status, "stream status");
            s.ClearCancel();
        }
    }

    // --- 9
    static void Item09_Errors()
    {
        string missing = Path.Combine(Path.GetTempPath(), "ember-cs-no-such-file-" + Guid.NewGuid().ToString("N") + ".gguf");
        var e = Throws(() => Model.Load(missing), "missing file");
        Eq(Status.Io, e.Status, "missing file status");
        Check(e.Message.Contains(missing), "the message names the path: " + e.Message);

        string junk = Path.GetTempFileName();
        try
        {
            File.WriteAllText(junk, "this is not a GGUF file, not even close\n");
            e = Throws(() => Model.Load(junk), "not GGUF");
            Eq(Status.BadFile, e.Status, "not GGUF status");
            Check(e.Message.Length > 0, "not GGUF message");
        }
        finally { File.Delete(junk); }

        e = Throws(() => Model.Load(ModelPath, new ModelParams { NThreads = -1 }), "negative threads");
        Eq(Status.InvalidArgument, e.Status, "negative threads status");
        Check(e.Message.Contains("n_threads"), "negative threads message: " + e.Message);

        e = Throws(() => new Sampler(new SamplerParams { Temperature = float.NaN }), "NaN temperature");
        Eq(Status.InvalidArgument, e.Status, "NaN temperature status");

        using (var m = LoadModel())
        {
            e = Throws(() => new Session(m, new SessionParams { NCtx = 1 << 30, NThreads = 1 }), "absurd context");
            Check(e.Status == Status.OutOfMemory || e.Status == Status.InvalidArgument, "absurd context status: " + e.Status);
            using (var s = NewSession(m))
            {
                e = Throws(() => s.Decode(-1), "decode -1");
                Eq(Status.InvalidArgument, e.Status, "decode -1 status");
                Check(e.Message.Length > 0, "decode -1 message");
                Eq(Status.InvalidArgument, Throws(() => s.Logits(), "logits before any evaluation").Status, "logits status");
            }
            // The message belongs to the failing call, not to a later getter.
            e = Throws(() => m.Meta("no.such.key"), "absent key");
            Check(e.Message.Contains("no.such.key"), "message names the key: " + e.Message);
        }
    }

    sealed class CallbackBoom : Exception { public CallbackBoom() : base("boom from the callback") { } }

    // --- 10
    static void Item10_CallbackFailure()
    {
        using (var m = LoadModel())
        using (var s = NewSession(m))
        using (var g = Sampler.Greedy())
        {
            s.Prefill(Prompt);
            int calls = 0;
            var boom = new CallbackBoom();
            Exception caught = null;
            try { s.Generate(g, GreedyOptions(16), (text, tok) => { if (++calls == 2) throw boom; return true; }); }
            catch (Exception ex) { caught = ex; }
            Check(ReferenceEquals(caught, boom), "the original exception surfaces: " + caught);
            Eq(2, calls, "no piece after the failure");
            Check(caught.StackTrace != null && caught.StackTrace.Contains("Item10"), "the original stack trace is kept");
            // The session is usable afterwards.
            s.Reset();
            s.Prefill(Prompt);
            Eq(16, s.Generate(g, GreedyOptions(16)).NGenerated, "generates after the failure");

            // An abort callback that throws: the call stops and the exception surfaces.
            using (var s2 = new Session(m, new SessionParams { NThreads = 1, Abort = () => { throw new CallbackBoom(); } }))
            {
                caught = null;
                try { s2.Prefill(Prompt); } catch (Exception ex) { caught = ex; }
                Check(caught is CallbackBoom, "abort callback exception surfaces: " + caught);
            }
        }
    }

    // --- 11
    static void Item11_FreeInAnyOrder()
    {
        // The model closed before its session: the session still generates.
        var m = LoadModel();
        var s = NewSession(m);
        var tok = m.Tokenizer;
        m.Dispose();
        m.Dispose();
        using (var g = Sampler.Greedy())
        {
            s.Prefill(Prompt);
            var tokens = new List<int>();
            s.Generate(g, GreedyOptions(16), (t, id) => { tokens.Add(id); return true; });
            SeqEq(Golden, tokens, "session outliving its model");
        }
        // Its borrowed tokenizer is refused, not dangling.
        bool refused = false;
        try { tok.Tokenize("x"); } catch (ObjectDisposedException) { refused = true; }
        Check(refused, "tokenizer of a disposed model is ObjectDisposedException");
        // Twice is fine; a disposed session is refused cleanly.
        s.Dispose();
        s.Dispose();
        refused = false;
        try { s.Prefill(Prompt); } catch (ObjectDisposedException) { refused = true; }
        Check(refused, "a disposed session is ObjectDisposedException");
        // Left to the garbage collector, in any order.
        MakeGarbage();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        GC.WaitForPendingFinalizers();
    }

    static void MakeGarbage()
    {
        for (int i = 0; i < 3; i++)
        {
            var m = LoadModel();
            var s = NewSession(m);
            var g = Sampler.Greedy();
            var c = new Chat(m, null, new SessionParams { NThreads = 1 });
            Check(c.NMessages == 0, "a new chat is empty");
            s.Prefill(Prompt);
            // An abandoned stream (never disposed) must not keep its worker blocked forever.
            var stream = s.Stream(g, GreedyOptions(8));
            var en = stream.GetEnumerator();
            en.MoveNext();
        }
    }

    // --- 12
    static int[] SampleTokens(Model m, Sampler sampler, int n)
    {
        using (var s = NewSession(m))
        {
            s.Prefill(Prompt);
            var tokens = new int[n];
            for (int i = 0; i < n; i++)
            {
                tokens[i] = sampler.Sample(s.Logits());
                s.Decode(tokens[i]);
            }
            return tokens;
        }
    }

    static void Item12_Seeds()
    {
        using (var m = LoadModel())
        {
            int[] a, b;
            using (var s1 = new Sampler(new SamplerParams { Temperature = 1, Seed = 1234 })) a = SampleTokens(m, s1, 12);
            using (var s2 = new Sampler(new SamplerParams { Temperature = 1, Seed = 1234 })) b = SampleTokens(m, s2, 12);
            SeqEq(a, b, "same seed, same tokens");
            ulong seed;
            int[] c, d;
            using (var r = new Sampler(new SamplerParams { Temperature = 1 }))
            {
                seed = r.Seed;
                Check(seed != Sampler.RandomSeed, "a random sampler reports the seed it drew");
                c = SampleTokens(m, r, 12);
                r.Reset();
                SeqEq(c, SampleTokens(m, r, 12), "a reset sampler repeats its draws");
            }
            using (var r2 = new Sampler(new SamplerParams { Temperature = 1, Seed = seed }))
            {
                Eq(seed, r2.Seed, "seed given back");
                d = SampleTokens(m, r2, 12);
            }
            SeqEq(c, d, "the reported seed repeats the tokens");
        }
    }

    // --- 13
    static void Item13_AllLogits()
    {
        using (var m = LoadModel())
        using (var s = NewSession(m))
        {
            s.PrefillAll(Prompt);
            var last = s.Logits();
            var at4 = s.LogitsAt(4);
            Eq(512, last.Length, "logits length");
            Check(last.SequenceEqual(at4), "logits at 4 equal the last logits");
            Check(!s.LogitsAt(0).SequenceEqual(at4), "logits at 0 differ");
            Eq(Status.InvalidArgument, Throws(() => s.LogitsAt(5), "index 5").Status, "index out of range");
        }
    }

    // --- 14
    static void Item14_Chat()
    {
        using (var m = LoadModel())
        using (var chat = new Chat(m, null, new SessionParams { NThreads = 1 }))
        using (var g = Sampler.Greedy())
        {
            var r = chat.Say("Hello", g, new GenerateOptions { MaxTokens = 8 });
            Check(r.NGenerated <= 8, "at most 8 tokens: " + r.NGenerated);
            Check(r.Text.Length > 0, "non-empty reply");
            Eq(2, chat.NMessages, "messages");
        }
    }

    // --- 15
    static void Item15_LoadFromMemory()
    {
        using (var m = Model.LoadFromMemory(File.ReadAllBytes(ModelPath), new ModelParams { NThreads = 1 }))
        {
            var tokens = new List<int>();
            GreedyRun(m, tokens);
            SeqEq(Golden, tokens, "greedy tokens from memory");
        }
    }

    // --- 16
    static float MaxDiff(float[] a, float[] b)
    {
        Eq(a.Length, b.Length, "logits lengths");
        float d = 0;
        for (int i = 0; i < a.Length; i++) d = Math.Max(d, Math.Abs(a[i] - b[i]));
        return d;
    }

    static void Item16_LoraAdapters()
    {
        var baseModel = Model.Load(HfPath("llama"), new ModelParams { NThreads = 1 });
        var peft = Adapter.Load(baseModel, HfPath("llama-lora"));
        var gguf = baseModel.LoadAdapter(HfPath(Path.Combine("llama-lora", "adapter.gguf")));
        foreach (var a in new[] { peft, gguf })
        {
            Eq(4, a.Rank, "rank");
            Eq(14, a.NTargets, "n_targets");
        }
        var tokens = baseModel.Tokenizer.Tokenize(LoraPrompt);
        Eq(29, tokens.Length, "prompt tokens");
        using (var s = NewSession(baseModel))
        using (var stories = LoadModel())
        {
            Func<float[]> logits = () => { s.Reset(); s.Prefill(tokens); return s.Logits(); };
            Func<float[], int> argmax = v => Enumerable.Range(0, v.Length).Aggregate((best, i) => v[i] > v[best] ? i : best);
            var baseLogits = logits();
            Eq(161, argmax(baseLogits), "the base model's highest logit");
            s.SetAdapters((peft, 1f));
            var withPeft = logits();
            Eq(263, argmax(withPeft), "the highest logit with the adapter (peft's)");
            Check(MaxDiff(withPeft.Take(8).ToArray(), LoraFirstLogits) < 3e-3f, "the first logits are peft's: " + string.Join(", ", withPeft.Take(8)));
            s.SetAdapters((gguf, 1f));
            Check(logits().SequenceEqual(withPeft), "the GGUF form gives the PEFT folder's logits");
            s.SetAdapters((peft, 1f), (gguf, 0f));
            Check(logits().SequenceEqual(withPeft), "a second adapter at scale 0 changes nothing");
            s.SetAdapters((peft, 0.5f), (gguf, 0.5f));
            Check(MaxDiff(logits(), withPeft) < 1e-3f, "two halves give the whole");
            s.SetAdapters((peft, 0f));
            Check(logits().SequenceEqual(baseLogits), "scale 0 is the base model");
            s.SetAdapters();
            Check(logits().SequenceEqual(baseLogits), "no adapters is the base model");

            var e = Throws(() => Adapter.Load(baseModel, HfPath("no-such-adapter")), "a missing adapter");
            Eq(Status.Io, e.Status, "missing adapter status");
            Check(e.Message.Contains("no-such-adapter"), "the I/O error names the path: " + e.Message);
            Eq(Status.InvalidArgument, Throws(() => stories.LoadAdapter(HfPath("llama-lora")), "another model's adapter").Status,
               "another model's adapter status");
            s.SetAdapters((peft, 1f));
            Eq(Status.InvalidArgument, Throws(() => s.SetAdapters((peft, float.NaN)), "a NaN scale").Status, "NaN scale status");
            Eq(Status.InvalidArgument, Throws(() => s.SetAdapters((peft, 1f), (peft, 1f)), "an adapter twice").Status,
               "adapter twice status");
            Check(logits().SequenceEqual(withPeft), "a failed SetAdapters keeps the session's adapters");

            // The session keeps its adapters, and they their model, past Dispose.
            peft.Dispose();
            peft.Dispose();
            gguf.Dispose();
            baseModel.Dispose();
            Check(logits().SequenceEqual(withPeft), "disposing the adapters and the model keeps the session's logits");
            bool refused = false;
            try { s.SetAdapters((peft, 1f)); } catch (ObjectDisposedException) { refused = true; }
            Check(refused, "a disposed adapter is ObjectDisposedException");
            s.SetAdapters();
            Check(logits().SequenceEqual(baseLogits), "no adapters after the Dispose is the base model");
        }

        // Left to the finalizers.
        for (int i = 0; i < 2; i++) Adapter.Load(Model.Load(HfPath("llama"), new ModelParams { NThreads = 1 }), HfPath("llama-lora"));
        GC.Collect();
        GC.WaitForPendingFinalizers();
    }

    // --- beyond the list: the rest of the binding's surface

    static void Extra01_ProgressCallback()
    {
        var seen = new List<float>();
        using (var m = Model.Load(ModelPath, new ModelParams { NThreads = 1, UseMmap = false, Progress = p => { seen.Add(p); return true; } }))
            Eq(512, m.NVocab, "loads with a progress callback");
        Check(seen.Count > 0 && seen.Last() == 1.0f, "progress reaches 1: " + string.Join(",", seen));
        var e = Throws(() => Model.Load(ModelPath, new ModelParams { Progress = p => false }), "cancelled load");
        Eq(Status.Cancelled, e.Status, "cancelled load status");
        Exception caught = null;
        try { Model.Load(ModelPath, new ModelParams { Progress = p => { throw new CallbackBoom(); } }); }
        catch (Exception ex) { caught = ex; }
        Check(caught is CallbackBoom, "a throwing progress callback's exception surfaces: " + caught);
        // Quantized at load (stories260K is F32): the file type of the Q8_0 mix; an unknown type is refused.
        using (var q = Model.Load(ModelPath, new ModelParams { NThreads = 1, Quantize = "q8_0" }))
            Eq("7", q.Meta("general.file_type"), "quantized at load to Q8_0");
        Eq(Status.InvalidArgument, Throws(() => Model.Load(ModelPath, new ModelParams { Quantize = "q7" }), "unknown quantize type").Status,
           "unknown quantize type status");
    }

    // Item 17's model: SmolLM2-135M-Instruct, where scripts/setup.sh fetches it (the C++ tests look there too).
    static string SmolLM2Path()
    {
        string dir = Environment.GetEnvironmentVariable("EMBER_MODELS");
        if (string.IsNullOrEmpty(dir))
            dir = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "ember", "models");
        return Path.Combine(dir, "SmolLM2-135M-Instruct.Q4_1.gguf");
    }

    const string YesNo = "root ::= (\"yes\" | \"no\")";
    const string AnswerPrompt = "Question: Is the sky blue? Answer yes or no.\nAnswer: ";
    const string PersonPrompt = "A JSON object describing a person's age and favourite colour: ";
    const string PersonSchema = "{\"type\": \"object\", \"properties\": {\"age\": {\"type\": \"integer\"}, " +
        "\"color\": {\"type\": \"string\", \"enum\": [\"red\", \"green\", \"blue\"]}}, " +
        "\"required\": [\"age\", \"color\"], \"additionalProperties\": false}";

    static void Item17_GrammarAndJsonSchema()
    {
        Check(Sampler.JsonSchemaToGrammar(PersonSchema).Contains("root ::="), "JsonSchemaToGrammar gives a grammar with root ::=");
        Eq(Status.InvalidArgument, Throws(() => Sampler.JsonSchemaToGrammar("["), "a bad schema").Status, "bad schema status");

        string path = SmolLM2Path();
        if (!File.Exists(path))
        {
            Console.WriteLine("  item 17 skipped: " + path + " is absent (scripts/setup.sh fetches it)");
            return;
        }
        using (var m = Model.Load(path, new ModelParams { NThreads = 1 }))
        using (var s = NewSession(m))
        {
            Func<Sampler, string, int, bool, GenerateResult> run = (sampler, prompt, maxTokens, stopAtEog) =>
            {
                sampler.Reset();  // restarts the grammar, complete after the last run
                s.Reset();
                s.Prefill(m.Tokenizer.Tokenize(prompt, TokenizeFlags.AddSpecial | TokenizeFlags.ParseSpecial));
                return s.Generate(sampler, new GenerateOptions { MaxTokens = maxTokens, StopAtEog = stopAtEog });
            };
            Func<string, bool> yesOrNo = t => t == "yes" || t == "no";

            // Hot sampling cannot leave the grammar, and generation ends once it is complete.
            for (ulong seed = 1; seed <= 6; seed++)
            {
                using (var sampler = new Sampler(new SamplerParams { Temperature = 1.5f, TopK = 0, TopP = 1f, MinP = 0f, Seed = seed }))
                {
                    sampler.SetGrammar(m, YesNo);
                    var r = run(sampler, AnswerPrompt, 8, false);
                    Check(yesOrNo(r.Text), "seed " + seed + ": '" + r.Text + "' is yes or no");
                    Eq(StopReason.Eog, r.Stop, "seed " + seed + ": stop reason");
                    // A bad grammar is refused with its position and leaves the old one in place.
                    var e = Throws(() => sampler.SetGrammar(m, "root ::= (\"yes\" | \"no\""), "a bad grammar");
                    Eq(Status.InvalidArgument, e.Status, "bad grammar status");
                    Check(System.Text.RegularExpressions.Regex.IsMatch(e.Message, @"line \d+, column \d+"),
                          "the grammar error names the line and column: " + e.Message);
                    r = run(sampler, AnswerPrompt, 8, false);
                    Check(yesOrNo(r.Text), "seed " + seed + " after a bad grammar: '" + r.Text + "'");
                    // Cleared, the sampler is free again: 8 tokens, the length limit.
                    sampler.SetGrammar(m, null);
                    r = run(sampler, AnswerPrompt, 8, false);
                    Eq(8, r.NGenerated, "tokens without the grammar");
                    Eq(StopReason.Length, r.Stop, "stop reason without the grammar");
                }
            }

            using (var sampler = new Sampler(new SamplerParams { Temperature = 0.7f, Seed = 7 }))
            {
                sampler.SetJsonSchema(m, PersonSchema);
                var r = run(sampler, PersonPrompt, 96, true);
                Eq(StopReason.Eog, r.Stop, "JSON generation's stop reason (" + r.Text + ")");
                var doc = MiniJson.ParseFlatObject(r.Text);
                Eq(2, doc.Count, "members of " + r.Text);
                Check(doc.ContainsKey("age") && doc["age"] is long, "age is an integer: " + r.Text);
                Check(doc.ContainsKey("color") && new[] { "red", "green", "blue" }.Contains(doc["color"] as string),
                      "color is in the enum: " + r.Text);
            }
            using (var g = Sampler.Greedy())
                Eq(Status.InvalidArgument, Throws(() => g.SetJsonSchema(m, "{\"type\": "), "a bad schema").Status, "bad schema status");
        }
    }

    // --- 18
    static void Item18_MemoryEstimates()
    {
        MemoryEstimate plain = Model.EstimateMemory(ModelPath, 256);
        Check(plain.Weights > 0, "weights > 0");
        Eq(plain.Weights + plain.KvCache + plain.Scratch, plain.Total, "total is the sum");
        Eq(plain, Model.EstimateMemory(ModelPath, 256, 0), "the three-parameter form");
        Eq(plain, Model.EstimateMemory(ModelPath, 256, quantize: null), "quantize null");
        Eq(plain, Model.EstimateMemory(ModelPath, 256, quantize: ""), "quantize \"\"");
        // Q8_0 of stories260K's F32 weights: fewer bytes, the session's share unchanged.
        MemoryEstimate q8 = Model.EstimateMemory(ModelPath, 256, quantize: "Q8_0");
        Check(q8.Weights > 0 && q8.Weights < plain.Weights, "Q8_0 weights " + q8.Weights + " fewer than the F32 file's " + plain.Weights);
        Eq(plain.KvCache, q8.KvCache, "Q8_0 kv cache");
        Eq(plain.Scratch, q8.Scratch, "Q8_0 scratch");
        Eq(q8.Weights + q8.KvCache + q8.Scratch, q8.Total, "Q8_0 total is the sum");
        Eq(q8, Model.EstimateMemory(ModelPath, 256, 0, "q8_0"), "q8_0 (lower case, positional)");
        var e = Throws(() => Model.EstimateMemory(ModelPath, 256, quantize: "Q9_9"), "unknown quantize type");
        Eq(Status.InvalidArgument, e.Status, "unknown quantize type status");
        Check(e.Message.Contains("ember_estimate_memory_quantized"), "the message names the function: " + e.Message);
        e = Throws(() => Model.EstimateMemory(ModelPath, 256, quantize: new string('q', 65)), "a 65-byte quantize type");
        Eq(Status.InvalidArgument, e.Status, "65-byte quantize type status");
        Check(e.Message.Contains("64 bytes"), "the message gives the bound: " + e.Message);
        // The function called names itself, not the one it shares code with.
        e = Throws(() => Model.EstimateMemory(ModelPath, 0), "n_ctx 0");
        Eq(Status.InvalidArgument, e.Status, "n_ctx 0 status");
        Check(!e.Message.Contains("_quantized"), "ember_estimate_memory's message names it: " + e.Message);
    }

    // --- 19
    static void Item19_InputRefusedNotCut()
    {
        Action<Action, string> inval = (a, what) =>
        {
            var e = Throws(a, what);
            Eq(Status.InvalidArgument, e.Status, what + " status");
            Check(e.Message.Contains("NUL"), what + ": the message says why: " + e.Message);
        };
        // A NUL in a string C takes NUL-terminated: refused before C would read only up to it.
        inval(() => Model.Load(ModelPath + "\0x", new ModelParams { NThreads = 1 }).Dispose(), "a path with a NUL");
        inval(() => Model.Load(ModelPath, new ModelParams { NThreads = 1, Backend = "cpu\0x" }).Dispose(), "a backend with a NUL");
        inval(() => Model.Load(ModelPath, new ModelParams { NThreads = 1, Quantize = "q8_0\0" }).Dispose(), "a quantize type with a NUL");
        inval(() => Model.LoadFromMemory(File.ReadAllBytes(ModelPath), new ModelParams { Quantize = "q8_0\0" }).Dispose(),
              "a quantize type with a NUL, from memory");
        inval(() => Model.EstimateMemory(ModelPath + "\0x", 256), "an estimate's path with a NUL");
        inval(() => Model.EstimateMemory(ModelPath, 256, 0, "q8_0\0"), "an estimate's quantize type with a NUL");
        inval(() => Tokenizer.Load(ModelPath + "\0x").Dispose(), "a tokenizer path with a NUL");
        inval(() => Model.RenderChatTemplate("{{ 1 }}\0{{ 2 }}", "{\"messages\": []}"), "a template with a NUL");
        inval(() => Sampler.JsonSchemaToGrammar("{\"type\": \"object\"}\0"), "json_schema_to_grammar of a schema with a NUL");
        using (var m = LoadModel())
        {
            inval(() => m.Meta("general.architecture\0x"), "a metadata key with a NUL");
            inval(() => m.MetaJson("general.architecture\0x"), "a metadata key with a NUL (JSON)");
            inval(() => m.MetaType("general.architecture\0x"), "a metadata key with a NUL (type)");
            inval(() => m.LoadAdapter(HfPath("llama-lora") + "\0x").Dispose(), "an adapter path with a NUL");
            using (var s = NewSession(m))
            using (var g = Sampler.Greedy())
            {
                s.Prefill(Prompt);
                var opts = GreedyOptions(4);
                opts.Stop = new List<string> { "x", "ti\0me" };
                inval(() => s.Generate(g, opts), "a stop string with a NUL");
                inval(() => { using (var st = s.Stream(g, opts)) foreach (var piece in st) { } }, "a stop string with a NUL (stream)");
                string dir = Path.Combine(Path.GetTempPath(), "ember-cs-item19-" + System.Diagnostics.Process.GetCurrentProcess().Id);
                inval(() => s.Save(dir + "/state\0x"), "a state path with a NUL");
                inval(() => s.Load(dir + "/state\0x"), "a state path with a NUL (load)");
                inval(() => g.SetGrammar(m, "root ::= \"yes\"\0 | \"no\""), "a grammar with a NUL");
                inval(() => g.SetJsonSchema(m, "{\"type\": \"object\"}\0"), "a schema with a NUL");
                Eq(5, s.Position, "position after the refused calls");
                // Text to tokenize crosses with its length: a NUL in it is text.
                int[] withNul = m.Tokenizer.Tokenize("a\0b", false, false);
                Check(withNul.Length > m.Tokenizer.Tokenize("a", false, false).Length,
                      "\"a\\0b\" tokenizes to more tokens than \"a\": [" + string.Join(", ", withNul) + "]");
            }
            inval(() => new Chat(m, new ChatParams { System = "Be\0 brief" }, new SessionParams { NThreads = 1 }).Dispose(),
                  "a system message with a NUL");
            using (var chat = new Chat(m, null, new SessionParams { NThreads = 1 }))
            using (var g = Sampler.Greedy())
            {
                inval(() => chat.Say("Hel\0lo", g, GreedyOptions(2)), "a chat message with a NUL");
                Eq(0, chat.NMessages, "messages after a refused turn");
                inval(() => chat.Save(Path.GetTempPath() + "/chat\0x"), "a chat state path with a NUL");
            }
        }
    }

    static void Extra02_LogitBiasAndEog()
    {
        using (var m = LoadModel())
        using (var s = NewSession(m))
        using (var g = Sampler.Greedy())
        {
            s.Prefill(Prompt);
            var tokens = new List<int>();
            var opts = GreedyOptions(1);
            opts.Bias = new Dictionary<int, float> { { Golden[0], float.NegativeInfinity } };
            s.Generate(g, opts, (t, id) => { tokens.Add(id); return true; });
            Check(tokens.Count == 1 && tokens[0] != Golden[0], "a forbidden token is not sampled");
            Check(m.Tokenizer.IsEog(m.Tokenizer.Eos), "EOS ends generation");
            Check((m.Tokenizer.Attr(1) & TokenAttr.Control) != 0, "BOS is a control token");
            Eq(1, m.Tokenizer.Special(SpecialToken.Bos), "special BOS");
            Eq(" time", m.Tokenizer.Piece(378), "piece");
        }
    }

    static void Extra03_SaveLoadAndRender()
    {
        string path = Path.Combine(Path.GetTempPath(), "ember-cs-state-" + Guid.NewGuid().ToString("N"));
        try
        {
            using (var m = LoadModel())
            using (var g = Sampler.Greedy())
            {
                using (var s = NewSession(m)) { s.Prefill(Prompt); s.Save(path); }
                using (var s = NewSession(m))
                {
                    s.Load(path);
                    Eq(5, s.Position, "restored position");
                    var tokens = new List<int>();
                    s.Generate(g, GreedyOptions(16), (t, id) => { tokens.Add(id); return true; });
                    SeqEq(Golden, tokens, "generation from a restored state");
                }
                string rendered = Model.RenderChatTemplate("{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}",
                                                           "{\"messages\": [{\"role\": \"user\", \"content\": \"héllo\"}]}");
                Eq("[user:héllo]", rendered, "chat render (UTF-8 both ways)");
                Check(Model.EstimateMemory(ModelPath, 256).Total > 0, "memory estimate");
            }
        }
        finally { File.Delete(path); }
    }

    static int Main(string[] args)
    {
        ModelPath = Environment.GetEnvironmentVariable("EMBER_TEST_MODEL");
        if (string.IsNullOrEmpty(ModelPath) || !File.Exists(ModelPath))
        {
            Console.Error.WriteLine("EMBER_TEST_MODEL must name stories260K.gguf (got '" + ModelPath + "')");
            return 2;
        }
        var items = typeof(SpecTests).GetMethods(BindingFlags.Static | BindingFlags.NonPublic)
            .Where(mi => (mi.Name.StartsWith("Item") || mi.Name.StartsWith("Extra")) && mi.GetParameters().Length == 0)
            .OrderBy(mi => mi.Name.StartsWith("Item") ? 0 : 1).ThenBy(mi => mi.Name, StringComparer.Ordinal)
            .Where(mi => args.Length == 0 || args.Any(a => mi.Name.StartsWith(a) || mi.Name.Contains(a)))
            .ToList();
        int failed = 0;
        foreach (var item in items)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                item.Invoke(null, null);
                Console.WriteLine("PASS {0} ({1} ms)", item.Name, watch.ElapsedMilliseconds);
            }
            catch (TargetInvocationException tie)
            {
                failed++;
                Console.WriteLine("FAIL {0}: {1}", item.Name, tie.InnerException);
            }
            Console.Out.Flush();
        }
        Console.WriteLine("{0} passed, {1} failed", items.Count - failed, failed);
        return failed == 0 ? 0 : 1;
    }
}

// Just enough JSON for an array of strings and a flat object (no JSON library ships with every Mono).
static class MiniJson
{
    public static List<string> ParseStringArray(string json)
    {
        int i = 0;
        var list = new List<string>();
        Skip(json, ref i);
        Expect(json, ref i, '[');
        Skip(json, ref i);
        if (json[i] == ']') return list;
        while (true)
        {
            Skip(json, ref i);
            list.Add(ParseString(json, ref i));
            Skip(json, ref i);
            if (json[i] == ',') { i++; continue; }
            Expect(json, ref i, ']');
            Skip(json, ref i);
            if (i != json.Length) throw new FormatException("trailing characters at " + i);
            return list;
        }
    }

    /// <summary>A flat JSON object (no nested objects or arrays): strings as string, integers as long, other
    /// numbers and literals as their text.</summary>
    public static Dictionary<string, object> ParseFlatObject(string json)
    {
        int i = 0;
        var members = new Dictionary<string, object>();
        Skip(json, ref i);
        Expect(json, ref i, '{');
        Skip(json, ref i);
        if (i < json.Length && json[i] == '}') { i++; }
        else
        {
            while (true)
            {
                Skip(json, ref i);
                string key = ParseString(json, ref i);
                Skip(json, ref i);
                Expect(json, ref i, ':');
                Skip(json, ref i);
                object value;
                if (i < json.Length && json[i] == '"') value = ParseString(json, ref i);
                else
                {
                    int start = i;
                    while (i < json.Length && json[i] != ',' && json[i] != '}' && !char.IsWhiteSpace(json[i])) i++;
                    string raw = json.Substring(start, i - start);
                    long n;
                    double d;
                    if (long.TryParse(raw, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out n)) value = n;
                    else if (raw == "true" || raw == "false" || raw == "null" ||
                             double.TryParse(raw, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out d)) value = raw;
                    else throw new FormatException("bad value '" + raw + "' at " + start);
                }
                members.Add(key, value);
                Skip(json, ref i);
                if (i < json.Length && json[i] == ',') { i++; continue; }
                Expect(json, ref i, '}');
                break;
            }
        }
        Skip(json, ref i);
        if (i != json.Length) throw new FormatException("trailing characters at " + i);
        return members;
    }

    static void Skip(string s, ref int i) { while (i < s.Length && char.IsWhiteSpace(s[i])) i++; }
    static void Expect(string s, ref int i, char c)
    {
        if (i >= s.Length || s[i] != c) throw new FormatException("expected '" + c + "' at " + i);
        i++;
    }

    static string ParseString(string s, ref int i)
    {
        Expect(s, ref i, '"');
        var sb = new StringBuilder();
        while (true)
        {
            char c = s[i++];
            if (c == '"') return sb.ToString();
            if (c != '\\') { sb.Append(c); continue; }
            char e = s[i++];
            switch (e)
            {
                case '"': sb.Append('"'); break;
                case '\\': sb.Append('\\'); break;
                case '/': sb.Append('/'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'u': sb.Append((char)Convert.ToInt32(s.Substring(i, 4), 16)); i += 4; break;
                default: throw new FormatException("bad escape at " + i);
            }
        }
    }
}
