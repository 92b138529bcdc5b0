package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove"
	"github.com/covedata/cove/sdk/client"
)

// fakeCove answers like cove serve for one job that is released at once,
// and refuses any other job id.
func fakeCove() *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":"job-1","state":"admitted"}`)
	})
	mux.HandleFunc("GET /v1/jobs/job-1", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"id":"job-1","state":"released"}`)
	})
	mux.HandleFunc("GET /v1/jobs/job-1/release", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"job":"job-1","epsilon":0.5,"outputs":[{"name":"pm25_mean","aggregate":"mean","group_by":["station","year"],
			"rows":[{"key":["Dongsi","2015"],"value":85.2,"noise_stddev":0.4}]}]}`)
	})
	mux.HandleFunc("GET /v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"code":"not_found","message":"not found: job job-2"}`)
	})
	return httptest.NewServer(mux)
}

func ExampleClient_SubmitAndWait() {
	srv := fakeCove()
	defer srv.Close()
	c, _ := client.New(srv.URL, client.WithToken("cove_..."))
	rel, err := c.SubmitAndWait(context.Background(), client.Submission{Manifest: []byte("..."), Module: []byte("...")},
		func(j client.Job) { fmt.Println("job", j.ID, j.State) })
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := rel.Output("pm25_mean")
	row, _ := out.Get("Dongsi", "2015")
	fmt.Printf("%s Dongsi 2015: %.1f (σ %.1f)\n", out.Aggregate, row.Value, row.NoiseStdDev)
	// Output:
	// job job-1 admitted
	// job job-1 released
	// mean Dongsi 2015: 85.2 (σ 0.4)
}

func ExampleError() {
	srv := fakeCove()
	defer srv.Close()
	c, _ := client.New(srv.URL)
	_, err := c.Job(context.Background(), "job-2")
	var apiErr *client.Error
	fmt.Println(errors.Is(err, cove.ErrNotFound), errors.As(err, &apiErr) && apiErr.Status == 404, apiErr.Code)
	// Output:
	// true true not_found
}

// An output's rows as an Arrow record batch, for tools that read Arrow.
func ExampleOutput_Record() {
	out := client.Output{Name: "pm25_mean", Aggregate: "mean", Mechanism: "laplace", Epsilon: 0.5, GroupBy: []string{"station", "year"},
		Rows: []client.Row{{Key: []string{"Aotizhongxin", "2014"}, Value: 87.1, NoiseStdDev: 0.9, CILow: 85.3, CIHigh: 88.9}}}
	rec, err := out.Record(nil)
	if err != nil {
		panic(err)
	}
	defer rec.Release()
	fmt.Println(rec.Schema().Fields()[0].Name, rec.Schema().Fields()[2].Name, rec.NumRows())
	fmt.Println(rec.Column(0).(*array.String).Value(0), rec.Column(2).(*array.Float64).Value(0))
	// Output:
	// station value 1
	// Aotizhongxin 87.1
}
