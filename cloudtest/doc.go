// Package cloudtest builds Occopus infrastructures end to end — through
// occopus.Manager, the real engine and a SQLite store — against the fake
// clouds of resource/ec2/ec2fake, resource/nova/novafake,
// resource/azure/armfake, resource/cloudsigma/csfake and
// resource/cloudbroker/cbfake, and the Chef server of
// configmgr/chef/cheffake. It has only tests and benchmarks:
//
//   - tutorials_test.go, azure_test.go, cloudsigma_test.go,
//     cloudbroker_test.go and chef_test.go build the shared Occopus
//     tutorials (ec2-ping, nova-ping, azure-ping, azure-aci-nginx,
//     cloudsigma-ping, cloudbroker-ping, chef-apache2) with their own node
//     definitions and cloud-init files, only the endpoint and the values the
//     fakes must accept changed;
//   - secrets_test.go checks that no credential of auth_data reaches a
//     log line, an error or a report;
//   - bench_test.go, BenchmarkBuild200: 200 nodes on three levels against
//     the fake EC2 with 1 s of create latency (see BENCHMARKS.md).
//
// The fakes hand out addresses in 127.0.0.0/8, so the default ping health
// check really pings (loopback).
package cloudtest
