// Command cove is Cove's one binary.
//
//	cove demo [-data-dir DIR]                run the end-to-end demo on the embedded public data
//	cove ledger verify -data-dir DIR [-head SIZE:HASH]
//	                                         verify the ledger (and that it still holds a published head)
//	cove ledger export -data-dir DIR         write the ledger as JSON lines to stdout
//	cove ledger verify -file FILE            verify an exported ledger
package main
