package plan

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/apache/arrow-go/v18/arrow"
)

// typ is the type of an expression.
type typ uint8

const (
	tInvalid typ = iota // a problem was reported; suppresses further ones
	tNull               // SQL's untyped NULL: always null, takes its context's type
	tBool
	tInt   // int64
	tFloat // float64, finite or null
	tString
	tDate      // days since 1970-01-01
	tTimestamp // nanoseconds since 1970-01-01T00:00:00Z
)

var typNames = [...]string{"invalid", "NULL", "bool", "int64", "float64", "string", "date", "timestamp"}

func (t typ) String() string { return typNames[t] }

func (t typ) numeric() bool { return t == tInt || t == tFloat }

// parseTypeName reads a plan type name (null literals and casts).
func parseTypeName(s string) (typ, bool) {
	for t := tBool; t <= tTimestamp; t++ {
		if typNames[t] == s {
			return t, true
		}
	}
	return tInvalid, false
}

// typeOfArrowName maps a catalog's Arrow type string
// (arrow.DataType.String()) to a plan type.
func typeOfArrowName(s string) (typ, bool) {
	switch s {
	case "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32":
		return tInt, true
	case "float32", "float64":
		return tFloat, true
	case "utf8", "large_utf8":
		return tString, true
	case "bool":
		return tBool, true
	case "date32", "date64":
		return tDate, true
	}
	switch {
	case strings.HasPrefix(s, "timestamp["):
		return tTimestamp, true
	case strings.HasPrefix(s, "dictionary<values=utf8,"), strings.HasPrefix(s, "dictionary<values=large_utf8,"):
		return tString, true
	}
	return tInvalid, false
}

// typeOfArrow maps a batch column's Arrow type to a plan type.
func typeOfArrow(dt arrow.DataType) (typ, bool) {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32:
		return tInt, true
	case arrow.FLOAT32, arrow.FLOAT64:
		return tFloat, true
	case arrow.STRING, arrow.LARGE_STRING:
		return tString, true
	case arrow.BOOL:
		return tBool, true
	case arrow.DATE32, arrow.DATE64:
		return tDate, true
	case arrow.TIMESTAMP:
		return tTimestamp, true
	case arrow.DICTIONARY:
		d := dt.(*arrow.DictionaryType)
		if id := d.ValueType.ID(); (id == arrow.STRING || id == arrow.LARGE_STRING) && arrow.IsInteger(d.IndexType.ID()) {
			return tString, true
		}
	}
	return tInvalid, false
}

// value is one literal value of a known type.
type value struct {
	null bool
	b    bool
	i    int64 // tInt; tDate: days; tTimestamp: nanoseconds
	f    float64
	s    string
}

const (
	nsPerDay = 86_400 * int64(time.Second)
	// Timestamps are nanoseconds in an int64: 1677-09-21 to 2262-04-11.
	minTimestampDay = math.MinInt64/nsPerDay + 1
	maxTimestampDay = math.MaxInt64 / nsPerDay
)

// parseDate reads a date literal (2006-01-02; 2006-1-2 is accepted too).
func parseDate(s string) (int64, bool) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		t, err = time.Parse("2006-1-2", s)
	}
	if err != nil {
		return 0, false
	}
	return floorDiv(t.Unix(), 86_400), true
}

// timestampLayouts are the timestamp literal forms read: RFC 3339 and
// MySQL's, with optional fractional seconds.
var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// parseTimestamp reads a timestamp literal; one without an offset is UTC.
func parseTimestamp(s string) (int64, bool) {
	for _, l := range timestampLayouts {
		t, err := time.Parse(l, s)
		if err != nil {
			continue
		}
		days := floorDiv(t.Unix(), 86_400)
		if days < minTimestampDay || days > maxTimestampDay {
			return 0, false
		}
		return t.UnixNano(), true
	}
	return 0, false
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// Key formatting (the manifest's public values and private keys are these).

func formatInt(v int64) string { return strconv.FormatInt(v, 10) }

func formatFloat(v float64) string {
	if v == 0 {
		return "0" // -0 and 0 are one key
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func formatBool(v bool) string { return strconv.FormatBool(v) }

// formatKeyString replaces the key separator U+001F with U+FFFD.
func formatKeyString(s string) string {
	if strings.IndexByte(s, 0x1f) >= 0 {
		return strings.ReplaceAll(s, "\x1f", "\uFFFD")
	}
	return s
}

func formatDate(days int64) string {
	y, m, d := civil(days)
	if y >= 0 && y <= 9999 {
		var b [10]byte
		put := func(at, v, w int) {
			for k := w - 1; k >= 0; k-- {
				b[at+k] = byte('0' + v%10)
				v /= 10
			}
		}
		put(0, int(y), 4)
		b[4] = '-'
		put(5, m, 2)
		b[7] = '-'
		put(8, d, 2)
		return string(b[:])
	}
	return time.Unix(days*86_400, 0).UTC().Format("2006-01-02")
}

func formatTimestamp(ns int64) string {
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil inverse).
func civil(days int64) (year int64, month, day int) {
	z := days + 719_468
	era := floorDiv(z, 146_097)
	doe := z - era*146_097
	yoe := (doe - doe/1460 + doe/36_524 - doe/146_096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, int(m), int(d)
}

// daysFromCivil is civil's inverse.
func daysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mm := int64(m)
	if mm > 2 {
		mm -= 3
	} else {
		mm += 9
	}
	doy := (153*mm+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146_097 + doe - 719_468
}

func isPrintable(r rune) bool { return unicode.IsPrint(r) }
