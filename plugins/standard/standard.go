// Package standard imports the standard set of plugins: every backend,
// contextualiser, config manager and health primitive that ships with the
// orchestrator. A program that wants another plugin builds its own main
// with one more blank import.
package standard

import (
	_ "github.com/occopus-go/occopus/configmgr/chef"
	_ "github.com/occopus-go/occopus/configmgr/puppetsolo"
	_ "github.com/occopus-go/occopus/contextualise/cloudinit"
	_ "github.com/occopus-go/occopus/contextualise/dockerctx"
	_ "github.com/occopus-go/occopus/health"
	_ "github.com/occopus-go/occopus/resource/azureaci"
	_ "github.com/occopus-go/occopus/resource/azurevm"
	_ "github.com/occopus-go/occopus/resource/cloudbroker"
	_ "github.com/occopus-go/occopus/resource/cloudsigma"
	_ "github.com/occopus-go/occopus/resource/docker"
	_ "github.com/occopus-go/occopus/resource/ec2"
	_ "github.com/occopus-go/occopus/resource/local"
	_ "github.com/occopus-go/occopus/resource/nova"
)
