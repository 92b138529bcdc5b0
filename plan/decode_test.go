package plan

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/covedata/cove"
)

const minimalPlan = `{"version":1,"outputs":[{"name":"x","group_by":[{"col":"a"}]}]}`

func TestDecode(t *testing.T) {
	deep := `{"col":"a"}`
	for range MaxDepth {
		deep = `{"op":"neg","args":[` + deep + `]}`
	}
	wide := make([]string, 0, MaxNodes)
	for range MaxNodes {
		wide = append(wide, `{"int":1}`)
	}
	derived := make([]string, MaxDerived+1)
	for i := range derived {
		derived[i] = fmt.Sprintf(`{"name":"d%d","expr":{"int":1}}`, i)
	}
	outputs := make([]string, MaxOutputs+1)
	for i := range outputs {
		outputs[i] = fmt.Sprintf(`{"name":"o%d","group_by":[]}`, i)
	}
	nested := strings.Repeat("[", 200) + strings.Repeat("]", 200)
	for _, tc := range []struct {
		name string
		in   string
		err  error  // nil: decodes
		msg  string // part of the message
	}{
		{name: "minimal", in: minimalPlan},
		{name: "every kind", in: `{"version":1,"where":{"op":"and","args":[{"bool":true},{"op":"is_not_null","args":[{"col":"PM2.5"}]}]},` +
			`"derive":[{"name":"d","expr":{"op":"cast","args":[{"str":"1"}],"type":"int64"}}],` +
			`"outputs":[{"name":"x","where":{"op":"in","args":[{"col":"a"},{"int":1},{"float":2.5},{"null":"int64"}]},"group_by":[{"date":"2015-01-15"},{"timestamp":"2015-01-15T14:00:00Z"}],"value":{"null":""}}]}`},
		{name: "unknown field", in: `{"version":1,"outputs":[],"extra":1}`, err: cove.ErrInvalid, msg: `unknown field "extra"`},
		{name: "field of another object", in: `{"version":1,"outputs":[{"name":"x","group_by":[{"col":"a","name":"b"}]}]}`, err: cove.ErrInvalid, msg: `unknown field "name"`},
		{name: "case of a key", in: `{"Version":1,"outputs":[]}`, err: cove.ErrInvalid, msg: `unknown field "Version"`},
		{name: "duplicate key", in: `{"version":1,"version":1,"outputs":[]}`, err: cove.ErrInvalid, msg: `"version" appears twice`},
		{name: "trailing object", in: minimalPlan + `{}`, err: cove.ErrInvalid, msg: "data after"},
		{name: "trailing garbage", in: minimalPlan + `x`, err: cove.ErrInvalid},
		{name: "trailing whitespace is fine", in: minimalPlan + " \n"},
		{name: "not an object", in: `[1]`, err: cove.ErrInvalid, msg: "not a JSON object"},
		{name: "empty", in: ``, err: cove.ErrInvalid, msg: "end of JSON"},
		{name: "syntax", in: `{"version":1,`, err: cove.ErrInvalid},
		{name: "string version", in: `{"version":"1","outputs":[]}`, err: cove.ErrInvalid, msg: "cannot unmarshal"},
		{name: "fractional int", in: `{"version":1,"outputs":[{"name":"x","group_by":[{"int":1.5}]}]}`, err: cove.ErrInvalid},
		{name: "int overflow", in: `{"version":1,"outputs":[{"name":"x","group_by":[{"int":99999999999999999999}]}]}`, err: cove.ErrInvalid},
		{name: "float out of range", in: `{"version":1,"outputs":[{"name":"x","group_by":[{"float":1e999}]}]}`, err: cove.ErrInvalid},
		{name: "args not a list", in: `{"version":1,"outputs":[{"name":"x","group_by":[{"op":"neg","args":{}}]}]}`, err: cove.ErrInvalid},
		{name: "JSON null", in: `{"version":1,"where":null,"outputs":[]}`, err: cove.ErrInvalid, msg: "null is not a value"},
		{name: "version 2", in: `{"version":2,"outputs":[]}`, err: cove.ErrInvalid, msg: "version 2, want 1"},
		{name: "two kinds", in: `{"version":1,"outputs":[{"name":"x","group_by":[{"col":"a","int":1}]}]}`, err: cove.ErrInvalid, msg: "sets col and int"},
		{name: "no kind", in: `{"version":1,"outputs":[{"name":"x","group_by":[{}]}]}`, err: cove.ErrInvalid, msg: "names no kind"},
		{name: "args on a literal", in: `{"version":1,"outputs":[{"name":"x","group_by":[{"int":1,"args":[]}]}]}`, err: cove.ErrInvalid},
		{name: "type on a non-cast", in: `{"version":1,"outputs":[{"name":"x","group_by":[{"op":"neg","args":[{"int":1}],"type":"int64"}]}]}`, err: cove.ErrInvalid, msg: "not a cast"},
		{name: "too large", in: `{"version":1,"outputs":[],"derive":[{"name":"` + strings.Repeat("x", MaxPlanBytes) + `","expr":{"int":1}}]}`, err: cove.ErrLimit, msg: "the limit is 65536"},
		{name: "nested too deep", in: `{"version":1,"outputs":` + nested + `}`, err: cove.ErrLimit, msg: "nested deeper"},
		{name: "expression too deep", in: `{"version":1,"where":` + deep + `,"outputs":[]}`, err: cove.ErrLimit, msg: "plan: where: expression deeper than 32"},
		{name: "too many nodes", in: `{"version":1,"where":{"op":"and","args":[` + strings.Join(wide, ",") + `]},"outputs":[]}`, err: cove.ErrLimit, msg: "513 expression nodes, the limit is 512"},
		{name: "too many derived", in: `{"version":1,"derive":[` + strings.Join(derived, ",") + `],"outputs":[]}`, err: cove.ErrLimit, msg: "65 derived columns"},
		{name: "too many outputs", in: `{"version":1,"outputs":[` + strings.Join(outputs, ",") + `]}`, err: cove.ErrLimit, msg: "65 outputs"},
		{name: "long string", in: `{"version":1,"outputs":[{"name":"x","group_by":[{"str":"` + strings.Repeat("é", MaxStringBytes/2+1) + `"}]}]}`, err: cove.ErrLimit, msg: "a string of 4098 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("Decode: %v", err)
			case tc.err == nil:
			case !errors.Is(err, tc.err):
				t.Fatalf("Decode: %v, want an error wrapping %v", err, tc.err)
			case !strings.Contains(err.Error(), tc.msg):
				t.Fatalf("Decode: %v, want it to say %q", err, tc.msg)
			}
		})
	}
}
