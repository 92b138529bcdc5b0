package report

import (
	"html/template"
	"io"
	"strings"
)

var page = template.Must(template.New("disclosure").Funcs(template.FuncMap{
	"join": strings.Join,
	"date": func(t interface{ Format(string) string }) string { return t.Format("2006-01-02") },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cove disclosure report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1d2733; }
table { border-collapse: collapse; margin-bottom: 2rem; }
th, td { border: 1px solid #c9d1da; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #eef2f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.revoked { color: #a4262c; }
code { font-size: .85em; }
</style>
</head>
<body>
<h1>Disclosure report</h1>
<p>Public-data authorized operation: grants, data products, encrypted queries and resource use, derived from the ledger
alone (regulation art. 32). Generated {{.Generated.Format "2006-01-02 15:04 MST"}} from a ledger of
{{.Ledger.Size}} entries, tree head <code id="ledger-head">{{.Ledger.Hash}}</code>.</p>

<h2 id="grants">Grants</h2>
<table>
<tr><th>grant</th><th>operator</th><th>mode</th><th>scope</th><th>purposes</th><th>mechanisms</th><th>pricing</th><th>period</th><th>status</th></tr>
{{range .Grants}}<tr class="grant">
<td>{{.ID}}</td><td>{{.Operator}}</td><td>{{.Mode}}</td>
<td>{{if .Domain}}domain {{.Domain}}{{else}}{{join .Datasets ", "}}{{end}}</td>
<td>{{join .Purposes ", "}}</td><td>{{join .Mechanisms ", "}}</td><td>{{.Pricing}}</td>
<td>{{date .ValidFrom}} to {{date .ValidUntil}}</td>
<td>{{if .RevokedAt}}<span class="revoked">revoked {{date .RevokedAt}}</span>{{else}}granted {{date .Created}}{{end}}</td>
</tr>{{else}}<tr><td colspan="9">no grants</td></tr>{{end}}
</table>

<h2 id="products">Data products</h2>
<table>
<tr><th>product</th><th>released</th><th>operator</th><th>grant</th><th>dataset (snapshot)</th><th>outputs</th><th>ε</th></tr>
{{range .Products}}<tr class="product">
<td>{{.ID}}</td><td>{{date .Released}}</td><td>{{.Operator}}</td><td>{{.Grant}}</td>
<td>{{.Dataset}}{{if .DatasetSHA256}} <code>{{printf "%.12s" .DatasetSHA256}}</code>{{end}}</td>
<td>{{range .Outputs}}{{.Name}}: {{.Aggregate}} by {{join .GroupBy " × "}} ({{.Partitions}} groups, {{.Mechanism}}, ε {{printf "%.2f" .Epsilon}})<br>{{end}}</td>
<td class="num">{{printf "%.2f" .Epsilon}}</td>
</tr>{{else}}<tr><td colspan="7">no products</td></tr>{{end}}
</table>

<h2 id="queries">Encrypted operator queries</h2>
<p>Each answer is the operator's encrypted vector applied to a differentially private release of the
named aggregate; the sandbox never holds the vector, and only the operator can open the answer.</p>
<table>
<tr><th>query</th><th>answered</th><th>operator</th><th>grant</th><th>dataset</th><th>purpose</th><th>aggregate</th><th>mechanism</th><th>ε</th><th>δ</th></tr>
{{range .Queries}}<tr class="query">
<td>{{.ID}} <code>{{.Query}}</code></td><td>{{date .Answered}}</td><td>{{.Operator}}</td><td>{{.Grant}}</td><td>{{.Dataset}}</td><td>{{.Purpose}}</td>
<td>sums of {{join .Columns ", "}} by {{.GroupBy}} ({{.Groups}} groups)</td><td>{{.Mechanism}}</td>
<td class="num">{{printf "%.2f" .Epsilon}}</td><td class="num">{{printf "%.2g" .Delta}}</td>
</tr>{{else}}<tr><td colspan="10">no queries</td></tr>{{end}}
</table>

<h2 id="usage">Resource use per dataset</h2>
<table>
<tr><th>dataset</th><th>jobs run</th><th>releases</th><th>HE queries</th><th>rejected</th><th>rows read</th><th>bytes read</th><th>guest CPU s</th><th>ε spent</th></tr>
{{range .Usage}}<tr class="usage">
<td>{{.Dataset}}</td><td class="num">{{.Jobs}}</td><td class="num">{{.Releases}}</td><td class="num">{{.Queries}}</td><td class="num">{{.Rejected}}</td>
<td class="num">{{.Rows}}</td><td class="num">{{.Bytes}}</td><td class="num">{{printf "%.1f" .GuestSeconds}}</td><td class="num">{{printf "%.2f" .Epsilon}}</td>
</tr>{{end}}
</table>
</body>
</html>
`))

// WriteHTML renders the disclosure as one static HTML page.
func (d *Disclosure) WriteHTML(w io.Writer) error { return page.Execute(w, d) }
