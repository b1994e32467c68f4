//go:build !ember_pkgconfig

package ember

// In-tree (and wherever libember is on the linker's path): -lember, the directory through
// CGO_LDFLAGS=-L/path/to/lib and, at run time, LD_LIBRARY_PATH (or an rpath: CGO_LDFLAGS="-L$D -Wl,-rpath,$D").

/*
#cgo LDFLAGS: -lember
*/
import "C"
