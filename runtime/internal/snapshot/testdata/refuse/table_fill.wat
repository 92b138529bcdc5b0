(module (memory 1) (table 1 funcref)
  (func (table.fill 0 (i32.const 0) (ref.null func) (i32.const 1))))
