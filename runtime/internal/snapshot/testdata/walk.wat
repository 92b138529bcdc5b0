;; wat2wasm: --enable-tail-call
;; Instructions of every class the walker knows, computing one checksum, so
;; that a mistake in any immediate's length changes the result or the module.
(module
  (type $ii (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (table $t 4 funcref)
  (elem (table $t) (i32.const 0) func $sq $tail $sq $sq)
  (elem declare func $tail)
  (global $g (mut i64) (i64.const 0))
  (data (i32.const 0) "\01\02\03\04\05\06\07\08\09\0a\0b\0c\0d\0e\0f\10\11\12\13\14\15\16\17\18\19\1a\1b\1c\1d\1e\1f\20")

  (func $sq (type $ii) (i32.mul (local.get 0) (local.get 0)))
  (func $tail (type $ii) (return_call $sq (i32.add (local.get 0) (i32.const 1))))
  (func $tail_indirect (param i32) (result i32)
    (return_call_indirect $t (type $ii) (local.get 0) (i32.const 1)))
  (func $pair (param i32) (result i32 i64)
    (local.get 0) (i64.extend_i32_s (local.get 0)))

  (func (export "run") (param $x i32) (result i64)
    (local $acc i64) (local $v v128) (local $f f64) (local $r funcref)
    ;; scalars: sign extension, saturating truncation, constants
    (local.set $acc (i64.extend32_s (i64.const 0xfffffffff)))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_s (i32.extend8_s (i32.const 0x1ff)))))
    (local.set $acc (i64.add (local.get $acc) (i64.trunc_sat_f64_s (f64.const 1e300))))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (i32.trunc_sat_f32_u (f32.const -5.5)))))
    (local.set $f (f64.add (f64.const 0.25) (f64.promote_f32 (f32.const 3.5))))
    (local.set $acc (i64.add (local.get $acc) (i64.reinterpret_f64 (local.get $f))))
    ;; loads of every width
    (local.set $acc (i64.add (local.get $acc) (i64.load offset=1 (i32.const 0))))
    (local.set $acc (i64.add (local.get $acc) (i64.load32_s align=1 (i32.const 3))))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (i32.load16_u (i32.const 5)))))
    (local.set $acc (i64.add (local.get $acc) (i64.load8_s (i32.const 7))))
    (local.set $acc (i64.add (local.get $acc) (i64.reinterpret_f64 (f64.load (i32.const 8)))))
    ;; SIMD: const, shuffle, lanes, loads, arithmetic
    (local.set $v (v128.const i32x4 1 2 3 4))
    (local.set $v (i8x16.shuffle 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0 (local.get $v) (v128.load (i32.const 0))))
    (local.set $v (i32x4.add (local.get $v) (v128.load8x8_u (i32.const 2))))
    (local.set $v (v128.load32_lane 3 (i32.const 4) (local.get $v)))
    (local.set $v (v128.or (local.get $v) (v128.load64_zero (i32.const 8))))
    (local.set $v (i16x8.add_sat_s (local.get $v) (v128.load16_splat (i32.const 10))))
    (local.set $v (i8x16.replace_lane 5 (local.get $v) (i32.const 77)))
    (local.set $v (f64x2.convert_low_i32x4_u (local.get $v)))
    (local.set $v (i32x4.trunc_sat_f64x2_s_zero (local.get $v)))
    (local.set $acc (i64.add (local.get $acc) (i64x2.extract_lane 0 (local.get $v))))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (i8x16.extract_lane_u 5 (local.get $v)))))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (i8x16.bitmask (i8x16.popcnt (local.get $v))))))
    ;; references, tables, select with a type
    (local.set $r (select (result funcref) (ref.func $tail) (ref.null func) (local.get $x)))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (ref.is_null (local.get $r)))))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (table.size $t))))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (ref.is_null (table.get $t (i32.const 2))))))
    ;; control: br_table, multi-value, call_indirect, tail calls
    (block $a (block $b (block $c
      (br_table $a $b $c (i32.and (local.get $x) (i32.const 3))))
      (local.set $acc (i64.add (local.get $acc) (i64.const 100))))
      (local.set $acc (i64.add (local.get $acc) (i64.const 1000))))
    (call $pair (local.get $x))
    (local.set $acc (i64.add (local.get $acc)))
    i64.extend_i32_u
    (local.get $acc)
    i64.add
    (local.set $acc)
    (local.set $acc (i64.add (local.get $acc)
      (i64.extend_i32_u (call_indirect $t (type $ii) (local.get $x) (i32.const 3)))))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (call $tail_indirect (local.get $x)))))
    (global.set $g (i64.add (global.get $g) (local.get $acc)))
    (i64.store offset=16 (i32.const 0) (global.get $g))
    (v128.store offset=32 (i32.const 0) (local.get $v))
    (i64.add (global.get $g) (i64.load offset=16 (i32.const 0))))
)
