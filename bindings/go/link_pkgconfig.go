//go:build ember_pkgconfig

package ember

// An installed ember: go build -tags ember_pkgconfig (PKG_CONFIG_PATH pointing at ember.pc if it is not in
// a default place).

/*
#cgo pkg-config: ember
*/
import "C"
