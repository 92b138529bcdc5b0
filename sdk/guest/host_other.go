//go:build !wasip1

package guest

// wasmHost is nil off wasip1: only RunLocal provides a host there.
func wasmHost() host { return nil }
