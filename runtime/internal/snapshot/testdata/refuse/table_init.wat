(module (memory 1) (table 2 funcref) (elem $e func $f)
  (func $f (table.init 0 $e (i32.const 0) (i32.const 0) (i32.const 1))))
