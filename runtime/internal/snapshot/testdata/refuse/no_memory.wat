(module (func (nop)))
