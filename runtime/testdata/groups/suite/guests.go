package suite

import "github.com/apache/arrow-go/v18/arrow"

// growGuest emits memory.size, the pages memory.grow gave, and
// memory.size again.
const growGuest = `(module
  (import "cove" "key" (func $key (param i32 i32) (result i32)))
  (import "cove" "emit" (func $emit (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "beforegrownafter")
  (func (export "cove_abi_version") (result i32) (i32.const 1))
  (func (export "cove_alloc") (param i32) (result i32) (i32.const 8192))
  (func $one (param $k i32) (param $n i32) (param $x f64)
    (i32.store (i32.const 4096) (i32.const 0))
    (i32.store (i32.const 4100) (call $key (local.get $k) (local.get $n)))
    (f64.store (i32.const 4104) (local.get $x))
    (call $emit (i32.const 0) (i32.const 4096) (i32.const 4100) (i32.const 4104) (i32.const 1)))
  (func (export "cove_batch") (param i32 i32) (result i32)
    (local $n i32)
    (call $one (i32.const 0) (i32.const 6) (f64.convert_i32_u (memory.size)))
    (block $done (loop $l
      (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
    (call $one (i32.const 6) (i32.const 5) (f64.convert_i32_u (local.get $n)))
    (call $one (i32.const 11) (i32.const 5) (f64.convert_i32_u (memory.size)))
    (i32.const 0)))`

// planGuest is a guest whose cove_plan body is body; imports adds
// imports. The default body checks that the schema region has no rows and
// hands the first column's name as the plan.
func planGuest(imports, body string) string {
	if body == "" {
		body = planName
	}
	return `(module
  (import "cove" "output" (func $output (param i32 i32) (result i32)))
  (import "cove" "plan" (func $plan (param i32 i32)))
` + imports + `
  (memory (export "memory") 1)
  (data (i32.const 1024) "out")
  (func (export "cove_abi_version") (result i32) (i32.const 1))
  (func (export "cove_alloc") (param i32) (result i32) (i32.const 8192))
  (func (export "cove_batch") (param i32 i32) (result i32) (i32.const 0))
  (func (export "cove_plan") (param $p i32) (param $n i32) (result i32) ` + body + `))`
}

// planName hands column 0's name (the region must have no rows).
const planName = `
    (if (i32.ne (i32.load (i32.add (local.get $p) (i32.const 4))) (i32.const 0)) (then (return (i32.const 1))))
    (drop (call $output (i32.const 1024) (i32.const 3)))
    (call $plan (i32.add (local.get $p) (i32.load (i32.add (local.get $p) (i32.const 16))))
                (i32.load (i32.add (local.get $p) (i32.const 20))))
    (i32.const 0)`

var planSchema = arrow.NewSchema([]arrow.Field{
	{Name: "station", Type: arrow.BinaryTypes.String},
	{Name: "PM2.5", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "city", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}},
	{Name: "day", Type: arrow.FixedWidthTypes.Date32},
}, nil)

// blockGuest is a block-mode guest: outputs "vec" (a block output of
// dimension 2) and "cnt" (contributions). Row 0's value v picks, by v>>32,
// what it does: 0 result [rows, v&0xffff] and a count; 1 a vector of the
// wrong length; 2 the vector twice; 3 a vector for "cnt"; 4 no vector; 5
// emit to "vec"; 6 a NaN; 7 k_emit to "vec".
const blockGuest = `(module
  (import "cove" "key" (func $key (param i32 i32) (result i32)))
  (import "cove" "emit" (func $emit (param i32 i32 i32 i32 i32)))
  (import "cove" "result" (func $result (param i32 i32 i32)))
  (import "cove" "k_bucket" (func $k_bucket (param i32 i32 i32) (result i32)))
  (import "cove" "k_emit" (func $k_emit (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "c")
  (func (export "cove_abi_version") (result i32) (i32.const 1))
  (func (export "cove_alloc") (param i32) (result i32) (i32.const 8192))
  (func (export "cove_batch") (param $p i32) (param $n i32) (result i32)
    (local $v i64) (local $mode i32)
    (local.set $v (i64.load (i32.add (local.get $p) (i32.load (i32.add (local.get $p) (i32.const 32))))))
    (local.set $mode (i32.wrap_i64 (i64.shr_u (local.get $v) (i64.const 32))))
    (f64.store (i32.const 2048) (f64.convert_i32_u (i32.load (i32.add (local.get $p) (i32.const 4)))))
    (f64.store (i32.const 2056) (f64.convert_i64_u (i64.and (local.get $v) (i64.const 0xffff))))
    (i32.store (i32.const 3000) (i32.const 0))
    (i32.store (i32.const 3004) (call $key (i32.const 1024) (i32.const 1)))
    (f64.store (i32.const 3008) (f64.const 1))
    (call $emit (i32.const 1) (i32.const 3000) (i32.const 3004) (i32.const 3008) (i32.const 1))
    (block $done
      (br_if $done (i32.eq (local.get $mode) (i32.const 4)))
      (if (i32.eq (local.get $mode) (i32.const 5)) (then
        (call $emit (i32.const 0) (i32.const 3000) (i32.const 3004) (i32.const 3008) (i32.const 1))))
      (if (i32.eq (local.get $mode) (i32.const 6)) (then (f64.store (i32.const 2056) (f64.const nan))))
      (if (i32.eq (local.get $mode) (i32.const 7)) (then
        (call $k_emit (i32.const 0) (call $k_bucket (i32.const 0) (i32.const 0) (i32.const 0)) (i32.const -1))))
      (call $result (select (i32.const 1) (i32.const 0) (i32.eq (local.get $mode) (i32.const 3)))
        (i32.const 2048) (select (i32.const 3) (i32.const 2) (i32.eq (local.get $mode) (i32.const 1))))
      (if (i32.eq (local.get $mode) (i32.const 2)) (then
        (call $result (i32.const 0) (i32.const 2048) (i32.const 2)))))
    (i32.const 0)))`
