#!/usr/bin/env bash
# Tests the NuGet package from its own layout: builds it (pack.sh), checks it structurally,
# extracts it into a temporary folder, installs it with Debian's nuget (scripts/install-deps.sh
# nuget) and
# - checks that runtimes/win-x64 and win-x86 hold dist/'s capmonster.dll, PE32+ x86-64 and PE32 i386;
# - .NET Framework: builds a project importing build/net461/LibCapMonster.targets with Mono's
#   xbuild for x64, x86, AnyCPU (with and without Prefer32Bit) and with a RuntimeIdentifier, and
#   checks which capmonster.dll is copied next to the program (none, with a warning, for AnyCPU);
# - compiles the binding's tests against the extracted lib/netstandard2.0/CapMonster.dll;
# - runs one test with the extracted runtimes/linux-x64/native/libcapmonster.so moved away: it
#   must fail to load the library (so nothing else on the machine stands in for it);
# - runs all the tests under Mono against the emulator, the assembly loaded from
#   lib/netstandard2.0 (MONO_PATH) and the native library from runtimes/linux-x64/native only
#   (LD_LIBRARY_PATH). The last line is the tests' "N passed, M failed".
# Usage: bindings/csharp/test-package.sh [test-name-substring...]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib.sh
source "$here/../../scripts/lib.sh"
root=$REPO_ROOT
cd "$root"
started=$SECONDS
# Debian's NuGet client (2.8.7, on Mono) reads the package as NuGet does.
need_deps nuget
"$here/pack.sh"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
package=$root/dist/LibCapMonster.$version.nupkg

work=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-nupkg.XXXXXX")
at_exit rm -rf "$work"
x=$work/package
python3 "$here/Pack/nupkg.py" extract "$package" "$x"

# --- the layout ------------------------------------------------------------------------------
expected='LibCapMonster.nuspec
LICENSE-APACHE
LICENSE-MIT
[Content_Types].xml
_rels/.rels
build/net461/LibCapMonster.targets
lib/netstandard2.0/CapMonster.dll
lib/netstandard2.0/CapMonster.xml
runtimes/linux-x64/native/libcapmonster.so
runtimes/win-x64/native/capmonster.dll
runtimes/win-x86/native/capmonster.dll'
actual=$(cd "$x" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
if [ "$actual" != "$(LC_ALL=C sort <<<"$expected")" ]; then
    echo "test-package.sh: the package holds:" >&2
    echo "$actual" >&2
    exit 1
fi
"$here/Pack/check-assembly.sh" "$x/lib/netstandard2.0/CapMonster.dll"
for pair in win-x64:windows-x86_64:pei-x86-64 win-x86:windows-i686:pei-i386; do
    IFS=: read -r rid arch format <<<"$pair"
    dll=$x/runtimes/$rid/native/capmonster.dll
    cmp "$dll" "dist/$arch/capmonster.dll"
    # objdump -f: "file format pei-x86-64" is PE32+, "pei-i386" is PE32.
    objdump -f "$dll" | grep "file format $format\$" >/dev/null ||
        { echo "test-package.sh: $rid/native/capmonster.dll is not $format" >&2; objdump -f "$dll" >&2; exit 1; }
    echo "$rid/native/capmonster.dll: dist/$arch's, $format"
done
cmp "$x/runtimes/linux-x64/native/libcapmonster.so" target/release/libcapmonster.so

# NuGet's own client installs it from a folder source (no cache: the package, not an older copy)
# and lays out the same files.
nuget install LibCapMonster -Version "$version" -Source "$root/dist" -OutputDirectory "$work/nuget" \
    -NoCache -NonInteractive >"$work/nuget.txt" 2>&1 || { cat "$work/nuget.txt" >&2; exit 1; }
installed=$work/nuget/LibCapMonster.$version
for file in $(grep -e '^lib/' -e '^runtimes/' -e '^build/' -e '^LICENSE-' <<<"$expected"); do
    cmp "$x/$file" "$installed/$file"
done
# (The version from dpkg: `nuget help` into a pipe spins forever wrapping text to a zero-width console.)
echo "nuget $(dpkg-query -W -f '${Version}' nuget 2>/dev/null) installed it from dist/: the same files"

# --- .NET Framework: build/net461/LibCapMonster.targets, imported as a packages.config project
# does, under Mono's xbuild (mono-devel): which capmonster.dll lands next to the program.
framework=$work/framework
mkdir -p "$framework"
echo 'static class Program { static void Main() {} }' >"$framework/Program.cs"
cat >"$framework/Program.csproj" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<Project ToolsVersion="4.0" DefaultTargets="Build" xmlns="http://schemas.microsoft.com/developer/msbuild/2003">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFrameworkVersion>v4.6.1</TargetFrameworkVersion>
    <AssemblyName>Program</AssemblyName>
    <OutputPath>bin\\</OutputPath>
  </PropertyGroup>
  <ItemGroup>
    <Compile Include="Program.cs" />
  </ItemGroup>
  <Import Project="\$(MSBuildToolsPath)\\Microsoft.CSharp.targets" />
  <Import Project="$x/build/net461/LibCapMonster.targets" />
</Project>
EOF
# PROPERTIES EXPECTED: EXPECTED is the rid whose DLL must be copied, or "none".
for case in 'PlatformTarget=x64;Prefer32Bit=false win-x64' 'PlatformTarget=x86;Prefer32Bit=false win-x86' \
    'PlatformTarget=AnyCPU;Prefer32Bit=true win-x86' 'PlatformTarget=AnyCPU;Prefer32Bit=false none' \
    'PlatformTarget=x64;RuntimeIdentifier=win-x64 none'; do
    properties=${case% *} expected=${case##* }
    rm -rf "$framework/bin" "$framework/obj"
    (cd "$framework" && xbuild /nologo /v:minimal "/p:$properties" Program.csproj >"$framework/log.txt" 2>&1) ||
        { cat "$framework/log.txt" >&2; exit 1; }
    if [ "$expected" = none ]; then
        [ ! -e "$framework/bin/capmonster.dll" ] ||
            { echo "test-package.sh: $properties copied a capmonster.dll" >&2; exit 1; }
    else
        cmp "$framework/bin/capmonster.dll" "$x/runtimes/$expected/native/capmonster.dll" ||
            { echo "test-package.sh: $properties did not copy $expected's capmonster.dll" >&2; exit 1; }
    fi
    # The warning comes exactly for AnyCPU without Prefer32Bit and no RuntimeIdentifier.
    warned=no should_warn=no
    grep 'warning : LibCapMonster:' "$framework/log.txt" >/dev/null && warned=yes
    [ "$properties" = 'PlatformTarget=AnyCPU;Prefer32Bit=false' ] && should_warn=yes
    if [ "$warned" != "$should_warn" ]; then
        echo "test-package.sh: $properties: LibCapMonster's warning: $warned" >&2
        cat "$framework/log.txt" >&2
        exit 1
    fi
    echo ".NET Framework build (xbuild), $properties: capmonster.dll of $expected, warning: $warned"
done

# --- the tests, built against the package's assembly ------------------------------------------
# The facade resolves the assembly's netstandard types to Mono's (mono-devel).
mcs -warn:4 -warnaserror+ -nologo -target:exe -r:"$x/lib/netstandard2.0/CapMonster.dll" \
    -r:/usr/lib/mono/4.5/Facades/netstandard.dll -out:"$work/CapMonster.Tests.exe" "$here"/Tests/*.cs
build_release capmonster-emulator
start_emulator

export CAPMONSTER_HEADER="$root/include/capmonster.h"
export MONO_PATH=$x/lib/netstandard2.0
native=$x/runtimes/linux-x64/native
run_tests() { # [test args...]: the tests with the loader path of the package only
    env -u no_proxy -u NO_PROXY -u all_proxy -u ALL_PROXY LD_LIBRARY_PATH="$native" \
        http_proxy=http://127.0.0.1:1 CAPMONSTER_TEST_DEAD_HTTP_PROXY=1 \
        timeout 900 mono --debug "$work/CapMonster.Tests.exe" "$EMULATOR_URL" "$@"
}

# Without the package's native library nothing may load one.
mv "$native/libcapmonster.so" "$work/"
status=0
run_tests GetBalance >"$work/without.txt" 2>&1 || status=$?
mv "$work/libcapmonster.so" "$native/"
if [ "$status" -eq 0 ] || ! grep DllNotFoundException "$work/without.txt" >/dev/null; then
    echo "test-package.sh: without runtimes/linux-x64/native the tests did not fail to load the library:" >&2
    cat "$work/without.txt" >&2
    exit 1
fi
echo "without runtimes/linux-x64/native/libcapmonster.so: DllNotFoundException, as it must"

status=0
run_tests "$@" >"$work/output.txt" 2>&1 || status=$?
summary=$(tail -n 1 "$work/output.txt")
sed '$d' "$work/output.txt"
echo "test-package.sh took $((SECONDS - started)) s"
echo "$summary"
exit $status
