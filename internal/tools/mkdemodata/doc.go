// Command mkdemodata converts Cove's public reference tables (CSV) into the
// Parquet files that package demodata embeds.
//
// Usage, from the repository root:
//
//	go run ./internal/tools/mkdemodata -src ../shared/data -out demodata
//
// It reads, under -src:
//
//	beijing-air-quality/PRSA_Data_<Station>_20130301-20170228.csv  (12 files)
//	adult/adult.data, adult/adult.names
//
// and writes, under -out:
//
//	beijing-air-quality.parquet  all 12 stations in file-name order, one row group per station
//	adult.parquet                one row group
//
// Every source file is checked against the sha256 recorded below before it is
// parsed, and the bytes that were checked are the bytes that are parsed. The
// parsers are strict: a wrong field count, an unquoted string, a quoted
// number or a value that does not parse stops the tool with an error naming
// the file, the line and the column (never the value). Output is
// deterministic: the same sources and the same arrow-go version give
// byte-identical files (zstd, dictionary pages, statistics, no Arrow schema
// stored, so readers return plain utf8 rather than dictionaries). Files are
// written to a temporary name and renamed, so a failure leaves no partial file.
//
// After a change here or an arrow-go upgrade, rerun the tool and update the
// SHA256 values in demodata/demodata.go and demodata/README.md; the
// regeneration test in this directory fails until they agree.
package main
