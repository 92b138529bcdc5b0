;; wat2wasm: --enable-threads
(module (memory 1)
  (func (param i32) (result i32) (i32.atomic.load (local.get 0))))
