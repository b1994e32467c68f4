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

    internal sealed class ChatHandle : EmberHandle
    {
        protected override void Free(IntPtr h) { NativeMethods.ember_chat_free(h); }
    }

    /// <summary>A tokenizer from ember_tokenizer_load (one borrowed from a model is not wrapped in this).</summary>
    internal sealed class TokenizerHandle : EmberHandle
    {
        protected override void Free(IntPtr h) { NativeMethods.ember_tokenizer_free(h); }
    }
}
