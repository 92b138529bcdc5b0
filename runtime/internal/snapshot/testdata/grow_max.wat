;; A memory with a declared maximum below the guest size: memory.grow stops there.
(module
  (memory (export "memory") 1 3)
  (func (export "memory.grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "memory.size") (result i32) (memory.size)))
