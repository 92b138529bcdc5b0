(module (memory 1) (table 1 funcref)
  (func (drop (table.grow 0 (ref.null func) (i32.const 1)))))
