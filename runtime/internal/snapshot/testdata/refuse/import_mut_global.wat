(module (import "env" "g" (global (mut i32))) (memory 1))
