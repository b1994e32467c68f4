using System;

namespace Ember
{
    /// <summary>
    /// A LoRA adapter loaded for a model: immutable, shareable between threads and sessions; apply it with
    /// <see cref="Session.SetAdapters"/>. It keeps the model's weights alive (the Model may be disposed first),
    /// and a session using it keeps it alive (disposing it while a session uses it is safe).
    /// </summary>
    public sealed class Adapter : IDisposable
    {
        internal readonly AdapterHandle Handle;

        Adapter(AdapterHandle handle) { Handle = handle; }

        /// <summary>
        /// Loads an adapter for model from a GGUF adapter file (llama.cpp's convert_lora_to_gguf.py) or a PEFT
        /// folder (adapter_config.json + adapter_model.safetensors). Throws EmberException: Status.Io,
        /// Status.BadFile (a malformed adapter), Status.InvalidArgument (an adapter made for another model) or
        /// Status.Unsupported.
        /// </summary>
        public static Adapter Load(Model model, string path)
        {
            if (model == null) throw new ArgumentNullException("model");
            if (path == null) throw new ArgumentNullException("path");
            AdapterHandle h;
            Status st = NativeMethods.ember_adapter_load(model.Handle, Interop.ToUtf8Z(path, "the path"), out h);
            if (st != Status.Ok)
            {
                var e = Interop.Error(st);  // read on this thread, now
                h.Dispose();
                throw e;
            }
            return new Adapter(h);
        }

        /// <summary>The largest rank of its projections.</summary>
        public int Rank { get { return NativeMethods.ember_adapter_rank(Handle); } }
        /// <summary>How many projections it changes.</summary>
        public int NTargets { get { return NativeMethods.ember_adapter_n_targets(Handle); } }

        /// <summary>Frees the adapter (sessions using it keep it until they stop). Twice is fine.</summary>
        public void Dispose() { Handle.Dispose(); }
    }
}
