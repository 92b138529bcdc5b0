package service

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// OpenAPI returns the API's OpenAPI 3.0 document, built from the route
// table. Schemas are named and described; the shapes are those of the Go
// types named in each description.
func OpenAPI() map[string]any {
	paths := map[string]map[string]any{}
	for _, rt := range routeTable() {
		op := map[string]any{
			"summary":      rt.summary,
			"operationId":  operationID(rt),
			"x-cove-roles": rt.roles,
		}
		var params []map[string]any
		for _, name := range pathParams(rt.path) {
			params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range rt.query {
			params = append(params, map[string]any{"name": q.name, "in": "query", "description": q.desc, "schema": map[string]any{"type": q.typ}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if !slices.Contains(rt.roles, Public) {
			op["security"] = []map[string][]string{{"bearer": {}}}
		} else {
			op["security"] = []map[string][]string{{}, {"bearer": {}}}
		}
		if rt.body != "" {
			content := map[string]any{"application/json": map[string]any{"schema": ref(rt.body)}}
			if rt.body == "Submission" {
				content["multipart/form-data"] = map[string]any{"schema": ref("SubmissionForm")}
			}
			if rt.body == "Module" {
				binary := map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}
				content = map[string]any{"application/wasm": binary, "application/octet-stream": binary}
			}
			if rt.body == "Binary" {
				content = map[string]any{"application/octet-stream": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}
			}
			op["requestBody"] = map[string]any{"required": rt.body != "Reason", "content": content}
		}
		status := rt.status
		if status == 0 {
			status = http.StatusOK
		}
		respContent := map[string]any{"application/json": map[string]any{"schema": ref(rt.resp)}}
		if rt.resp == "Text" {
			respContent = map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}
		}
		if rt.resp == "Binary" {
			respContent = map[string]any{"application/octet-stream": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}
		}
		op["responses"] = map[string]any{
			itoa(status): map[string]any{"description": "success", "content": respContent},
			"default":    map[string]any{"description": "an error", "content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}},
		}
		if paths[rt.path] == nil {
			paths[rt.path] = map[string]any{}
		}
		paths[rt.path][strings.ToLower(rt.method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "Cove",
			"version":     "1",
			"description": "Privacy-computing data sandbox: catalog, grants, jobs, reviews, ledger, reports. Error bodies are {code, message}; codes are listed in docs/errors.md plus unauthenticated and forbidden.",
		},
		"paths": paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"schemas":         schemas(),
		},
	}
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

var pathParam = regexp.MustCompile(`\{([a-z]+)\}`)

func pathParams(path string) []string {
	var out []string
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		out = append(out, m[1])
	}
	return out
}

func operationID(rt route) string {
	id := strings.ToLower(rt.method)
	for _, seg := range strings.Split(strings.Trim(rt.path, "/"), "/") {
		seg = strings.Trim(seg, "{}")
		seg = strings.NewReplacer(".", "", "-", "").Replace(seg)
		if seg != "" {
			id += strings.ToUpper(seg[:1]) + seg[1:]
		}
	}
	return id
}

func itoa(n int) string { return strconv.Itoa(n) }
func obj(desc string, props map[string]any, required ...string) map[string]any {
	o := map[string]any{"type": "object", "description": desc}
	if props != nil {
		o["properties"] = props
	}
	if required != nil {
		o["required"] = required
	}
	return o
}

func str() map[string]any                    { return map[string]any{"type": "string"} }
func num() map[string]any                    { return map[string]any{"type": "number"} }
func integer() map[string]any                { return map[string]any{"type": "integer"} }
func boolean() map[string]any                { return map[string]any{"type": "boolean"} }
func array(of map[string]any) map[string]any { return map[string]any{"type": "array", "items": of} }

func schemas() map[string]any {
	return map[string]any{
		"Error": obj("An error: a stable code and a message naming what is at fault, never a data value.", map[string]any{
			"code": str(), "message": str(), "job": str(),
			"violations": array(obj("One admission violation (policy.Violation).", map[string]any{"code": str(), "message": str()})),
		}, "code", "message"),
		"Health":    obj("service.Health", map[string]any{"status": str(), "queued": integer(), "running": integer(), "workers": integer()}),
		"Object":    obj("A JSON document.", nil),
		"Principal": obj("The caller.", map[string]any{"role": str(), "subject": str(), "token_id": str(), "anonymous": boolean()}),
		"Dataset": obj("A catalog entry (policy.Dataset). On registration, columns' types, sha256 and rows may be left out: they are read from the file.", map[string]any{
			"name": str(), "registration_id": str(), "title": str(), "domain": str(), "provider": str(), "source": str(),
			"citation": str(), "license": str(), "sharing": map[string]any{"type": "string", "enum": []string{"open", "unconditional", "conditional", "not-shared"}},
			"level": integer(), "personal": boolean(), "location": str(), "sha256": str(), "rows": integer(),
			"columns": array(obj("policy.Column", map[string]any{"name": str(), "type": str(), "role": str(), "domain": array(str())})),
		}, "name", "location", "sharing", "level"),
		"DatasetList": array(ref("Dataset")),
		"Usage":       obj("report.Usage", map[string]any{"dataset": str(), "jobs": integer(), "releases": integer(), "rejected": integer(), "rows_read": integer(), "bytes_read": integer(), "guest_seconds": num(), "epsilon_spent": num()}),
		"Grant": obj("A grant (policy.Grant; as stored, store.GrantStatus with revoked_at and revoke_reason).", map[string]any{
			"id": str(), "operator": str(), "mode": str(), "domain": str(), "datasets": array(str()), "purposes": array(str()),
			"columns": obj("Per dataset: readable columns.", nil), "mechanisms": array(str()), "epsilon_cap": obj("Per dataset, per period.", nil),
			"delta_cap": obj("Per dataset.", nil), "period": str(), "pricing": str(), "max_jobs": integer(),
			"valid_from": str(), "valid_until": str(), "agreement": str(), "revoked_at": str(), "revoke_reason": str(),
		}, "id", "operator", "mode"),
		"GrantList":  array(ref("Grant")),
		"Reason":     obj("service.ReasonRequest", map[string]any{"reason": str()}),
		"Revocation": obj("service.Revocation", map[string]any{"grant": str(), "cancelled": array(str())}),
		"BudgetList": array(obj("service.BudgetView", map[string]any{"dataset": str(), "budget": obj("policy.Budget", nil), "epsilon_left": num()})),
		"Submission": obj("service.SubmitRequest: the manifest (YAML or JSON text) and either the module (base64) or the sha256 of a module the operator uploaded.", map[string]any{
			"id": str(), "manifest": str(), "module": map[string]any{"type": "string", "format": "byte"},
			"module_sha256": map[string]any{"type": "string", "pattern": "^[0-9a-f]{64}$"},
		}, "manifest"),
		"SubmissionForm": obj("The parts of a multipart submission: module or module_sha256.", map[string]any{
			"id": str(), "manifest": map[string]any{"type": "string", "format": "binary"}, "module": map[string]any{"type": "string", "format": "binary"},
			"module_sha256": str(),
		}, "manifest"),
		"ModuleInfo": obj("service.ModuleInfo: an uploaded module, named in submissions by its sha256.", map[string]any{"sha256": str(), "size": integer()}, "sha256", "size"),
		"Decision":   obj("policy.Decision", map[string]any{"review": boolean(), "flags": array(str())}),
		"Job": obj("service.JobView: a stored job (store.Job) and its queue position.", map[string]any{
			"id": str(), "operator": str(), "grant": str(), "dataset": str(),
			"state":   map[string]any{"type": "string", "enum": []string{"submitted", "in_review", "admitted", "running", "released", "failed", "rejected", "cancelled"}},
			"epsilon": num(), "delta": num(), "manifest_sha256": str(), "module_sha256": str(), "shape_sha256": str(),
			"decision": ref("Decision"), "reason": str(), "created": str(), "updated": str(), "queue_position": integer(),
		}),
		"JobList":   array(ref("Job")),
		"EventList": array(obj("service.Event", map[string]any{"seq": integer(), "time": str(), "kind": str(), "state": str()})),
		"Release": obj("jobs.Release", map[string]any{
			"job": str(), "grant": str(), "dataset": str(), "epsilon": num(),
			"outputs": array(obj("jobs.Output", map[string]any{
				"name": str(), "aggregate": str(), "mechanism": str(), "epsilon": num(), "delta": num(), "lower": num(), "upper": num(),
				"max_partitions": integer(), "max_contributions": integer(), "group_by": array(str()),
				"rows": array(obj("jobs.Row", map[string]any{"key": array(str()), "value": num(), "noise_stddev": num(), "ci95_low": num(), "ci95_high": num()})),
			})),
		}),
		"Review":           obj("service.ReviewRequest", map[string]any{"approve": boolean(), "reason": str()}, "approve", "reason"),
		"Entry":            obj("ledger.Entry: body is hashed as the exact bytes sent.", map[string]any{"seq": integer(), "time": str(), "kind": str(), "subject": str(), "body": obj("", nil), "hash": str()}),
		"EntryList":        array(ref("Entry")),
		"VerifierKey":      obj("service.VerifierKey", map[string]any{"key": str()}),
		"Checkpoint":       obj("service.CheckpointView: a signed tree head.", map[string]any{"size": integer(), "hash": str(), "note": str()}),
		"CheckpointList":   array(ref("Checkpoint")),
		"InclusionProof":   obj("ledger.InclusionProof", map[string]any{"entry": ref("Entry"), "checkpoint": str(), "proof": array(str())}),
		"ConsistencyProof": obj("ledger.ConsistencyProof", map[string]any{"old": str(), "new": str(), "proof": array(str())}),
		"StatementList":    array(obj("report.Statement", nil)),
		"Disclosure":       obj("report.Disclosure", nil),
		"TokenRequest":     obj("service.TokenRequest", map[string]any{"role": map[string]any{"type": "string", "enum": Roles}, "subject": str(), "note": str()}, "role"),
		"TokenInfo":        obj("service.TokenInfo", map[string]any{"id": str(), "role": str(), "subject": str(), "note": str(), "created": str(), "revoked": str()}),
		"TokenList":        array(ref("TokenInfo")),
		"HESetupRequest": obj("service.HESetupRequest: params is an he.ParamsLiteral (scheme, log_n, log_q, log_p, log_scale or plaintext_modulus, flood_bits).", map[string]any{
			"name": str(), "params": obj("he.ParamsLiteral", nil), "providers": array(str())}, "name", "params", "providers"),
		"HESetup": obj("store.HESetup: the CRS seed is public and bound to the ledger (ledger_seq).", map[string]any{
			"name": str(), "params": obj("he.ParamsLiteral", nil), "providers": array(str()), "seed": map[string]any{"type": "string", "format": "byte"}, "ledger_seq": integer()}),
		"KeygenResult": obj("jobs.KeygenResult: the recorded share and, once complete, the collective keys' fingerprint.", map[string]any{
			"share": obj("store.HEKeygenShare", map[string]any{"setup": str(), "provider": str(), "sha256": str(), "path": str(), "ledger_seq": integer()}), "keys": str()}),
		"HEColumn": obj("store.HEColumn: one segment of an encrypted column, rows [start, end) of the dataset's table (a column attached whole: [0, rows)).", map[string]any{"dataset": str(), "column": str(), "provider": str(), "keys": str(), "path": str(),
			"sha256": str(), "rows": integer(), "start": integer(), "end": integer(), "lo": num(), "hi": num(), "nulls": str()}),
		"HERecipient": obj("service.HERecipient: hash is the manifest's recipient.", map[string]any{"operator": str(), "hash": str()}),
		"PendingShareList": array(obj("jobs.PendingShare", map[string]any{"job": str(), "output": str(), "session": str(), "ciphertext_sha256": str(),
			"recipient_sha256": str(), "keys": str(), "approval_seq": integer(), "bytes": integer(), "since": str()})),
		"DeliveredShare": obj("jobs.DeliveredShare", map[string]any{"job": str(), "output": str(), "provider": str(), "session": str(),
			"ciphertext_sha256": str(), "share_sha256": str()}),
		"HEQueryRequest": obj("jobs.HEQueryRequest: query is the serialized he.Query (base64); X[g][j] = Σ over the rows of group g of column j clamped to bounds[j].", map[string]any{
			"id": str(), "grant": str(), "dataset": str(), "purpose": str(), "columns": array(str()), "bounds": array(array(num())),
			"group_by": str(), "groups": array(str()), "mechanism": str(), "epsilon": num(), "delta": num(),
			"query": map[string]any{"type": "string", "format": "byte"}}, "id", "grant", "dataset", "purpose", "columns", "bounds", "group_by", "groups", "epsilon", "query"),
		"HEQueryReply": obj("jobs.HEQueryReply: reply is the serialized he.QueryReply (base64), under the operator's key.", map[string]any{
			"record": obj("store.HEQuery", nil), "reply": map[string]any{"type": "string", "format": "byte"}, "groups": array(str()), "noise": obj("he.QueryNoiseInfo: the noise on each element of X, per column (std, scale, linf).", nil)}),
		"TokenResponse": obj("service.TokenResponse: the token is shown once.", map[string]any{"token": str(), "info": ref("TokenInfo")}),
	}
}
