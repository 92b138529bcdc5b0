package service

import "net/http"

// Route describes one endpoint: for tests and tools that walk the API.
type Route struct {
	Method, Path string
	Roles        []Role
	Status       int // success status
}

// Routes lists the API's endpoints.
func Routes() []Route {
	var out []Route
	for _, rt := range routeTable() {
		st := rt.status
		if st == 0 {
			st = http.StatusOK
		}
		out = append(out, Route{Method: rt.method, Path: rt.path, Roles: rt.roles, Status: st})
	}
	return out
}
