;; wat2wasm: --enable-multi-memory
(module (memory 1) (memory 1))
