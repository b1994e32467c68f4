using System;
using System.Runtime.InteropServices;

namespace Ember
{
    /// <summary>A native ember handle: NULL is invalid; ReleaseHandle calls the matching ember_*_free.</summary>
    internal abstract class EmberHandle : SafeHandle
    {
        protected EmberHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        /// <summary>State a native callback of this object reaches through user_data (a session's abort
        /// callback): freed only after the native object is, so no call still running can see it freed.</summary>
        internal GCHandle CallbackState;

        protected abstract void Free(IntPtr h);

        protected sealed override bool ReleaseHandle()
        {
            Free(handle);
            if (CallbackState.IsAllocated) CallbackState.Free();
            return true;
        }
    }

    internal sealed class ModelHandle : EmberHandle
    {
        protected override void Free(IntPtr h) { NativeMethods.ember_model_free(h); }
    }

    internal sealed class SessionHandle : EmberHandle
    {
        protected override void Free(IntPtr h) { NativeMethods.ember_session_free(h); }
    }

    internal sealed class SamplerHandle : EmberHandle
    {
        protected override void Free(IntPtr h) { NativeMethods.ember_sampler_free(h); }
    }

    internal sealed class AdapterHandle : EmberHandle
    {
        protected override void Free(IntPtr h) { NativeMethods.ember_adapter_free(h); }
    }

    internal sealed class ChatHandle : EmberHandle
    {
        protected override void Free(IntPtr h) { NativeMethods.ember_chat_free(h); }
    }

    /// <summary>
    /// An ember_generation. It holds a reference on the managed handles of its session and sampler
    /// (<see cref="Hold"/>), so disposing either while the generation lives defers their release (and with it
    /// the session's abort state) until the generation is freed, here or by its finalizer.
    /// </summary>
    internal sealed class GenerationHandle : EmberHandle
    {
        SafeHandle _session, _sampler;

        /// <summary>Right after a successful start: the handles whose references the caller took for it.</summary>
        internal void Hold(SafeHandle session, SafeHandle sampler) { _session = session; _sampler = sampler; }

        protected override void Free(IntPtr h)
        {
            NativeMethods.ember_generation_free(h);
            if (_session != null) _session.DangerousRelease();
            if (_sampler != null) _sampler.DangerousRelease();
        }
    }

    /// <summary>A tokenizer from ember_tokenizer_load (one borrowed from a model is not wrapped in this).</summary>
    internal sealed class TokenizerHandle : EmberHandle
    {
        protected override void Free(IntPtr h) { NativeMethods.ember_tokenizer_free(h); }
    }
}
