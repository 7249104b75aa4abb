// Turns the CapMonster.dll that mcs compiled against Mono's reference assemblies into a
// netstandard 2.0 library: every type reference to mscorlib, System or System.Core is pointed at
// `netstandard` 2.0.0.0, after checking that netstandard 2.0 has that type. Needed because mcs
// compiled against netstandard.dll still references mscorlib: Mono ships netstandard.dll only as
// a facade of type forwarders, and mcs follows each forwarder to the type's real assembly.
// What the .NET SDK would emit for a netstandard2.0 project, minus the SDK.
//
// Usage: mono Retarget.exe IN.dll NETSTANDARD-FACADE.dll OUT.dll
// Exit codes: 0 written; 1 a type outside netstandard 2.0 (listed), or an unexpected reference;
// 2 usage.
using System;
using System.Collections.Generic;
using Mono.Cecil;

namespace CapMonster.Pack
{
    internal static class Retarget
    {
        // The assemblies whose netstandard 2.0 types mcs may reference; any other reference is
        // an error (the binding depends on nothing else).
        private static readonly HashSet<string> Framework = new HashSet<string> { "mscorlib", "System", "System.Core" };

        private static int Main(string[] args)
        {
            if (args.Length != 3)
            {
                Console.Error.WriteLine("usage: Retarget.exe IN.dll NETSTANDARD-FACADE.dll OUT.dll");
                return 2;
            }
            var facade = ModuleDefinition.ReadModule(args[1]);
            if (facade.Assembly.Name.Name != "netstandard" || facade.Assembly.Name.Version != new Version(2, 0, 0, 0))
            {
                Console.Error.WriteLine("{0} is {1}, not netstandard 2.0.0.0", args[1], facade.Assembly.Name);
                return 1;
            }
            // The facade forwards exactly netstandard 2.0's types (nested ones as Outer/Inner).
            var surface = new HashSet<string>();
            foreach (var exported in facade.ExportedTypes)
                surface.Add(exported.FullName);

            var module = ModuleDefinition.ReadModule(args[0]);
            AssemblyNameReference corlib = null;
            foreach (var reference in module.AssemblyReferences)
                if (reference.Name == "mscorlib") corlib = reference;
            if (corlib == null)
            {
                Console.Error.WriteLine("{0} does not reference mscorlib", args[0]);
                return 1;
            }
            // Renamed in place, so that what Cecil holds scoped to it (its own type system's
            // primitive types too) is written as netstandard.
            corlib.Name = "netstandard";
            corlib.Version = new Version(2, 0, 0, 0);
            corlib.PublicKeyToken = facade.Assembly.Name.PublicKeyToken;

            var outside = new SortedSet<string>();
            foreach (var type in module.GetTypeReferences())
            {
                var top = type;
                while (top.DeclaringType != null) top = top.DeclaringType;
                var scope = top.Scope as AssemblyNameReference;
                if (scope == null) continue; // a module reference: none in this assembly
                if (scope != corlib && !Framework.Contains(scope.Name))
                {
                    Console.Error.WriteLine("unexpected reference to {0} (type {1})", scope.Name, type.FullName);
                    return 1;
                }
                if (!surface.Contains(type.FullName)) outside.Add(type.FullName + " (from " + (scope == corlib ? "mscorlib" : scope.Name) + ")");
                top.Scope = corlib;
            }
            if (outside.Count > 0)
            {
                Console.Error.WriteLine("not in netstandard 2.0:");
                foreach (var name in outside) Console.Error.WriteLine("  " + name);
                return 1;
            }
            // Every type now comes from netstandard: the other references are unused.
            for (var i = module.AssemblyReferences.Count - 1; i >= 0; i--)
                if (module.AssemblyReferences[i] != corlib) module.AssemblyReferences.RemoveAt(i);

            // As the SDK marks a netstandard2.0 build (NuGet and .NET tools read it).
            var attributeType = new TypeReference("System.Runtime.Versioning", "TargetFrameworkAttribute", module, corlib);
            var constructor = new MethodReference(".ctor", module.TypeSystem.Void, attributeType) { HasThis = true };
            constructor.Parameters.Add(new ParameterDefinition(module.TypeSystem.String));
            var attribute = new CustomAttribute(constructor);
            attribute.ConstructorArguments.Add(new CustomAttributeArgument(module.TypeSystem.String, ".NETStandard,Version=v2.0"));
            attribute.Properties.Add(new CustomAttributeNamedArgument("FrameworkDisplayName",
                new CustomAttributeArgument(module.TypeSystem.String, "")));
            module.Assembly.CustomAttributes.Add(attribute);

            module.Write(args[2]);
            return 0;
        }
    }
}
