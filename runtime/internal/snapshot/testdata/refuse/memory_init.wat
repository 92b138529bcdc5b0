(module (memory 1) (data $d "abc")
  (func (nop))
  (func (memory.init $d (i32.const 0) (i32.const 0) (i32.const 3))))
