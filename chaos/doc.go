// Package chaos is the opt-in reliability suite (issue 11): `occopus`
// command-line processes built from this tree are killed (kill -9) and
// interrupted (SIGINT) at random, seeded instants of builds, scale-ups and
// destroys, on the real Docker engine and on the EC2 fake with 30 % of its
// requests throttled; after each trial `maintain` heals what is listed and
// `destroy` removes it, and the suite counts, from each backend's own
// view, what was left and whether a node ever had more instances than
// its target.
//
// It is not part of `make test`; run it with
//
//	make chaos                      # CHAOS_SEED=N to repeat a run
//	go test -tags chaos -v -count=1 -timeout 0 ./chaos
//
// The EC2 fake (resource/ec2/ec2fake) runs inside the test process on a
// loopback port; the node definitions name its URL as their endpoint, so
// the CLI processes reach it as they would reach a cloud.
//
// This file only documents the package; the suite is chaos_test.go, built
// with the chaos tag.
package chaos
