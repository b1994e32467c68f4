using System.Reflection;
using System.Runtime.CompilerServices;

[assembly: AssemblyTitle("Ember")]
[assembly: AssemblyDescription("C# binding of ember's C ABI (capi/ember.h, ABI 1)")]
[assembly: AssemblyVersion("0.1.0.0")]
// The spec tests check the native struct layouts against the library's.
[assembly: InternalsVisibleTo("SpecTests")]
