package plan_test

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove/plan"
)

// A manifest's plan: SQL expressions compiled against the dataset's schema
// and the manifest's outputs, then run over a batch.
func Example() {
	where, _ := plan.ParseExpr("`PM2.5` IS NOT NULL")
	year, _ := plan.ParseExpr("year")
	station, _ := plan.ParseExpr("station")
	value, _ := plan.ParseExpr("`PM2.5`")
	lit := plan.Literal{
		Version: 1,
		Where:   &where,
		Outputs: []plan.Output{{Name: "pm25_mean", GroupBy: []plan.Expr{station, year}, Value: &value}},
	}
	schema := []plan.Field{{Name: "station", Type: "utf8"}, {Name: "year", Type: "int64"}, {Name: "PM2.5", Type: "float64"}}
	outputs := []plan.OutputSpec{{
		Name: "pm25_mean", Aggregate: "mean", UsesValue: true,
		GroupBy: []plan.GroupSpec{{Values: []string{"Dongsi", "Tiantan"}}, {Values: []string{"2013", "2014"}}},
	}}
	p, err := plan.Compile(lit, schema, outputs)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Text())
	fmt.Println(string(p.Canonical()))

	mem := memory.NewGoAllocator()
	sb := array.NewStringBuilder(mem)
	sb.AppendValues([]string{"Dongsi", "Tiantan", "Dongsi", "Aotizhongxin"}, nil)
	yb := array.NewInt64Builder(mem)
	yb.AppendValues([]int64{2013, 2014, 2014, 2013}, nil)
	pb := array.NewFloat64Builder(mem)
	pb.AppendValues([]float64{80, 462, 0, 35}, []bool{true, true, false, true})
	cols := []arrow.Array{sb.NewArray(), yb.NewArray(), pb.NewArray()}
	rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{
		{Name: "station", Type: arrow.BinaryTypes.String},
		{Name: "year", Type: arrow.PrimitiveTypes.Int64},
		{Name: "PM2.5", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil), cols, 4)
	defer rec.Release()

	outs, err := p.NewEvaluator().Batch(rec)
	if err != nil {
		fmt.Println(err)
		return
	}
	for row, part := range outs[0].Part {
		if part < 0 {
			fmt.Printf("row %d: contributes nothing\n", row)
			continue
		}
		fmt.Printf("row %d: partition %d, value %v\n", row, part, outs[0].Value[row])
	}
	// Output:
	// WHERE `PM2.5` IS NOT NULL
	// OUTPUT pm25_mean GROUP BY station, `year` VALUE `PM2.5`
	// {"outputs":[{"group_by":[{"col":"station"},{"col":"year"}],"name":"pm25_mean","value":{"col":"PM2.5"}}],"version":1,"where":{"args":[{"col":"PM2.5"}],"op":"is_not_null"}}
	// row 0: partition 0, value 80
	// row 1: partition 3, value 462
	// row 2: contributes nothing
	// row 3: contributes nothing
}
