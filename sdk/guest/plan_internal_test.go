package guest

import (
	"testing"
	"time"
)

func TestCivilDate(t *testing.T) {
	for _, days := range []int64{0, -1, 1, 59, 60, 365, 10957, 11016, 16450, 17589, -719468, 2932896, -25567} {
		want := time.Unix(days*86400, 0).UTC().Format("2006-01-02")
		if got := civilDate(days); got != want {
			t.Errorf("civilDate(%d) = %s, want %s", days, got, want)
		}
	}
}

func TestRFC3339(t *testing.T) {
	tests := []struct {
		v    int64
		unit TimeUnit
	}{
		{0, Second}, {1421330400, Second}, {-1, Second}, {1421330400123, Millisecond}, {-1500, Millisecond},
		{1421330400000001, Microsecond}, {1421330400120000000, Nanosecond}, {-1, Nanosecond}, {951782400, Second},
	}
	for _, tt := range tests {
		per := [...]int64{1, 1e3, 1e6, 1e9}[tt.unit]
		sec, frac := tt.v/per, tt.v%per
		if frac < 0 {
			sec, frac = sec-1, frac+per
		}
		want := time.Unix(sec, frac*(1e9/per)).UTC().Format(time.RFC3339Nano)
		if got := rfc3339(tt.v, tt.unit); got != want {
			t.Errorf("rfc3339(%d, %d) = %s, want %s", tt.v, tt.unit, got, want)
		}
	}
}
