#!/usr/bin/env python3
"""Checks bindings/vba/CapMonster.bas against include/capmonster.h, for 32- and 64-bit VBA.

No VBA runs on this machine, so this is what keeps the Declares honest. For each bitness (the
module's `#If Win64` branches evaluated both ways) it fails when:
  - a header function has no Declare, or a Declare (or Declare-like kernel32 helper) has no
    prototype; a Declare lacks PtrSafe, uses an Alias or another Lib than capmonster.dll;
  - the argument count differs; a parameter's passing is not exactly the C one: a value is
    ByVal of the same width and kind (int32 Long, int64 LongLong or, on 32-bit, Currency,
    size_t LongPtr, double Double); a string (`const char *`), an opaque handle or an address
    (`void *`, a callback) is ByVal LongPtr; an out-parameter (`T **`, `int64_t *`, `double *`) is ByRef of the pointee's type;
    a struct pointer is ByRef of the matching Type; String, Any, Variant, implicit ByRef and
    Optional are refused;
  - the return kind differs (void is a Sub; a pointer LongPtr; integers by width);
  - the 32-bit stdcall argument bytes (the @N of the decorated name) differ: the callee pops
    them, so a wrong size corrupts VBA's stack;
  - a Type's layout differs from its C struct (offsets, widths; padding must be explicit);
  - a CM_* code constant is missing or has another value; LongLong appears in 32-bit code;
  - Example.bas calls a cm_ function that is not declared, or with another argument count.

Then it breaks copies of the module on purpose (a missing function, a dropped argument, a
wrong width, ByVal for an out-parameter, ...) and requires each to be caught.

Usage: scripts/check-vba.py [--def FILE.def]  (from anywhere; --def also compares the @N of a
.def listing stdcall-decorated names, e.g. dist/windows-i686/capmonster.def)
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = os.path.join(ROOT, "include/capmonster.h")
MODULE = os.path.join(ROOT, "bindings/vba/CapMonster.bas")
EXAMPLE = os.path.join(ROOT, "bindings/vba/Example.bas")
LIBRARY = "capmonster.dll"

# The kernel32 functions the string helpers declare, as the Windows SDK declares them (UINT and
# DWORD are 32-bit, int is 32-bit, WCHAR 16-bit).
WINDOWS = """
int32_t MultiByteToWideChar(uint32_t CodePage, uint32_t dwFlags, const char *lpMultiByteStr,
                            int32_t cbMultiByte, uint16_t *lpWideCharStr, int32_t cchWideChar);
int32_t WideCharToMultiByte(uint32_t CodePage, uint32_t dwFlags, const uint16_t *lpWideCharStr,
                            int32_t cchWideChar, char *lpMultiByteStr, int32_t cbMultiByte,
                            const char *lpDefaultChar, int32_t *lpUsedDefaultChar);
int32_t lstrlenA(const char *lpString);
"""
# Buffers the helpers pass as ByVal LongPtr (VarPtr or StrPtr of their own arrays and Strings)
# although C declares them writable: they are buffers, not out-parameters.
WINDOWS_BUFFERS = {"lpWideCharStr", "lpMultiByteStr", "lpUsedDefaultChar"}

# C scalars: (size in bytes or "ptr", kind).
C_SCALARS = {
    "int8_t": (1, "int"), "uint8_t": (1, "int"), "bool": (1, "int"), "char": (1, "int"),
    "int16_t": (2, "int"), "uint16_t": (2, "int"), "int32_t": (4, "int"), "uint32_t": (4, "int"),
    "int": (4, "int"), "int64_t": (8, "int"), "uint64_t": (8, "int"), "float": (4, "float"),
    "double": (8, "float"), "size_t": ("ptr", "int"), "intptr_t": ("ptr", "int"),
    "uintptr_t": ("ptr", "int"),
}
# VBA types that can cross a Declare: (size or "ptr", kind). Currency carries an int64's 8 bytes.
VBA_SCALARS = {
    "byte": (1, "int"), "integer": (2, "int"), "long": (4, "int"), "longlong": (8, "int"),
    "currency": (8, "int"), "longptr": ("ptr", "int"), "single": (4, "float"),
    "double": (8, "float"),
}
VBA_REFUSED = {
    "string": "String is converted to the ANSI code page, not UTF-8: pass ByVal LongPtr of CmUtf8",
    "any": "As Any skips the type check",
    "variant": "a Variant is not a C type",
    "object": "an Object is not a C type",
    "boolean": "a VBA Boolean is 2 bytes (-1 for True)",
    "date": "a Date is not a C type",
}
PLATFORMS = (32, 64)


class CType:
    def __init__(self, base, stars, const):
        self.base, self.stars, self.const = base, stars, const

    def __repr__(self):
        return ("const " if self.const else "") + self.base + (" " + "*" * self.stars if self.stars else "")


def width(size, bits):
    return bits // 8 if size == "ptr" else size


def stack_bytes(size):
    """Bytes a stdcall argument of this size takes on the 32-bit stack (4-byte slots)."""
    return (size + 3) // 4 * 4


# ---------------------------------------------------------------------------------- the header

def parse_c(text, names=r"cm_\w+"):
    """(functions, structs, constants) of a C header: functions {name: (return CType,
    [(param name, CType)])}, structs {name: [(field, CType)]}, constants {name: value}."""
    constants = {m.group(1): int(m.group(2)) for m in re.finditer(r"^#define\s+(CM_\w+)\s+(-?\d+)\s*$", text, re.M)}
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith("#"))
    text = text.replace('extern "C" {', " ")
    aliases, opaque, structs, functions = {}, set(), {}, {}
    for m in re.finditer(r"typedef\s+struct\s*\{(.*?)\}\s*(\w+)\s*;", text, re.S):
        fields = []
        for declaration in m.group(1).split(";"):
            if declaration.strip():
                fields.append(c_declarator(declaration))
        structs[m.group(2)] = fields
    text = re.sub(r"typedef\s+struct\s*\{.*?\}\s*\w+\s*;", " ", text, flags=re.S)
    for m in re.finditer(r"typedef\s+struct\s+(\w+)\s+(\w+)\s*;", text):
        opaque.add(m.group(2))
    # Function pointer types (the log callback): passed as a code address, like a `void *`.
    callback_typedef = r"typedef\s+[^;()]*\(\s*(?:CM_CALL\s*)?\*\s*(\w+)\s*\)\s*\([^()]*\)\s*;"
    callbacks = {m.group(1) for m in re.finditer(callback_typedef, text)}
    text = re.sub(callback_typedef, " ", text)
    for m in re.finditer(r"typedef\s+(\w+)\s+(\w+)\s*;", text):
        aliases[m.group(2)] = m.group(1)
    for statement in text.split(";"):
        m = re.match(r"^\s*([^;(){}]*?)\b(" + names + r")\s*\(([^()]*)\)\s*$", statement, re.S)
        if not m or statement.lstrip().startswith("typedef"):
            continue
        returns = c_type(m.group(1))
        params = []
        if m.group(3).strip() not in ("", "void"):
            params = [c_declarator(p) for p in m.group(3).split(",")]
        if m.group(2) in functions:
            raise ValueError(f"the header declares {m.group(2)} twice")
        functions[m.group(2)] = (returns, params)
    resolve = lambda t: (CType("void", t.stars + 1, False) if t.base in callbacks  # noqa: E731
                         else CType(aliases.get(t.base, t.base), t.stars, t.const))
    for name, (returns, params) in functions.items():
        functions[name] = (resolve(returns), [(p, resolve(t)) for p, t in params])
    for name, fields in structs.items():
        structs[name] = [(f, resolve(t)) for f, t in fields]
    return functions, structs, constants, opaque


def c_type(text):
    words = re.findall(r"\w+|\*", text)
    const = "const" in words
    # Calling-convention and export macros (CM_CALL, __stdcall) sit between type and name.
    words = [w for w in words if w not in ("const", "struct") and not re.fullmatch(r"[A-Z_][A-Z0-9_]*|__\w+", w)]
    stars = words.count("*")
    base = [w for w in words if w != "*"]
    if len(base) != 1:
        raise ValueError(f"cannot read the C type {text.strip()!r}")
    return CType(base[0], stars, const)


def c_declarator(text):
    m = re.match(r"^(.*?)(\w+)\s*$", text.strip(), re.S)
    if not m:
        raise ValueError(f"cannot read the C declaration {text.strip()!r}")
    return m.group(2), c_type(m.group(1))


def c_layout(fields, structs, bits):
    """[(field, offset, size, kind)], total size, alignment of a C struct (natural alignment)."""
    out, offset, align = [], 0, 1
    for name, t in fields:
        if t.stars:
            size, kind = bits // 8, "ptr"
        elif t.base in C_SCALARS:
            size, kind = width(C_SCALARS[t.base][0], bits), C_SCALARS[t.base][1]
        else:
            raise ValueError(f"struct field {name}: {t} is not supported here")
        offset = (offset + size - 1) // size * size
        out.append((name, offset, size, kind))
        offset += size
        align = max(align, size)
    return out, (offset + align - 1) // align * align, align


# ---------------------------------------------------------------------------------- the module

def logical_lines(text):
    """The module's lines without comments, continuations joined: [(line number, text)]."""
    out, pending, start = [], "", None
    for number, line in enumerate(text.splitlines(), 1):
        line = strip_comment(line)
        if start is None:
            start = number
        if line.endswith(" _"):
            pending += line[:-1]
            continue
        out.append((start, (pending + line).strip()))
        pending, start = "", None
    return out


def strip_comment(line):
    quoted = False
    for i, c in enumerate(line):
        if c == '"':
            quoted = not quoted
        elif c == "'" and not quoted:
            return line[:i].rstrip()
    if re.match(r"^\s*Rem\b", line, re.I):
        return ""
    return line.rstrip()


def condition(expr, win64):
    names = {"win64": win64, "win32": True, "vba7": True, "vba6": True, "mac": False, "true": True, "false": False}
    python = []
    for token in re.findall(r"\w+|[()]", expr):
        low = token.lower()
        if low in ("not", "and", "or"):
            python.append(low)
        elif token in "()":
            python.append(token)
        elif low in names:
            python.append(str(names[low]))
        else:
            raise ValueError(f"#If: unknown constant {token!r}")
    return eval(" ".join(python))  # the tokens are only True/False/not/and/or/parentheses


def active_lines(text, win64, where):
    """The lines VBA compiles when Win64 is win64 (VBA7, not Mac)."""
    out, stack = [], []  # stack: (this branch on, some branch taken, enclosing on)
    on = True
    for number, line in logical_lines(text):
        directive = re.match(r"^#(If|ElseIf|Else|End\s+If)\b\s*(.*?)\s*(?:Then)?\s*$", line, re.I)
        if directive:
            word = directive.group(1).lower().replace(" ", "")
            if word == "if":
                value = on and condition(directive.group(2), win64)
                stack.append((value, value, on))
                on = value
            elif not stack:
                raise ValueError(f"{where}:{number}: #{directive.group(1)} without #If")
            elif word == "elseif":
                _, taken, outer = stack[-1]
                value = outer and not taken and condition(directive.group(2), win64)
                stack[-1] = (value, taken or value, outer)
                on = value
            elif word == "else":
                _, taken, outer = stack[-1]
                stack[-1] = (outer and not taken, True, outer)
                on = outer and not taken
            else:
                on = stack.pop()[2]
            continue
        if line.startswith("#"):
            raise ValueError(f"{where}:{number}: unknown directive {line!r}")
        if on and line:
            out.append((number, line))
    if stack:
        raise ValueError(f"{where}: #If without #End If")
    return out


DECLARE = re.compile(r'^(?:(?:Public|Private)\s+)?Declare\s+(PtrSafe\s+)?(Function|Sub)\s+(\w+)\s+Lib\s+"([^"]*)"'
                     r'(?:\s+Alias\s+"([^"]*)")?\s*\((.*)\)\s*(?:As\s+(\w+))?$', re.I)
PARAM = re.compile(r"^(Optional\s+)?(?:(ByVal|ByRef)\s+)?(\w+)(\(\))?(?:\s+As\s+(\w+))?$", re.I)


def parse_module(text, bits, where):
    """(declares, types, constants) of the module for one bitness."""
    lines = active_lines(text, bits == 64, where)
    declares, types, constants, problems = {}, {}, {}, []
    i = 0
    while i < len(lines):
        number, line = lines[i]
        i += 1
        m = re.match(r"^(?:(?:Public|Private)\s+)?Type\s+(\w+)$", line, re.I)
        if m:
            fields = []
            while i < len(lines) and not re.match(r"^End\s+Type$", lines[i][1], re.I):
                f = re.match(r"^(\w+)\s+As\s+(\w+)$", lines[i][1], re.I)
                if not f:
                    problems.append(f"{where}:{lines[i][0]}: cannot read the Type field {lines[i][1]!r}")
                else:
                    fields.append((f.group(1), f.group(2)))
                i += 1
            i += 1
            types[m.group(1).lower()] = (m.group(1), fields)
            continue
        m = re.match(r"^(?:(?:Public|Private)\s+)?Const\s+(CM_\w+)\s+As\s+Long\s*=\s*(-?\d+)$", line, re.I)
        if m:
            constants[m.group(1)] = int(m.group(2))
            continue
        if re.search(r"\bDeclare\b", line, re.I):
            m = DECLARE.match(line)
            if not m:
                problems.append(f"{where}:{number}: cannot read the Declare {line!r}")
                continue
            ptrsafe, kind, name, lib, alias, params, returns = m.groups()
            parsed = []
            for p in [p.strip() for p in params.split(",")] if params.strip() else []:
                pm = PARAM.match(p)
                if not pm:
                    problems.append(f"{where}:{number}: {name}: cannot read the parameter {p!r}")
                    continue
                parsed.append({"optional": bool(pm.group(1)), "passing": (pm.group(2) or "").lower(),
                               "name": pm.group(3), "array": bool(pm.group(4)), "type": pm.group(5) or "Variant"})
            if name in declares:
                problems.append(f"{where}:{number}: {name} is declared twice for {bits}-bit")
            declares[name] = {"line": number, "ptrsafe": bool(ptrsafe), "sub": kind.lower() == "sub", "lib": lib,
                              "alias": alias, "params": parsed, "returns": returns}
        if bits == 32 and re.search(r"\bLongLong\b|\bCLngLng\b", line, re.I):
            problems.append(f"{where}:{number}: LongLong is 64-bit only: 32-bit VBA cannot compile {line!r}")
    return declares, types, constants, problems


# -------------------------------------------------------------------------------- the comparison

def vba_scalar(vba_type, bits):
    """(size, kind) of a VBA type name, or a reason it cannot cross a Declare."""
    low = vba_type.lower()
    if low in VBA_REFUSED:
        return VBA_REFUSED[low]
    if low == "longlong" and bits == 32:
        return "LongLong does not exist in 32-bit VBA (use Currency)"
    if low in VBA_SCALARS:
        size, kind = VBA_SCALARS[low]
        return width(size, bits), kind
    return None


def udt_layout(udt, types, bits, where):
    """[(field, offset, size, kind)] and size of a VBA Type; every field must already sit at its
    natural alignment, so VBA's own packing cannot move it."""
    name, fields = types[udt.lower()]
    out, offset, problems = [], 0, []
    for field, ftype in fields:
        scalar = vba_scalar(ftype, bits)
        if not isinstance(scalar, tuple):
            problems.append(f"{where}: Type {name}.{field}: {scalar or 'unsupported type ' + ftype}")
            continue
        size, kind = scalar
        if offset % size:
            problems.append(f"{where}: Type {name}.{field} ({bits}-bit) is at offset {offset}, not a multiple of "
                            f"its size {size}: make the padding explicit")
        out.append((field, offset, size, "ptr" if ftype.lower() == "longptr" else kind))
        offset += size
    return out, offset, problems


def same_name(c_name, vba_name):
    return c_name.replace("_", "").lower() == vba_name.replace("_", "").lower()


def check_struct(c_name, structs, types, bits, where):
    matches = [k for k in types if same_name(c_name, k)]
    if not matches:
        return [f"{where}: no Type for the C struct {c_name} ({bits}-bit)"]
    c_fields, c_size, _ = c_layout(structs[c_name], structs, bits)
    vba_fields, vba_size, problems = udt_layout(matches[0], types, bits, where)
    vba_name = types[matches[0]][0]
    by_name = {f: (o, s, k) for f, o, s, k in vba_fields}
    for field, offset, size, kind in c_fields:
        found = [v for n, v in by_name.items() if same_name(field, n)]
        if not found:
            problems.append(f"{where}: Type {vba_name} ({bits}-bit) lacks the field {field} of {c_name}")
        elif found[0] != (offset, size, kind):
            problems.append(f"{where}: Type {vba_name}.{field} ({bits}-bit) is offset {found[0][0]}, {found[0][1]} "
                            f"bytes, {found[0][2]}; C has offset {offset}, {size} bytes, {kind}")
    c_names = [f for f, _, _, _ in c_fields]
    for field, offset, size, _ in vba_fields:
        if not any(same_name(c, field) for c in c_names):
            overlap = [c for c, o, s, _ in c_fields if o < offset + size and offset < o + s]
            if overlap:
                problems.append(f"{where}: Type {vba_name}.{field} ({bits}-bit) overlaps {overlap[0]} of {c_name}")
    if vba_size != c_size:
        problems.append(f"{where}: Type {vba_name} ({bits}-bit) is {vba_size} bytes; {c_name} is {c_size}")
    return problems


def check_param(function, index, c_name, ct, p, structs, opaque, types, bits, where, buffers=()):
    """Problems of one parameter, and its 32-bit stack bytes from C and from VBA."""
    label = f"{where}: {function} ({bits}-bit) parameter {index + 1} ({c_name}: {ct})"
    problems = []
    if p["optional"] or p["array"]:
        problems.append(f"{label}: Optional and array parameters cannot match a C parameter")
    if not p["passing"]:
        problems.append(f"{label}: say ByVal or ByRef (VBA's implicit ByRef passes a pointer)")
        return problems, None, None
    byref = p["passing"] == "byref"
    vba_bytes = 4 if byref else None
    if ct.stars == 0:
        if ct.base not in C_SCALARS:
            return [f"{label}: a C {ct} by value is not supported"], None, None
        c_size, c_kind = width(C_SCALARS[ct.base][0], bits), C_SCALARS[ct.base][1]
        c_bytes = stack_bytes(c_size)
        scalar = vba_scalar(p["type"], bits)
        if not isinstance(scalar, tuple):
            return problems + [f"{label}: {p['type']}: {scalar or 'not a C type'}"], c_bytes, vba_bytes
        vba_bytes = vba_bytes or stack_bytes(scalar[0])
        if byref:
            problems.append(f"{label}: ByRef passes a pointer; C takes a {c_size}-byte value (ByVal)")
        elif scalar != (c_size, c_kind):
            problems.append(f"{label}: ByVal {p['type']} is {scalar[0]} bytes ({scalar[1]}); C passes {c_size} "
                            f"bytes ({c_kind})")
        return problems, c_bytes, vba_bytes
    c_bytes = 4
    pointee = CType(ct.base, ct.stars - 1, ct.const)
    string = ct.stars == 1 and ct.base == "char"
    handle = ct.stars == 1 and ct.base in opaque
    # `void *`: the log callback's address and its user data, both opaque to the library.
    address = ct.stars == 1 and ct.base == "void"
    if string or handle or address or c_name in buffers:
        what = "a string" if string else ("an opaque handle" if handle else ("an address" if address else "a buffer"))
        if byref or p["type"].lower() != "longptr":
            problems.append(f"{label}: {what} is passed ByVal ... As LongPtr, not {'ByRef' if byref else 'ByVal'} "
                            f"{p['type']}")
        return problems, c_bytes, vba_bytes or 4
    if not byref:
        problems.append(f"{label}: a pointer to {pointee} (an out-parameter or struct) is passed ByRef of its "
                        f"type, not ByVal {p['type']}")
        return problems, c_bytes, stack_bytes(width(VBA_SCALARS.get(p["type"].lower(), (4, ""))[0], bits))
    if pointee.stars == 0 and pointee.base in structs:
        if p["type"].lower() not in types or not same_name(pointee.base, p["type"]):
            problems.append(f"{label}: ByRef {p['type']} is not the Type of the struct {pointee.base}")
        return problems, c_bytes, vba_bytes
    if pointee.stars > 0:
        c_size, c_kind = bits // 8, "ptr"
    elif pointee.base in C_SCALARS:
        c_size, c_kind = width(C_SCALARS[pointee.base][0], bits), C_SCALARS[pointee.base][1]
    else:
        return problems + [f"{label}: a pointer to {pointee} is not supported"], c_bytes, vba_bytes
    scalar = vba_scalar(p["type"], bits)
    if not isinstance(scalar, tuple):
        problems.append(f"{label}: ByRef {p['type']}: {scalar or 'not a C type'}")
    elif (scalar[0], "ptr" if scalar[1] == "int" and p["type"].lower() == "longptr" else scalar[1]) != (c_size, c_kind) \
            and not (c_kind == "ptr" and p["type"].lower() == "longptr"):
        problems.append(f"{label}: ByRef {p['type']} points at {scalar[0]} bytes ({scalar[1]}); C's {pointee} "
                        f"is {c_size} bytes ({c_kind})")
    return problems, c_bytes, vba_bytes


def check_return(function, returns, d, bits, where):
    label = f"{where}: {function} ({bits}-bit) return"
    if returns.stars == 0 and returns.base == "void":
        return [] if d["sub"] else [f"{label}: C returns void: declare a Sub"]
    if d["sub"]:
        return [f"{label}: C returns {returns}: declare a Function"]
    if d["returns"] is None:
        return [f"{label}: no As: a Variant is not a C type"]
    if returns.stars:
        ok = d["returns"].lower() == "longptr"
        return [] if ok else [f"{label}: C returns a pointer: As LongPtr, not As {d['returns']}"]
    c_size, c_kind = width(C_SCALARS[returns.base][0], bits), C_SCALARS[returns.base][1]
    scalar = vba_scalar(d["returns"], bits)
    if not isinstance(scalar, tuple):
        return [f"{label}: As {d['returns']}: {scalar or 'not a C type'}"]
    if scalar != (c_size, c_kind):
        return [f"{label}: As {d['returns']} is {scalar[0]} bytes ({scalar[1]}); C returns {returns}, {c_size} bytes"]
    return []


def check(header_text, module_text, example_text=None, def_text=None):
    """Every problem found, and the functions' 32-bit @N; checks nothing of the files on disk."""
    functions, structs, constants, opaque = parse_c(header_text)
    windows, _, _, _ = parse_c(WINDOWS, names=r"\w+")
    problems, stack = [], {}
    if not functions:
        problems.append("the header declares no cm_ function: the parser or the header is broken")
    for bits in PLATFORMS:
        where = "CapMonster.bas"
        declares, types, vba_constants, found = parse_module(module_text, bits, where)
        problems += found
        for name in structs:
            problems += check_struct(name, structs, types, bits, where)
        for name, value in constants.items():
            if name.startswith("CM_VERSION_"):
                continue
            if name not in vba_constants:
                problems.append(f"{where}: the constant {name} ({value}) is missing")
            elif vba_constants[name] != value:
                problems.append(f"{where}: {name} is {vba_constants[name]}; the header says {value}")
        for name in vba_constants:
            if name not in constants:
                problems.append(f"{where}: the constant {name} is not in the header")
        for name in functions:
            if name not in declares:
                problems.append(f"{where}: {name} has no Declare for {bits}-bit VBA")
        for name, d in declares.items():
            at = f"{where}:{d['line']}"
            if name in functions:
                returns, params = functions[name]
                buffers = ()
                if d["lib"].lower() not in (LIBRARY, LIBRARY[:-4]):
                    problems.append(f"{at}: {name} is in Lib \"{LIBRARY}\", not \"{d['lib']}\"")
            elif name in windows and d["lib"].lower() in ("kernel32", "kernel32.dll"):
                returns, params = windows[name]
                buffers = WINDOWS_BUFFERS
            else:
                problems.append(f"{at}: {name} (Lib \"{d['lib']}\") is not a function of the header"
                                + (" nor a known kernel32 helper" if not name.startswith("cm_") else ""))
                continue
            if not d["ptrsafe"]:
                problems.append(f"{at}: {name}: Declare PtrSafe is required by 64-bit VBA 7")
            if d["alias"] is not None and d["alias"] != name:
                problems.append(f"{at}: {name}: Alias \"{d['alias']}\": the DLL exports undecorated names")
            problems += check_return(name, returns, d, bits, at)
            if len(params) != len(d["params"]):
                problems.append(f"{at}: {name} ({bits}-bit) takes {len(d['params'])} arguments; C takes "
                                f"{len(params)}")
                continue
            c_total = vba_total = 0
            for i, ((c_name, ct), p) in enumerate(zip(params, d["params"])):
                found, c_bytes, vba_bytes = check_param(name, i, c_name, ct, p, structs, opaque, types, bits, at,
                                                        buffers)
                problems += found
                c_total += c_bytes or 0
                vba_total += vba_bytes or 0
            if bits == 32:
                if c_total != vba_total:
                    problems.append(f"{at}: {name}: 32-bit stdcall argument bytes differ: C @{c_total}, VBA "
                                    f"@{vba_total} (the stack would be corrupted)")
                if name in functions:
                    stack[name] = c_total
        if example_text is not None:
            problems += check_example(example_text, declares, bits)
    if def_text is not None:
        decorated = dict((m.group(1), int(m.group(2)))
                         for m in re.finditer(r"^\s*_?(cm_\w+)@(\d+)", def_text, re.M))
        if not decorated:
            problems.append("the .def lists no decorated name (cm_x@N)")
        for name, n in stack.items():
            if name in decorated and decorated[name] != n:
                problems.append(f".def: {name}@{decorated[name]}; the header gives @{n}")
            elif name not in decorated:
                problems.append(f".def: {name} is not listed decorated")
    return problems, stack


def check_example(text, declares, bits):
    """Every cm_ call of Example.bas names a Declare and passes its argument count."""
    problems = []
    for number, line in active_lines(text, bits == 64, "Example.bas"):
        for m in re.finditer(r"\b(cm_\w+)\b(\s*\(|\s+(?=\S))?", line):
            name = m.group(1)
            if name not in declares:
                problems.append(f"Example.bas:{number}: {name} is not declared in CapMonster.bas ({bits}-bit)")
                continue
            if m.group(2) is None:
                continue
            if m.group(2).strip() == "(":
                args = split_args(line[m.end():])
            elif m.start() == len(line) - len(line.lstrip()):  # a statement call: `cm_x a, b`
                args = split_args(line[m.end():] + ")")
            else:
                continue
            if args is not None and len(args) != len(declares[name]["params"]):
                problems.append(f"Example.bas:{number}: {name} gets {len(args)} arguments; it takes "
                                f"{len(declares[name]['params'])} ({bits}-bit)")
    return problems


def split_args(rest):
    """The top-level arguments before the ')' closing a call, or None if it does not close."""
    depth, quoted, args, current = 0, False, [], ""
    for c in rest:
        if c == '"':
            quoted = not quoted
        elif not quoted:
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    return [a for a in args + [current] if a.strip()]
                depth -= 1
            elif c == "," and depth == 0:
                args.append(current)
                current = ""
                continue
        current += c
    return None


# ------------------------------------------------------------------------ broken copies on purpose

def mutations(header, module):
    """(what, header, module, a phrase the failure must contain): each breaks one thing."""
    def edit(text, old, new, count=1):
        if text.count(old) != count:
            raise AssertionError(f"self-test: {old!r} occurs {text.count(old)} times, expected {count}")
        return text.replace(old, new)

    free = 'Public Declare PtrSafe Sub cm_result_free Lib "capmonster.dll" (ByVal r As LongPtr)\n'
    win64, other = module.split("#Else\nPublic Declare PtrSafe Function cm_wait_result", 1)
    other = "#Else\nPublic Declare PtrSafe Function cm_wait_result" + other
    return [
        ("a function missing", header, edit(module, free, ""), "cm_result_free has no Declare"),
        ("a function the header lacks", header,
         edit(module, free, free + free.replace("cm_result_free", "cm_result_bogus")), "not a function of the header"),
        ("an argument dropped", header,
         edit(module, "(ByVal client As LongPtr, ByVal softId As Long, ByRef outResult As LongPtr)",
              "(ByVal client As LongPtr, ByVal softId As Long)"), "takes 2 arguments; C takes 3"),
        ("an int64 as Long on 32-bit", header,
         win64 + edit(other, "(ByVal client As LongPtr, ByVal taskId As Currency, ByRef options As CmWaitOptions",
                      "(ByVal client As LongPtr, ByVal taskId As Long, ByRef options As CmWaitOptions"),
         "C @20, VBA @16"),
        ("an int64 as Long on 64-bit", header,
         edit(win64, "cm_get_task_result Lib \"capmonster.dll\" (ByVal client As LongPtr, ByVal taskId As LongLong",
              "cm_get_task_result Lib \"capmonster.dll\" (ByVal client As LongPtr, ByVal taskId As Long") + other,
         "ByVal Long is 4 bytes (int); C passes 8"),
        ("LongLong in 32-bit code", header,
         win64 + edit(other, "ByRef outTag As Currency", "ByRef outTag As LongLong"), "LongLong is 64-bit only"),
        ("a ByRef int64 out-parameter as Long", header,
         edit(win64, "ByRef outTaskId As LongLong", "ByRef outTaskId As Long", 2) + other, "points at 4 bytes"),
        ("an out-parameter ByVal", header,
         edit(module, "ByVal clientKey As LongPtr, ByRef outClient As LongPtr",
              "ByVal clientKey As LongPtr, ByVal outClient As LongPtr"), "passed ByRef of its type"),
        ("a handle ByRef", header,
         edit(module, "cm_cancel_trigger Lib \"capmonster.dll\" (ByVal cancel", "cm_cancel_trigger Lib "
              "\"capmonster.dll\" (ByRef cancel"), "an opaque handle is passed ByVal"),
        ("a string as String", header,
         edit(module, "(ByVal client As LongPtr, ByVal baseUrl As LongPtr,",
              "(ByVal client As LongPtr, ByVal baseUrl As String,"), "not ByVal String"),
        ("a pointer returned as Long", header,
         edit(module, "cm_result_message Lib \"capmonster.dll\" (ByVal r As LongPtr) As LongPtr",
              "cm_result_message Lib \"capmonster.dll\" (ByVal r As LongPtr) As Long"), "As LongPtr, not As Long"),
        ("a void function as a Function", header,
         edit(module, "Sub cm_result_free Lib \"capmonster.dll\" (ByVal r As LongPtr)",
              "Function cm_result_free Lib \"capmonster.dll\" (ByVal r As LongPtr) As Long"), "declare a Sub"),
        ("no PtrSafe", header, edit(module, "Declare PtrSafe Function cm_version", "Declare Function cm_version"),
         "PtrSafe is required"),
        ("implicit ByRef", header, edit(module, "(ByVal code As Long)", "(code As Long)"), "say ByVal or ByRef"),
        ("the 64-bit padding removed", header, edit(module, "    Padding As Long\n", ""),
         "Cancel (64-bit) is at offset 4"),
        ("a wrong code", header, edit(module, "CM_ERR_API As Long = 2", "CM_ERR_API As Long = 3"),
         "CM_ERR_API is 3"),
        ("a header argument more", edit(header, "cm_result_code(const cm_result *r);",
                                        "cm_result_code(const cm_result *r, uint32_t flags);"), module,
         "takes 1 arguments; C takes 2"),
        ("a header int32 widened to int64", edit(header, "cm_code_name(int32_t code);",
                                                 "cm_code_name(int64_t code);"), module, "C @8, VBA @4"),
    ]


def self_test(header, module, example):
    """Each broken copy must fail; the header with a calling-convention macro must still pass."""
    caught, failures = 0, []
    for what, broken_header, broken_module, phrase in mutations(header, module):
        problems, _ = check(broken_header, broken_module, example)
        if not any(phrase in p for p in problems):
            failures.append(f"self-test: {what}: not caught (wanted {phrase!r}; got {problems})")
        else:
            caught += 1
    # The stdcall header marks each declaration (const char *CM_CALL cm_version(void);).
    marked = re.sub(r"^(\w[^\n(]*?)(\bcm_\w+\()", r"\1CM_CALL \2", header, flags=re.M)
    if marked == header:
        failures.append("self-test: could not mark the header's declarations with CM_CALL")
    elif check(marked, module, example)[0]:
        failures.append(f"self-test: a CM_CALL-marked header fails: {check(marked, module, example)[0]}")
    example_broken = example.replace("cm_result_free result\n", "cm_result_free result, 0\n", 1)
    if not any("cm_result_free gets 2 arguments" in p for p in check(header, module, example_broken)[0]):
        failures.append("self-test: a wrong argument count in Example.bas is not caught")
    else:
        caught += 1
    return caught, failures


def compiler_stack(header):
    """The @N that MinGW's 32-bit gcc gives each function when the header's declarations are
    made __stdcall: {name: N}, or None without the compiler. An independent check of the
    arithmetic above."""
    gcc, nm = "i686-w64-mingw32-gcc", "i686-w64-mingw32-nm"
    if not (shutil.which(gcc) and shutil.which(nm)):
        return None
    functions = parse_c(header)[0]
    marked = re.sub(r"^(\w[^\n(]*?)(\bcm_\w+\()", r"\1__stdcall \2", header, flags=re.M)
    with tempfile.TemporaryDirectory(prefix="check-vba.") as work:
        with open(os.path.join(work, "capmonster.h"), "w") as f:
            f.write(marked)
        with open(os.path.join(work, "uses.c"), "w") as f:
            f.write('#include "capmonster.h"\nvoid *const uses[] = {\n'
                    + "".join(f"    (void *){name},\n" for name in functions) + "};\n")
        subprocess.run([gcc, "-c", "-o", os.path.join(work, "uses.o"), os.path.join(work, "uses.c")], check=True)
        symbols = subprocess.run([nm, os.path.join(work, "uses.o")], check=True, stdout=subprocess.PIPE,
                                 text=True).stdout
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"\bU _(cm_\w+)@(\d+)$", symbols, re.M)}


def main(argv):
    def_text = None
    if len(argv) == 2 and argv[0] == "--def":
        def_text = open(argv[1], encoding="utf-8").read()
    elif argv:
        print(__doc__, file=sys.stderr)
        return 2
    header = open(HEADER, encoding="utf-8").read()
    # newline="" keeps CRLF as CRLF on disk; the parser splits either. VBA imports ASCII best.
    module = open(MODULE, encoding="ascii").read().replace("\r\n", "\n")
    example = open(EXAMPLE, encoding="ascii").read().replace("\r\n", "\n")
    problems, stack = check(header, module, example, def_text)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"check-vba: {len(problems)} problems", file=sys.stderr)
        return 1
    caught, failures = self_test(header, module, example)
    compiled = compiler_stack(header)
    if compiled is None:
        compared = "not compared with a compiler (no i686-w64-mingw32-gcc)"
    elif compiled != stack:
        failures.append(f"MinGW's stdcall decoration {compiled} differs from the computed {stack}")
    else:
        compared = "the same as i686-w64-mingw32-gcc's stdcall decorations"
    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 1
    print(f"check-vba: {len(stack)} functions match the header for 32- and 64-bit VBA; 32-bit argument bytes "
          f"@0..@{max(stack.values())}, {compared}; {caught} broken copies caught")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
