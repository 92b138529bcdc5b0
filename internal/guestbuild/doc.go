// Package guestbuild builds Go guest modules (WASI reactors) for tests and
// for go generate. The build is reproducible: the same sources and Go
// version give the same bytes.
package guestbuild
