"""The wheel carries libcapmonster, a C library that does not depend on Python's ABI: so the
wheel is tagged py3-none-<platform> (auditwheel then makes the platform manylinux_*).

The library file comes from $CAPMONSTER_WHEEL_LIBRARY (a path), else the repository's
target/release/libcapmonster.so (`cargo build --release`). Without either the build fails
rather than make a wheel that cannot load.
"""

import os
import pathlib
import shutil

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py
from wheel.bdist_wheel import bdist_wheel

HERE = pathlib.Path(__file__).resolve().parent


def library() -> pathlib.Path:
    given = os.environ.get("CAPMONSTER_WHEEL_LIBRARY")
    path = pathlib.Path(given) if given else HERE.parent.parent / "target" / "release" / "libcapmonster.so"
    if not path.is_file():
        raise SystemExit(f"setup.py: no library at {path}: run cargo build --release, or set CAPMONSTER_WHEEL_LIBRARY")
    return path


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        source = library()
        # capmonster.dll keeps its name on Windows; anything else is the Linux library.
        name = "capmonster.dll" if source.suffix == ".dll" else "libcapmonster.so"
        target = pathlib.Path(self.build_lib) / "capmonster" / name
        shutil.copyfile(source, target)
        target.chmod(0o755)


class BinaryDistribution(Distribution):
    """Platform-specific: the package is installed as platlib, the wheel tagged for a platform."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    def get_tag(self):
        _, _, platform = super().get_tag()
        plat = os.environ.get("CAPMONSTER_WHEEL_PLATFORM", platform)
        return "py3", "none", plat


setup(distclass=BinaryDistribution, cmdclass={"build_py": BuildWithLibrary, "bdist_wheel": PlatformWheel})
