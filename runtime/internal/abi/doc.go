// Package abi is the host side of Cove guest ABI version 1 (docs/abi.md),
// independent of any WebAssembly engine: names and signatures, the batch
// region encoding, and the checks on every host call. An engine binding
// (runtime/wasm for wazero) hands it guest memory as a []byte and turns its
// errors into guest errors.
//
// # Concurrency
//
// A State belongs to one guest instance and is used by one call at a time.
package abi
