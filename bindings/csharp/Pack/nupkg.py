#!/usr/bin/env python3
"""Zips a staged package folder into a .nupkg (an OPC zip, as `nuget pack` writes it) and checks it.

Usage: nupkg.py pack STAGE_DIR OUT.nupkg   the folder must hold exactly one ID.nuspec at its top;
                                           [Content_Types].xml and _rels/.rels are added here
       nupkg.py check PKG.nupkg            entries, well-formed XML, nuspec fields; prints the listing
       nupkg.py extract PKG.nupkg DIR

Entries are sorted and dated 1980-01-01 so that the same inputs give the same bytes.
"""

import os
import sys
import xml.etree.ElementTree as ET
import zipfile

NUSPEC_NS = "http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"
TYPES_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
MANIFEST_REL = "http://schemas.microsoft.com/packaging/2010/07/manifest"
DATE = (1980, 1, 1, 0, 0, 0)
# A package far larger than the three native libraries and the assembly means a wrong input.
MAX_ENTRIES = 64
MAX_BYTES = 256 * 1024 * 1024


def fail(message):
    sys.exit("nupkg.py: " + message)


def has_extension(name):
    return "." in name.rsplit("/", 1)[-1]


def content_types(names):
    extensions = sorted({name.rsplit(".", 1)[1].lower() for name in names if has_extension(name)})
    lines = ['<?xml version="1.0" encoding="utf-8"?>', '<Types xmlns="%s">' % TYPES_NS]
    lines.append('  <Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml" />')
    for ext in extensions:
        if ext != "rels":
            lines.append('  <Default Extension="%s" ContentType="application/octet" />' % ext)
    # A name without an extension (LICENSE-MIT) gets its type by name: OPC readers such as
    # NuGet 2's skip an entry with no content type.
    for name in sorted(n for n in names if not has_extension(n)):
        lines.append('  <Override PartName="/%s" ContentType="application/octet" />' % name)
    lines.append("</Types>")
    return "\n".join(lines) + "\n"


def rels(nuspec):
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<Relationships xmlns="%s">\n'
        '  <Relationship Type="%s" Target="/%s" Id="Rmanifest" />\n'
        "</Relationships>\n" % (RELS_NS, MANIFEST_REL, nuspec)
    )


def pack(stage, out):
    files = []
    for folder, _, names in os.walk(stage):
        for name in names:
            path = os.path.join(folder, name)
            files.append(os.path.relpath(path, stage).replace(os.sep, "/"))
    files.sort()
    nuspecs = [f for f in files if "/" not in f and f.endswith(".nuspec")]
    if len(nuspecs) != 1:
        fail("%s must hold exactly one .nuspec at its top, not %d" % (stage, len(nuspecs)))
    if len(files) > MAX_ENTRIES:
        fail("%d files to pack (at most %d)" % (len(files), MAX_ENTRIES))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        def add(name, data):
            info = zipfile.ZipInfo(name, DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)

        add("_rels/.rels", rels(nuspecs[0]))
        for name in files:
            with open(os.path.join(stage, name), "rb") as f:
                add(name, f.read())
        add("[Content_Types].xml", content_types(files + ["_rels/.rels"]))
    os.replace(tmp, out)


def check(pkg):
    with zipfile.ZipFile(pkg) as z:
        infos = z.infolist()
        if len(infos) > MAX_ENTRIES:
            fail("%d entries (at most %d)" % (len(infos), MAX_ENTRIES))
        if sum(i.file_size for i in infos) > MAX_BYTES:
            fail("more than %d bytes unpacked" % MAX_BYTES)
        bad = z.testzip()
        if bad:
            fail("corrupt entry " + bad)
        names = [i.filename for i in infos]
        for required in ("[Content_Types].xml", "_rels/.rels"):
            if required not in names:
                fail("no " + required)
        for name in names:
            if name.endswith((".xml", ".rels", ".nuspec", ".targets")):
                try:
                    ET.fromstring(z.read(name))
                except ET.ParseError as e:
                    fail("%s is not well-formed XML: %s" % (name, e))
        nuspecs = [n for n in names if "/" not in n and n.endswith(".nuspec")]
        if len(nuspecs) != 1:
            fail("%d nuspecs at the top" % len(nuspecs))
        rel = ET.fromstring(z.read("_rels/.rels")).find("{%s}Relationship" % RELS_NS)
        if rel is None or rel.get("Type") != MANIFEST_REL or rel.get("Target") != "/" + nuspecs[0]:
            fail("_rels/.rels does not point at /" + nuspecs[0])
        types = ET.fromstring(z.read("[Content_Types].xml"))
        declared = {d.get("Extension") for d in types.findall("{%s}Default" % TYPES_NS)}
        overridden = {o.get("PartName") for o in types.findall("{%s}Override" % TYPES_NS)}
        for name in names:
            if name == "[Content_Types].xml" or "/" + name in overridden:
                continue
            if not has_extension(name) or name.rsplit(".", 1)[1].lower() not in declared:
                fail("[Content_Types].xml declares no type for " + name)
        meta = ET.fromstring(z.read(nuspecs[0])).find("{%s}metadata" % NUSPEC_NS)
        if meta is None:
            fail("the nuspec has no metadata in namespace " + NUSPEC_NS)
        for field in ("id", "version", "authors", "description", "license", "repository", "dependencies"):
            if meta.find("{%s}%s" % (NUSPEC_NS, field)) is None:
                fail("the nuspec has no " + field)
        if nuspecs[0] != meta.findtext("{%s}id" % NUSPEC_NS) + ".nuspec":
            fail("the nuspec's name is not its id")
        for info in infos:
            print("%10d  %s" % (info.file_size, info.filename))


def extract(pkg, dest):
    with zipfile.ZipFile(pkg) as z:
        for name in z.namelist():
            # No absolute or parent paths out of DEST.
            if name.startswith("/") or ".." in name.split("/"):
                fail("unsafe entry " + name)
        z.extractall(dest)


def main(argv):
    if len(argv) == 4 and argv[1] == "pack":
        pack(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "check":
        check(argv[2])
    elif len(argv) == 4 and argv[1] == "extract":
        extract(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
