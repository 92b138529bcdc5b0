(module (memory 1) (global (mut v128) (v128.const i64x2 0 0)))
