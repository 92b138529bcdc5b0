(module (memory 1) (func (export "cove$g0")))
