;; wat2wasm: --enable-memory64
(module (memory i64 1))
