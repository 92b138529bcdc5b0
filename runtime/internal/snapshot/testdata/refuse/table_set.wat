(module (memory 1) (table 1 funcref)
  (func (table.set 0 (i32.const 0) (ref.null func))))
