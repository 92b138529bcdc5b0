// Package plan holds Cove's data-blind jobs: a plan is what a job computes
// (filters, derived columns, group keys and the value each row
// contributes), written without data, that the host validates and runs
// natively over Arrow columns.
//
// # What a plan is
//
// A plan is JSON (the plan IR, Literal) with an optional where (rows that
// enter at all), derived columns in order (a later one may use an earlier
// one), and one entry per output the manifest declares: its own where, one
// group_by expression per group_by part of the manifest, and the value it
// contributes (absent: 1 per row, a count). Expressions are column
// references, literals and operations:
//
//	{"col": "PM2.5"}  {"int": 3}  {"float": 2.5}  {"str": "Dongsi"}  {"bool": true}
//	{"date": "2015-01-15"}  {"timestamp": "2015-01-15T14:00:00Z"}  {"null": "float64"}
//	{"op": "add", "args": [{"col": "a"}, {"int": 1}]}  {"op": "cast", "args": [...], "type": "int64"}
//
// A plan comes from a manifest (SQL expression text, read by ParseExpr),
// from a guest's planning call, which sees the schema and no data, or from
// the Go SDK. Decode reads the JSON strictly; Compile checks it against the
// dataset's schema and the manifest's outputs and reports every problem at
// once, each naming where it is. A Plan's canonical JSON (Canonical, and
// its SHA256) and its SQL-like Text are what the ledger records and a
// reviewer reads.
//
// # Why data-blind
//
// A guest that sees a whole batch can read one privacy unit's cell and make
// every other row contribute it; no bound on each unit's contributions
// stops that. A plan cannot: it is fixed before any data is read, and each
// row's key and value are a function of that row alone. So removing one
// privacy unit changes only that unit's contributions, which the enclave
// bounds. For the same reason no data value may make evaluation fail (a
// failure would be a channel): anomalies are nulls.
//
// # Semantics
//
// Types are bool, int64, float64, string, date and timestamp. Arrow columns
// map to them: int8…int64 and uint8…uint32 to int64, float32 and float64 to
// float64, utf8, large_utf8 and dictionary<utf8> to string, date32 and
// date64 to date, timestamp of any unit to timestamp (UTC, in nanoseconds:
// values outside 1677–2262 read as null). A float64 NaN or ±Inf in a column
// reads as null: a plan's floats are finite or null.
//
// The logic is SQL's: null in gives null out, except is_null and
// is_not_null, coalesce, case, and the three-valued and/or; a where keeps
// the rows whose predicate is true. Arithmetic on int64 stays int64
// (overflow is null) except div, which is float64; int64 and float64 mix as
// float64, date and timestamp as timestamp, and a string literal compared
// with a date or timestamp is read as one. Division by zero, overflow, the
// log of a non-positive number, the square root of a negative one, any
// non-finite result and a string that does not parse in a cast are null.
// cast rounds float64 to int64 half away from zero. length counts
// characters; substr is 1-based in characters, a negative start counting
// from the end (MySQL's). dow is 0 for Sunday (SQL's DAYOFWEEK is dow + 1).
// bucket(x, width, origin) is origin + floor((x − origin)/width)·width, null
// for a width ≤ 0.
//
// A row contributes to an output when it passes both wheres, no group-by
// part is null and its value is not null. Group keys are formatted as the
// manifest's public values are written: int64 in decimal, float64 in its
// shortest form ('g', −0 as 0), bool as true or false, a string as it is
// with U+001F replaced by U+FFFD, a date as 2006-01-02, a timestamp in RFC
// 3339 (UTC, shortest fraction); the parts of a key are joined by U+001F.
// For public partitions a row's Part is the row-major index over the parts'
// declared values (first part outermost), −1 when a value is not among
// them; for private partitions Part indexes the batch's Keys.
//
// # Evaluation
//
// The Evaluator runs a plan over each record batch in chunks of 4096 rows
// whose intermediate vectors stay in cache. Column references are views of
// the Arrow buffers; a float64 value column is handed out as it is. Over a
// dictionary column an expression that depends on nothing else (a
// comparison with a literal, lower, a group key) is computed once per
// dictionary entry and rows index the result. Time is O(nodes × rows) plus
// the lengths of strings operated on; memory is O(nodes × chunk) plus the
// outputs' per-row results.
//
// # Limits
//
// Plan JSON and SQL text are at most MaxPlanBytes; an expression is at most
// MaxDepth deep; a plan has at most MaxNodes expression nodes (the literals
// of in lists not counted), MaxDerived derived columns and MaxOutputs
// outputs; a string literal is at most MaxStringBytes and an in list at most
// MaxInList literals. Limits wrap cove.ErrLimit, other problems
// cove.ErrInvalid. Messages name places in the plan and its text, never a
// data value.
//
// # Concurrency
//
// A Plan is immutable and safe for concurrent use. An Evaluator is not: it
// reuses its buffers, so use one per goroutine (Plan.NewEvaluator).
package plan
