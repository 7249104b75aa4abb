//go:build capmonster_pkgconfig

package capmonster

// An installed library (scripts/install.sh PREFIX): header and linker flags from
// pkg-config's capmonster.pc. Set PKG_CONFIG_PATH=PREFIX/lib/pkgconfig when PREFIX is not a
// standard location, and CGO_LDFLAGS="-Wl,-rpath,PREFIX/lib" (or LD_LIBRARY_PATH) when the
// dynamic loader does not search PREFIX/lib.

/*
#cgo pkg-config: capmonster
*/
import "C"
