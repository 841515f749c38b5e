// Package bench holds benchmarks of the engine against raw floors: the same
// work done directly with the backend's own client, one step at a time.
// They only run with -bench (see BENCHMARKS.md at the repository root);
// `go test ./...` runs just a cheap consistency test.
package bench
