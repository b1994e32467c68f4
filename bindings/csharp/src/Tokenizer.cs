using System;
using System.Runtime.InteropServices;

namespace Ember
{
    /// <summary>Tokenize flags (EMBER_TOKENIZE_*).</summary>
    [Flags]
    public enum TokenizeFlags : uint { None = 0, AddSpecial = 1, ParseSpecial = 2 }

    /// <summary>Special token roles (EMBER_SPECIAL_*).</summary>
    public enum SpecialToken { Bos = 0, Eos = 1, Eot = 2, Eom = 3, Unk = 4, Sep = 5, Pad = 6, Mask = 7, FimPre = 8, FimSuf = 9, FimMid = 10, FimPad = 11, FimRep = 12, FimSep = 13 }

    /// <summary>Token attribute bits (EMBER_TOKEN_ATTR_*).</summary>
    [Flags]
    public enum TokenAttr : uint { None = 0, Unknown = 1, Unused = 2, Normal = 4, Control = 8, UserDefined = 16, Byte = 32, LStrip = 128, RStrip = 256 }

    /// <summary>
    /// A vocabulary: a model's own (borrowed; valid until the model is disposed, then ObjectDisposedException)
    /// or one loaded alone with <see cref="Load"/> (dispose it). Thread-safe.
    /// </summary>
    public sealed class Tokenizer : IDisposable
    {
        readonly SafeHandle _owner;  // the model's handle, or our own TokenizerHandle
        readonly IntPtr _ptr;
        readonly bool _owned;

        internal Tokenizer(SafeHandle owner, IntPtr ptr) { _owner = owner; _ptr = ptr; }
        Tokenizer(TokenizerHandle h) { _owner = h; _ptr = h.DangerousGetHandle(); _owned = true; }

        /// <summary>Loads only the vocabulary of a GGUF file.</summary>
        public static Tokenizer Load(string path)
        {
            if (path == null) throw new ArgumentNullException("path");
            Library.EnsureCompatible();
            TokenizerHandle h;
            Status st = NativeMethods.ember_tokenizer_load(Interop.ToUtf8Z(path, "the path"), out h);
            if (st != Status.Ok) { var e = Interop.Error(st); h.Dispose(); throw e; }
            return new Tokenizer(h);
        }

        // Every call holds a reference on the owner, so a concurrent Dispose of the model (or of this tokenizer)
        // waits for the call, and a call after it is ObjectDisposedException rather than a dangling pointer.
        delegate T Body<T>(IntPtr tok);
        T With<T>(Body<T> body)
        {
            bool added = false;
            try
            {
                _owner.DangerousAddRef(ref added);
                return body(_ptr);
            }
            finally { if (added) _owner.DangerousRelease(); }
        }

        public int NVocab { get { return With(t => NativeMethods.ember_tokenizer_n_vocab(t)); } }
        public int Bos { get { return With(t => NativeMethods.ember_token_bos(t)); } }
        public int Eos { get { return With(t => NativeMethods.ember_token_eos(t)); } }
        public int Eot { get { return With(t => NativeMethods.ember_token_eot(t)); } }
        /// <summary>Whether ADD_SPECIAL adds BOS / EOS for this vocabulary.</summary>
        public bool AddsBos { get { return With(t => NativeMethods.ember_tokenizer_add_bos(t)) == 1; } }
        public bool AddsEos { get { return With(t => NativeMethods.ember_tokenizer_add_eos(t)) == 1; } }

        public bool IsEog(int token) { return With(t => NativeMethods.ember_token_is_eog(t, token)); }
        public TokenAttr Attr(int token) { return (TokenAttr)With(t => NativeMethods.ember_token_attr(t, token)); }
        /// <summary>The token with a special role, -1 when none.</summary>
        public int Special(SpecialToken which) { return With(t => NativeMethods.ember_token_special(t, (int)which)); }

        /// <summary>Text to token ids (addSpecial: BOS/EOS as the vocabulary asks; parseSpecial: "&lt;|im_start|&gt;" becomes its token).</summary>
        public int[] Tokenize(string text, bool addSpecial = true, bool parseSpecial = false)
        {
            var flags = (addSpecial ? TokenizeFlags.AddSpecial : 0) | (parseSpecial ? TokenizeFlags.ParseSpecial : 0);
            return Tokenize(text, flags);
        }

        public int[] Tokenize(string text, TokenizeFlags flags)
        {
            if (text == null) throw new ArgumentNullException("text");
            byte[] bytes = Interop.ToUtf8(text);
            var len = (UIntPtr)(ulong)bytes.Length;
            return With(t =>
            {
                int n;
                Interop.Check(NativeMethods.ember_tokenize(t, bytes, len, null, 0, (uint)flags, out n));
                for (int attempt = 0; ; attempt++)
                {
                    var ids = new int[n];
                    if (n == 0) return ids;
                    Status st = NativeMethods.ember_tokenize(t, bytes, len, ids, n, (uint)flags, out n);
                    if (st == Status.BufferTooSmall && attempt < 8) continue;
                    Interop.Check(st);
                    if (n != ids.Length) Array.Resize(ref ids, n);
                    return ids;
                }
            });
        }

        /// <summary>Token ids to text; an id outside [0, NVocab) is Status.InvalidArgument.</summary>
        public string Detokenize(int[] tokens, bool renderSpecial = false)
        {
            if (tokens == null) throw new ArgumentNullException("tokens");
            uint flags = renderSpecial ? NativeMethods.DetokenizeRenderSpecial : 0;
            return With(t => Interop.ReadText((byte[] b, UIntPtr c, out UIntPtr n) => NativeMethods.ember_detokenize(t, tokens, tokens.Length, flags, b, c, out n)));
        }

        /// <summary>One token's bytes as detokenizing would produce them (may be part of a UTF-8 character).</summary>
        public byte[] PieceBytes(int token, bool renderSpecial = false)
        {
            uint flags = renderSpecial ? NativeMethods.DetokenizeRenderSpecial : 0;
            return With(t =>
            {
                UIntPtr needed;
                Interop.Check(NativeMethods.ember_token_piece(t, token, flags, null, UIntPtr.Zero, out needed));
                var buf = new byte[(int)needed.ToUInt64()];
                Interop.Check(NativeMethods.ember_token_piece(t, token, flags, buf, needed, out needed));
                var piece = new byte[buf.Length - 1];
                Array.Copy(buf, piece, piece.Length);
                return piece;
            });
        }

        /// <summary>One token's text (a partial UTF-8 character decodes as U+FFFD).</summary>
        public string Piece(int token, bool renderSpecial = false)
        {
            byte[] b = PieceBytes(token, renderSpecial);
            return Interop.FromUtf8(b, 0, b.Length);
        }

        /// <summary>Frees a tokenizer from <see cref="Load"/>; a model's tokenizer is freed with the model (this does nothing).</summary>
        public void Dispose() { if (_owned) _owner.Dispose(); }
    }
}
