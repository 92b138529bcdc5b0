(module (memory 1) (table 2 funcref)
  (func (table.copy 0 0 (i32.const 0) (i32.const 1) (i32.const 1))))
