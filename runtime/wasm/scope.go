package wasm

import "context"

type scopeKey struct{}

// WithScope names, for instances started under the returned context, the
// principal and the data they run for. A runtime that isolates instances in
// processes (runtime/isolate) may run instances of the same module and the
// same non-empty scope one after the other in one process, saving the
// process's start; instances of different scopes, or of none, never share
// one. The caller chooses scopes so that whatever one instance could leave
// behind in a shared process is something the next is entitled to anyway:
// jobs uses the operator, the dataset and the columns the guest reads.
func WithScope(ctx context.Context, scope string) context.Context {
	return context.WithValue(ctx, scopeKey{}, scope)
}

// Scope is the scope WithScope put in ctx, "" if none.
func Scope(ctx context.Context) string {
	s, _ := ctx.Value(scopeKey{}).(string)
	return s
}
