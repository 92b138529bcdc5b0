;; Store-heavy loops for the instrumentation's benchmark: n stores into a
;; 64 KiB array, and n load-add-store updates of it.
(module
  (memory (export "memory") 2)
  (func (export "store") (param $n i32) (local $i i32)
    (loop $l
      (i32.store (i32.and (i32.shl (local.get $i) (i32.const 2)) (i32.const 0xfffc)) (local.get $i))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))
  (func (export "update") (param $n i32) (result i32) (local $i i32) (local $p i32)
    (loop $l
      (local.set $p (i32.and (i32.shl (local.get $i) (i32.const 3)) (i32.const 0xfff8)))
      (i64.store (local.get $p) (i64.add (i64.load (local.get $p)) (i64.extend_i32_u (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (i32.load (i32.const 8)))
  (func (export "fill") (param $d i32) (param $n i32)
    (memory.fill (local.get $d) (i32.const 1) (local.get $n))))
