package ember

// Build flags shared by every cgo file of the package. The header comes from the repository (capi/);
// linking is chosen by link_default.go (-lember, the library directory given through CGO_LDFLAGS) or,
// with the build tag ember_pkgconfig, link_pkgconfig.go (pkg-config ember, for an installed ember).

/*
#cgo CFLAGS: -I${SRCDIR}/../../capi
*/
import "C"
