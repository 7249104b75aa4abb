#!/usr/bin/env bash
# Builds the NuGet package dist/LibCapMonster.<version>.nupkg (version from Cargo.toml):
#   lib/netstandard2.0/CapMonster.dll (+ CapMonster.xml)   the binding, referencing only netstandard
#   runtimes/linux-x64/native/libcapmonster.so           cargo build --release
#   runtimes/win-x64/native/capmonster.dll               dist/windows-x86_64 (scripts/build-windows.sh)
#   runtimes/win-x86/native/capmonster.dll               dist/windows-i686
#   build/net461/LibCapMonster.targets                   .NET Framework: copies the DLL of the platform
#   LICENSE-MIT, LICENSE-APACHE                          the licences
# CapMonster.dll: mcs compiles against Mono's 4.7.1 reference assemblies, then Pack/Retarget.exe
# points every type reference at netstandard 2.0.0.0 after checking the type is in netstandard
# 2.0 (Mono's netstandard.dll is a facade of forwarders, through which mcs would reference
# mscorlib). Needs Mono's compiler, runtime, mono-devel (the netstandard facade, the reference
# assemblies, Mono.Cecil, xbuild for test-package.sh) and mono-utils (monodis):
# scripts/install-deps.sh nuget. Builds the Windows DLLs when dist/ lacks them (minutes). Prints
# the package's listing.
# Usage: bindings/csharp/pack.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib.sh
source "$here/../../scripts/lib.sh"
root=$REPO_ROOT
cd "$root"
started=$SECONDS
need_deps nuget

id=LibCapMonster
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
# The Go binding's module path names the project's organisation: the same for the package.
repository=https://github.com/libcapmonster/libcapmonster
api=/usr/lib/mono/4.7.1-api # reference assemblies (mono-devel); 4.7.1 is the first with netstandard 2.0 built in

cecil=$(compgen -G '/usr/lib/mono/gac/Mono.Cecil/0.11.*/Mono.Cecil.dll' | head -n 1)

# --- the native libraries ----------------------------------------------------------------------
build_release capmonster
[ -f dist/windows-x86_64/capmonster.dll ] && [ -f dist/windows-i686/capmonster.dll ] || scripts/build-windows.sh

# --- the managed assembly -------------------------------------------------------------------------
out=target/nuget
stage=$out/stage
rm -rf "$out"
mkdir -p "$out/mono" "$stage/lib/netstandard2.0"
mcs_flags=(-warn:4 -warnaserror+ -nologo)
mcs "${mcs_flags[@]}" -r:"$cecil" -out:"$out/Retarget.exe" "$here/Pack/Retarget.cs"
# -nostdlib: only the reference assemblies named here, never the runtime's own mscorlib. The
# file name is the assembly's name (CapMonster, which the tests' InternalsVisibleTo and users' references name).
mcs "${mcs_flags[@]}" -langversion:6 -optimize+ -nostdlib -target:library \
    -r:"$api/mscorlib.dll" -r:"$api/System.dll" -r:"$api/System.Core.dll" \
    -doc:"$stage/lib/netstandard2.0/CapMonster.xml" -out:"$out/mono/CapMonster.dll" "$here"/CapMonster/*.cs
mono "$out/Retarget.exe" "$out/mono/CapMonster.dll" "$api/Facades/netstandard.dll" "$stage/lib/netstandard2.0/CapMonster.dll"
bindings/csharp/Pack/check-assembly.sh "$stage/lib/netstandard2.0/CapMonster.dll"

# --- the native files, where .NET Core and .NET 5+ look for them (runtimes/<rid>/native) ---------
for pair in linux-x64:target/release/libcapmonster.so win-x64:dist/windows-x86_64/capmonster.dll \
    win-x86:dist/windows-i686/capmonster.dll; do
    mkdir -p "$stage/runtimes/${pair%%:*}/native"
    cp "${pair#*:}" "$stage/runtimes/${pair%%:*}/native/"
done

# --- .NET Framework: a copy of the platform's capmonster.dll next to the program (see the file) -
mkdir -p "$stage/build/net461"
cp "$here/Pack/$id.targets" "$stage/build/net461/"
cp LICENSE-MIT LICENSE-APACHE "$stage/"

# --- the manifest ---------------------------------------------------------------------------
description=$(sed -n 's/^description = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
license=$(sed -n 's/^license = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
cat >"$stage/$id.nuspec" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
  <metadata>
    <id>$id</id>
    <version>$version</version>
    <title>CapMonster (libcapmonster for .NET)</title>
    <authors>libcapmonster contributors</authors>
    <description>$description: the C# binding (CapMonster.dll, netstandard2.0) with the native library for linux-x64, win-x64 and win-x86.</description>
    <license type="expression">$license</license>
    <projectUrl>$repository</projectUrl>
    <repository type="git" url="$repository.git" />
    <tags>capmonster captcha native</tags>
    <dependencies>
      <group targetFramework=".NETStandard2.0" />
    </dependencies>
  </metadata>
</package>
EOF

mkdir -p dist
package=dist/$id.$version.nupkg
python3 "$here/Pack/nupkg.py" pack "$stage" "$package"
python3 "$here/Pack/nupkg.py" check "$package"
echo "$package ($(stat -c %s "$package") bytes) built in $((SECONDS - started)) s"
