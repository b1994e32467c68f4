using System;

namespace Ember
{
    /// <summary>ember_status: the numbers are part of the ABI.</summary>
    public enum Status
    {
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

    /// <summary>
    /// Every failure of an ember call: <see cref="Status"/> says which kind (catch with
    /// <c>catch (EmberException e) when (e.Status == Status.NotFound)</c>), the message is ember_last_error()
    /// read right after the failing call on the same thread.
    /// </summary>
    [Serializable]
    public class EmberException : Exception
    {
        public Status Status { get; private set; }

        public EmberException(Status status, string message) : base(message) { Status = status; }
        public EmberException(Status status, string message, Exception inner) : base(message, inner) { Status = status; }

        /// <summary>ember_status_string: "ok", "invalid argument", ...</summary>
        public string StatusName { get { return Library.StatusString(Status); } }

        public override string ToString() { return "EmberException(" + Status + "): " + Message; }
    }
}
