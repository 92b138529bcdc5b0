package plan

import (
	"bytes"
	"strings"
	"testing"
)

func beijingSpecs() []OutputSpec {
	return []OutputSpec{
		{Name: "pm25_mean", Aggregate: "mean", UsesValue: true,
			GroupBy: []GroupSpec{{Values: beijingStations}, {Values: years}}},
		{Name: "bands", Aggregate: "count", GroupBy: []GroupSpec{{Private: true}}},
	}
}

// A golden rendering and hash: the canonical form is what the ledger
// records, so a change to it must be deliberate.
const (
	goldenCanonical = `{"derive":[{"expr":{"args":[{"col":"PM2.5"},{"int":50}],"op":"bucket"},"name":"pm_band"}],` +
		`"outputs":[{"group_by":[{"col":"station"},{"col":"year"}],"name":"pm25_mean","value":{"col":"PM2.5"},` +
		`"where":{"args":[{"col":"year"},{"int":2014}],"op":"ge"}},{"group_by":[{"col":"pm_band"}],"name":"bands"}],` +
		`"version":1,"where":{"args":[{"args":[{"col":"PM2.5"}],"op":"is_not_null"},` +
		`{"args":[{"col":"station"},{"str":"Dongsi"}],"op":"ne"},{"args":[{"col":"at"},{"timestamp":"2015-01-15T06:00:00Z"}],"op":"lt"}],"op":"and"}}`
	goldenText = "WHERE `PM2.5` IS NOT NULL AND station <> 'Dongsi' AND at < TIMESTAMP '2015-01-15T06:00:00Z'\n" +
		"DERIVE pm_band = bucket(`PM2.5`, 50)\n" +
		"OUTPUT pm25_mean WHERE `year` >= 2014 GROUP BY station, `year` VALUE `PM2.5`\n" +
		"OUTPUT bands GROUP BY pm_band"
	goldenSHA256 = "4edcac11b61882c6a9bc56c0b9007f26923449c4d0de3f4456bec9aeae881a51"
)

func goldenPlan(t *testing.T) Literal {
	// Outputs out of the manifest's order, a nested and, a timestamp with
	// an offset: the canonical form normalizes all three.
	lit := planOf(t, "(`PM2.5` IS NOT NULL AND station <> 'Dongsi') AND at < TIMESTAMP '2015-01-15 14:00:00+08:00'",
		[][2]string{{"pm_band", "bucket(`PM2.5`, 50)"}},
		out(t, "bands", "", "", "pm_band"),
		out(t, "pm25_mean", "year >= 2014", "`PM2.5`", "station", "year"),
	)
	return lit
}

func TestCanonical(t *testing.T) {
	p, err := Compile(goldenPlan(t), airSchema, beijingSpecs())
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Canonical()); got != goldenCanonical {
		t.Errorf("Canonical:\n got  %s\n want %s", got, goldenCanonical)
	}
	if got := p.Text(); got != goldenText {
		t.Errorf("Text:\n got  %s\n want %s", got, goldenText)
	}
	if p.SHA256() != goldenSHA256 {
		t.Errorf("SHA256 %s, want %s", p.SHA256(), goldenSHA256)
	}
}

// TestCanonicalRoundTrip: decoding and compiling a canonical plan gives the
// same canonical bytes and text, and every expression of the text parses
// back to the same IR.
func TestCanonicalRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		lit  func(t *testing.T) Literal
	}{
		{"golden", goldenPlan},
		{"every construct", func(t *testing.T) Literal {
			return planOf(t, "NOT (rain OR month IN (1, 2, NULL)) AND `PM2.5` BETWEEN -1.5 AND 1e300 AND wd IS NULL AND day >= DATE '2015-01-01'",
				[][2]string{
					{"c", "CASE WHEN year > 2015 THEN 'late' WHEN year < 2014 THEN NULL ELSE 'mid' END"},
					{"m", "coalesce(abs(TEMP), floor(TEMP), ceil(TEMP), round(TEMP, 2), sqrt(TEMP), exp(TEMP), ln(TEMP), pow(TEMP, 2.0), -TEMP)"},
					{"s", "lower(substr(upper(wd), 1, 2)) = 'ne' OR starts_with(wd, 'N') OR contains(wd, 'E') OR length(wd) > 2"},
					{"d", "year(at) + month(at) + day(at) + hour(at) + minute(at) + second(at) + dow(at) + doy(at) + dayofweek(day)"},
					{"k", "CAST(CAST(year AS CHAR) AS SIGNED) % 7 + CAST(rain AS SIGNED) * 2 - least(month, 3) / greatest(month, 1)"},
				},
				out(t, "pm25_mean", "c <> 'x' AND s", "m", "station", "year"),
				out(t, "bands", "", "", "bucket(k, 3, -1)"),
			)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.lit(t), airSchema, beijingSpecs())
			if err != nil {
				t.Fatal(err)
			}
			lit, err := Decode(p.Canonical())
			if err != nil {
				t.Fatalf("Decode(Canonical): %v\n%s", err, p.Canonical())
			}
			q, err := Compile(lit, airSchema, beijingSpecs())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(q.Canonical(), p.Canonical()) {
				t.Errorf("canonical changed:\n%s\n%s", p.Canonical(), q.Canonical())
			}
			if q.Text() != p.Text() || q.SHA256() != p.SHA256() {
				t.Errorf("text or hash changed:\n%s\n%s", p.Text(), q.Text())
			}
			exprs(&lit, func(loc string, e *Expr) {
				text := sqlText(e)
				back, err := ParseExpr(text)
				if err != nil {
					t.Errorf("%s: ParseExpr(%q): %v", loc, text, err)
					return
				}
				if a, b := exprJSON(normExpr(back)), exprJSON(*e); a != b {
					t.Errorf("%s: %q reads back as\n %s\nnot\n %s", loc, text, a, b)
				}
			})
			if strings.Contains(string(p.Canonical()), " ") && tc.name == "golden" {
				t.Errorf("whitespace in canonical JSON")
			}
		})
	}
}
