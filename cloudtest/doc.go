// Package cloudtest builds Occopus infrastructures end to end — through
// occopus.Manager, the real engine and a SQLite store — against the fake
// clouds of resource/ec2/ec2fake and resource/nova/novafake. It has only
// tests and benchmarks:
//
//   - tutorials_test.go builds the shared Occopus tutorials ec2-ping and
//     nova-ping with their own node definitions and cloud-init files, only
//     the endpoint and the values the fakes must accept changed;
//   - bench_test.go, BenchmarkBuild200: 200 nodes on three levels against
//     the fake EC2 with 1 s of create latency (see BENCHMARKS.md).
//
// The fakes hand out addresses in 127.0.0.0/8, so the default ping health
// check really pings (loopback).
package cloudtest
