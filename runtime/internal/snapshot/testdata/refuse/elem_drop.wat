(module (memory 1) (table 2 funcref) (elem $e func $f)
  (func $f (elem.drop $e)))
