#!/usr/bin/env bash
# Checks that a .NET assembly is CapMonster and references netstandard 2.0.0.0 and no other assembly: its
# AssemblyRef table (monodis) holds netstandard alone, its TypeRef table names no other, and
# the file contains no "mscorlib" at all (a type name inside an attribute's blob would).
# Usage: check-assembly.sh ASSEMBLY.dll
set -euo pipefail
dll=$1
name=$(monodis --assembly "$dll" | sed -n 's/^Name:[[:space:]]*//p')
if [ "$name" != CapMonster ]; then
    echo "check-assembly.sh: $dll is the assembly '$name', not CapMonster" >&2
    exit 1
fi
refs=$(monodis --assemblyref "$dll" | sed -n 's/^[[:space:]]*Name=//p')
versions=$(monodis --assemblyref "$dll" | sed -n 's/^[0-9]*: Version=//p')
if [ "$refs" != netstandard ] || [ "$versions" != 2.0.0.0 ]; then
    echo "check-assembly.sh: $dll references [$refs] versions [$versions], not netstandard 2.0.0.0 alone" >&2
    exit 1
fi
if monodis --typeref "$dll" | grep -v -e '^Typeref Table' -e '^[0-9]*: \[netstandard\]' -e '^$' >&2; then
    echo "check-assembly.sh: $dll has type references outside netstandard (above)" >&2
    exit 1
fi
if grep -a mscorlib "$dll" >/dev/null; then
    echo "check-assembly.sh: $dll still names mscorlib" >&2
    exit 1
fi
echo "$dll references netstandard 2.0.0.0 only ($(monodis --typeref "$dll" | grep -c '^[0-9]*: ') type references)"
