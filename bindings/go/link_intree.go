//go:build !capmonster_pkgconfig

package capmonster

// The in-repository build: the header from include/ and the library that
// `cargo build --release` leaves in target/release, found at run time through an rpath.
// Build with -tags capmonster_pkgconfig to use an installed library instead.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lcapmonster -Wl,-rpath,${SRCDIR}/../../target/release
*/
import "C"
