;; The unit-state attack through what is not linear memory: a mutable
;; global and the memory size. A call that sees the target (a value of 462)
;; stores it in a global and grows memory by a page; every call emits, for
;; each of its rows, the stored value if it has one, 462 if memory has grown,
;; else the row's own value. In unit mode the host restores globals and the
;; memory size before every unit, so only the target's own call can emit it.
;; One float64 column "v"; at most 256 rows per call.
(module
  (import "cove" "output" (func $output (param i32 i32) (result i32)))
  (import "cove" "key" (func $key (param i32 i32) (result i32)))
  (import "cove" "emit" (func $emit (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 4)
  (global $seen (mut f64) (f64.const -1))
  (data (i32.const 1024) "m")
  (data (i32.const 1040) "all")
  (func (export "cove_abi_version") (result i32) (i32.const 1))
  (func (export "cove_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 131072)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "cove_batch") (param $p i32) (param $size i32) (result i32)
    (local $rows i32) (local $vals i32) (local $i i32) (local $v f64) (local $leak f64) (local $out i32) (local $k i32)
    (local.set $rows (i32.load (i32.add (local.get $p) (i32.const 4))))
    (if (i32.gt_u (local.get $rows) (i32.const 256)) (then (return (i32.const 1))))
    ;; column 0's descriptor starts at 16; its values_off is at +16
    (local.set $vals (i32.add (local.get $p) (i32.load (i32.add (local.get $p) (i32.const 32)))))
    (local.set $i (i32.const 0))
    (block $done (loop $scan
      (br_if $done (i32.ge_u (local.get $i) (local.get $rows)))
      (local.set $v (f64.load (i32.add (local.get $vals) (i32.shl (local.get $i) (i32.const 3)))))
      (if (f64.eq (local.get $v) (f64.const 462))
        (then (global.set $seen (local.get $v)) (drop (memory.grow (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $scan)))
    (local.set $leak (f64.const -1))
    (if (i32.gt_u (memory.size) (i32.const 4)) (then (local.set $leak (f64.const 462))))
    (if (f64.ge (global.get $seen) (f64.const 0)) (then (local.set $leak (global.get $seen))))
    (local.set $out (call $output (i32.const 1024) (i32.const 1)))
    (local.set $k (call $key (i32.const 1040) (i32.const 3)))
    (local.set $i (i32.const 0))
    (block $done2 (loop $fill
      (br_if $done2 (i32.ge_u (local.get $i) (local.get $rows)))
      (i32.store (i32.add (i32.const 2048) (i32.shl (local.get $i) (i32.const 2))) (local.get $i))
      (i32.store (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 2))) (local.get $k))
      (local.set $v (f64.load (i32.add (local.get $vals) (i32.shl (local.get $i) (i32.const 3)))))
      (if (f64.ge (local.get $leak) (f64.const 0)) (then (local.set $v (local.get $leak))))
      (f64.store (i32.add (i32.const 8192) (i32.shl (local.get $i) (i32.const 3))) (local.get $v))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $fill)))
    (call $emit (local.get $out) (i32.const 2048) (i32.const 4096) (i32.const 8192) (local.get $rows))
    (i32.const 0)))
