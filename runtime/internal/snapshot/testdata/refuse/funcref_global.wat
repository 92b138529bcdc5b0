(module (memory 1) (global (mut funcref) (ref.null func)))
