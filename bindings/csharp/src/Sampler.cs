using System;

namespace Ember
{
    /// <summary>Sampler options; a null property keeps ember's default.</summary>
    public sealed class SamplerParams
    {
        /// <summary>Default 0.8; &lt;= 0: greedy.</summary>
        public float? Temperature { get; set; }
        /// <summary>Default 40; &lt;= 0: off.</summary>
        public int? TopK { get; set; }
        /// <summary>Default 0.95; &gt;= 1: off.</summary>
        public float? TopP { get; set; }
        /// <summary>Default 0.05; &lt;= 0: off.</summary>
        public float? MinP { get; set; }
        /// <summary>Default 1.0 (off).</summary>
        public float? RepeatPenalty { get; set; }
        /// <summary>Default 64.</summary>
        public int? PenaltyLastN { get; set; }
        public float? FrequencyPenalty { get; set; }
        public float? PresencePenalty { get; set; }
        /// <summary>Default (and <see cref="Sampler.RandomSeed"/>): a seed from the OS, readable afterwards with <see cref="Sampler.Seed"/>.</summary>
        public ulong? Seed { get; set; }
    }

    /// <summary>Chooses tokens from logits (penalties, top-k, top-p, min-p, temperature). One thread at a time.</summary>
    public sealed class Sampler : IDisposable
    {
        /// <summary>EMBER_SEED_RANDOM.</summary>
        public const ulong RandomSeed = NativeMethods.SeedRandom;

        internal readonly SamplerHandle Handle;

        Sampler(SamplerHandle h) { Handle = h; }

        /// <summary>A sampler with these options (null: defaults). NaN or out-of-range values: Status.InvalidArgument.</summary>
        public Sampler(SamplerParams parameters = null) : this(Create(parameters)) { }

        /// <summary>Always the highest logit (lowest id on ties).</summary>
        public static Sampler Greedy()
        {
            Library.EnsureCompatible();
            SamplerHandle h;
            Status st = NativeMethods.ember_sampler_create_greedy(out h);
            if (st != Status.Ok) { var e = Interop.Error(st); h.Dispose(); throw e; }
            return new Sampler(h);
        }

        static SamplerHandle Create(SamplerParams q)
        {
            Library.EnsureCompatible();
            var p = Interop.InitParams<SamplerParamsNative>(NativeMethods.ember_sampler_params_init_sized);
            if (q != null)
            {
                if (q.Temperature.HasValue) p.temperature = q.Temperature.Value;
                if (q.TopK.HasValue) p.top_k = q.TopK.Value;
                if (q.TopP.HasValue) p.top_p = q.TopP.Value;
                if (q.MinP.HasValue) p.min_p = q.MinP.Value;
                if (q.RepeatPenalty.HasValue) p.repeat_penalty = q.RepeatPenalty.Value;
                if (q.PenaltyLastN.HasValue) p.penalty_last_n = q.PenaltyLastN.Value;
                if (q.FrequencyPenalty.HasValue) p.frequency_penalty = q.FrequencyPenalty.Value;
                if (q.PresencePenalty.HasValue) p.presence_penalty = q.PresencePenalty.Value;
                if (q.Seed.HasValue) p.seed = q.Seed.Value;
            }
            SamplerHandle h;
            Status st = NativeMethods.ember_sampler_create(ref p, out h);
            if (st != Status.Ok) { var e = Interop.Error(st); h.Dispose(); throw e; }
            return h;
        }

        /// <summary>Picks a token from one position's logits and records it for the penalties.</summary>
        public int Sample(float[] logits)
        {
            if (logits == null) throw new ArgumentNullException("logits");
            int token;
            Interop.Check(NativeMethods.ember_sampler_sample(Handle, logits, logits.Length, out token));
            return token;
        }

        /// <summary>Records a token chosen elsewhere so the penalties see it.</summary>
        public void Accept(int token) { Interop.Check(NativeMethods.ember_sampler_accept(Handle, token)); }

        /// <summary>Forgets the history and reseeds with the seed in use (and restarts a grammar).</summary>
        public void Reset() { Interop.Check(NativeMethods.ember_sampler_reset(Handle)); }

        /// <summary>
        /// Constrains sampling to a GBNF grammar (llama.cpp's format) matched against the model's vocabulary: only
        /// tokens that continue it are drawn, and generation ends (StopReason.Eog) once it is complete; Reset()
        /// restarts it. null or "" removes it. A bad grammar is Status.InvalidArgument with a message naming the
        /// line and column, and the sampler keeps the grammar it had.
        /// </summary>
        public void SetGrammar(Model model, string gbnf)
        {
            if (model == null) throw new ArgumentNullException("model");
            Interop.Check(NativeMethods.ember_sampler_set_grammar(Handle, model.Handle, Interop.ToUtf8Z(gbnf, "the grammar")));
        }

        /// <summary>
        /// As <see cref="SetGrammar"/>, with the grammar of the JSON documents a JSON Schema accepts (a subset: type,
        /// properties/required, items, enum, const, anyOf/oneOf, lengths...); null or "": any JSON value.
        /// </summary>
        public void SetJsonSchema(Model model, string schemaJson)
        {
            if (model == null) throw new ArgumentNullException("model");
            Interop.Check(NativeMethods.ember_sampler_set_json_schema(Handle, model.Handle, Interop.ToUtf8Z(schemaJson, "the schema")));
        }

        /// <summary>The GBNF grammar of a JSON Schema, as <see cref="SetJsonSchema"/> uses it.</summary>
        public static string JsonSchemaToGrammar(string schemaJson)
        {
            if (schemaJson == null) throw new ArgumentNullException("schemaJson");
            Library.EnsureCompatible();
            byte[] js = Interop.ToUtf8Z(schemaJson, "the schema");
            return Interop.ReadText((byte[] b, UIntPtr c, out UIntPtr n) => NativeMethods.ember_json_schema_to_grammar(js, b, c, out n));
        }

        /// <summary>The seed in use (the one drawn from the OS for a random seed).</summary>
        public ulong Seed
        {
            get
            {
                ulong seed;
                Interop.Check(NativeMethods.ember_sampler_seed(Handle, out seed));
                return seed;
            }
        }

        public void Dispose() { Handle.Dispose(); }
    }
}
