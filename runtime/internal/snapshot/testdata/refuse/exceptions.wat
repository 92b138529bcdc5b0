;; wat2wasm: --enable-exceptions
(module (memory 1) (tag $t)
  (func (throw $t)))
